// Capacity planning: how many requests per second, how long a context and how large a batch one
// GPU can take under each method, and how those answers move with the methods' parameters.
//
// Memory answers are exact byte arithmetic on model/memory.h. Rate answers come from replaying
// the trace (sim/replay/replay.h) at scaled arrival rates and bisecting on the scale factor for
// the highest rate whose latency percentiles stay within the SLOs.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/cost.h"
#include "model/memory.h"
#include "model/methods.h"
#include "model/shape.h"
#include "sim/io/number_text.h"  // exact_number(), the plan CSVs' number text
#include "sim/replay/replay.h"

namespace kvscope {

// ---- Memory ---------------------------------------------------------------------------------

// What one GPU holds besides the KV cache, and what is left for it.
struct GpuBudget {
  int64_t gpu_memory_bytes = 0;
  int64_t weight_bytes = 0;       // model_weight_bytes
  int64_t ccv_layer_bytes = 0;    // W_c and b_c (CCV methods)
  int64_t ccv_cache_bytes = 0;    // the CCV cache's budget (CCV methods)
  int64_t kv_capacity_bytes = 0;  // the rest; negative when the weights alone do not fit
};
GpuBudget gpu_budget(const ModelShape& s, Method method, const MethodConfig& cfg,
                     int64_t gpu_memory_bytes);

struct BatchFit {
  int64_t context_tokens = 0;
  int64_t sequence_bytes_miss = 0;  // one sequence, every layer holding KV
  int64_t sequence_bytes_hit = 0;   // one sequence reusing a cached CCV (= miss without CCV)
  int64_t max_batch_miss = 0;       // floor(capacity / bytes_miss): guaranteed
  int64_t max_batch_hit = 0;        // every sequence a hit
  int64_t max_batch_at_p = 0;       // floor(capacity / expected bytes at hit probability p)
};

struct MemoryFit {
  GpuBudget budget;
  double p = 0;  // the hit probability max_batch_at_p assumes
  std::vector<BatchFit> batches;
  int64_t max_context_miss = 0;  // longest single sequence, every layer holding KV (tokens)
  // Longest single sequence that can be a CCV hit: its KV in l_eff layers fits, and its CCV
  // (d2 x N) fits the CCV cache budget. Equal to max_context_miss without CCV.
  int64_t max_context_hit = 0;
};

// Exact: every byte count comes from model/memory.h. `p` only enters max_batch_at_p.
MemoryFit fit_memory(const ModelShape& s, Method method, const MethodConfig& cfg,
                     int64_t gpu_memory_bytes, const std::vector<int64_t>& contexts_tokens,
                     double p);

// ---- Rate search ----------------------------------------------------------------------------

enum class SloPercentile { p50, p90, p99 };
std::string_view percentile_name(SloPercentile p);                  // "p50" | "p90" | "p99"
std::optional<SloPercentile> parse_percentile(std::string_view s);  // p90, 90, P90
double at_percentile(const Percentiles& v, SloPercentile p);

struct Slo {
  double ttft_ms = 2000;
  double tbt_ms = 100;
  SloPercentile percentile = SloPercentile::p90;  // applied to both TTFT and TBT
};

// One replay of the search.
struct RatePoint {
  double rate_scale = 0;
  double offered_rate_per_s = 0;   // requests / arrival span at this scale
  double ttft_ms = 0, tbt_ms = 0;  // at the SLO percentile
  bool meets_slo = false;
  MethodSummary summary;
};

struct RateSearch {
  Method method = Method::baseline;
  MethodConfig config;
  std::vector<RatePoint> points;  // in the order they ran
  TraceStats trace;               // of the replay at scale 1 (the first)
  double base_rate_per_s = 0;     // the trace's own rate: requests / arrival span
  // The highest scale that met the SLO with a failing scale within the tolerance above it;
  // 0 when even the smallest scale tried failed.
  double max_rate_scale = 0;
  double max_rate_per_s = 0;
  bool hit_scale_cap = false;  // every scale up to the cap met the SLO: a lower bound
  // The SLO was missed and halving the rate left both latencies unchanged: no lower rate meets
  // it (what remains is requests sharing a timestamp and each request's own service time).
  bool rate_independent = false;
  std::optional<RatePoint> best;  // the replay at max_rate_scale
};

struct RateSearchLimits {
  double tolerance = 0.02;  // stop when hi / lo - 1 <= tolerance
  double max_scale = 4096;  // stop growing here
  double min_scale = 1.0 / 4096;
};

// Replays a trace; run_replay in production, a stand-in in tests. Must be reentrant.
using ReplayFn = std::function<ReplayResult(
    const std::string& trace_path, const ReplayConfig& config, const OpCostModel& costs,
    const ProgressFn& progress, const std::atomic<bool>* cancel)>;

class Cancelled : public std::runtime_error {
 public:
  Cancelled() : std::runtime_error("cancelled") {}
};

// ---- The plan -------------------------------------------------------------------------------

struct SweepConfig {
  std::vector<double> thresholds = {0.7, 0.8, 0.9};      // CCV methods
  std::vector<int64_t> fourier_m = {64, 128, 256, 512};  // Fourier methods
  std::vector<int64_t> l_eff = {4, 6, 8, 10};            // CCV methods
};

struct PlanConfig {
  std::string trace_path;
  ReplayConfig replay;  // model, method_config, scheduler, GPU memory, format, max_requests
  std::vector<Method> methods = all_methods();
  Slo slo;
  double target_rate_per_s = 0;  // 0: no target
  std::vector<int64_t> batch_contexts_tokens = {4096, 32768, 131072};
  RateSearchLimits limits;
  SweepConfig sweep;
  bool run_sweep = true;
  int jobs = 2;  // replays at once
};

// Which parameter a sweep row varies.
enum class SweepAxis { threshold, fourier_m, l_eff };
std::string_view sweep_axis_name(SweepAxis a);  // threshold | fourier_m | l_eff

struct MethodPlan {
  Method method = Method::baseline;
  RateSearch search;
  MemoryFit memory;             // at p measured at the best point (or at scale 1 if none)
  BatchFit at_trace_mean;       // the same, at the trace's mean request length (input + output)
  int64_t gpus_for_target = 0;  // 0: no target given; -1: the target cannot be met
};

struct SweepRow {
  SweepAxis axis = SweepAxis::threshold;
  double value = 0;
  MethodPlan plan;
};

struct PlanResult {
  PlanConfig config;
  TraceStats trace;                 // the replayed prefix, at scale 1
  std::string cost_model;           // OpCostModel::describe()
  std::vector<MethodPlan> methods;  // in config.methods order
  std::vector<SweepRow> sweep;
  int64_t replays = 0;
  double wall_s = 0;
};

struct PlanProgress {
  int64_t searches_done = 0, searches_total = 0;
  int64_t replays_done = 0;
  std::string note;  // what just finished
};
using PlanProgressFn = std::function<void(const PlanProgress&)>;  // called from worker threads

// Names a search by its method and the parameters that method uses, e.g.
// "ccv threshold=0.8 l_eff=8": equal labels mean the same search.
std::string search_label(Method m, const MethodConfig& c);

// GPUs needed for `target` requests/s at `per_gpu` requests/s each: ceil(target / per_gpu);
// -1 when per_gpu is 0 (the SLO cannot be met at any rate).
int64_t gpus_needed(double target_per_s, double per_gpu_per_s);

// Searches the highest rate one GPU sustains for `method` with `cfg` (the replay config's
// methods and method_config are replaced). Throws Cancelled when *cancel is set.
RateSearch search_max_rate(const std::string& trace_path, const ReplayConfig& base, Method method,
                           const MethodConfig& cfg, const Slo& slo, const RateSearchLimits& limits,
                           const OpCostModel& costs, const ReplayFn& replay,
                           const std::atomic<bool>* cancel,
                           const std::function<void()>& on_replay = {});

// The whole plan: every method, then the sweep, `config.jobs` searches at a time. Throws
// Cancelled if *cancel is set, and the first error any search raised.
PlanResult make_plan(const PlanConfig& config, const OpCostModel& costs,
                     const ReplayFn& replay = run_replay, const PlanProgressFn& progress = {},
                     const std::atomic<bool>* cancel = nullptr);

}  // namespace kvscope
