// The replay: a trace through a continuous-batching scheduler, a KV pool and the CCV cache,
// each step priced by an OpCostModel. This header is the public face of the engine that the
// CLI (kvscope replay / plan / check) and kvscope-gui share. The engine behind it lives in
// sim/engine/ (events, scheduler, KV pool, step pricer, metrics), sim/ccv/ and sim/trace/;
// README's "kvscope replay" section states its semantics; sim/report/replay_report.h writes
// and prints results.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/cost.h"
#include "model/memory.h"
#include "model/methods.h"
#include "model/shape.h"
#include "sim/trace/trace.h"

namespace kvscope {

// TraceFormat and BadRecordPolicy are declared in sim/trace/trace.h, with the readers.

struct SchedulerConfig {
  int64_t max_batch = 256;      // sequences per step
  int64_t token_budget = 8192;  // tokens (prefill + decode) per step
  bool chunked_prefill = true;  // split long prompts across steps within the budget
};

// One step as the engine scheduled it, for observers that need more than its price: kvscope
// check runs the same steps on the kernels (sim/check/). Built only when ReplayConfig::on_step
// is set, so a plain replay pays nothing for it.
struct ObservedStep {
  struct Item {                // one sequence's part in the step
    int64_t request = 0;       // 0-based index in the trace
    int64_t q_tokens = 0;      // new tokens: a prefill chunk, or 1 for a decode
    int64_t kv_len = 0;        // keys attended to, the new tokens included
    int64_t cache_tokens = 0;  // tokens its KV cache is allocated for (>= kv_len)
    bool prefill = false;
    bool ccv_hit = false;
    bool emits = false;  // produces an output token this step (needs the LM head)
  };
  struct Held {  // a running sequence's KV while the step runs
    int64_t request = 0;
    int64_t tokens = 0;  // tokens allocated
    int64_t bytes = 0;   // the KV pool's count for them (model/memory.h)
    bool ccv_hit = false;
  };
  Method method = Method::baseline;
  int64_t index = 0;  // step number within this method's replay
  double start_ms = 0;
  std::vector<Item> items;
  std::vector<Held> held;
  int64_t kv_in_step_bytes = 0;  // the KV pool in use while the step runs
  // The price (StepRecord's fields of the same names).
  double paper_ms = 0, full_ms = 0, attention_ms = 0, dense_ms = 0, ccv_ms = 0, other_ms = 0;
};
using StepObserver = std::function<void(const ObservedStep&)>;

struct ReplayConfig {
  ModelShape model;
  MethodConfig method_config;
  std::vector<Method> methods = all_methods();
  SchedulerConfig scheduler;
  int64_t gpu_memory_bytes = int64_t{80} << 30;  // KV pool = this minus weights (and CCV cache)
  double rate_scale = 1.0;                       // >1 compresses inter-arrival times
  // Multiplies every request's input and output lengths (rounded, at least 1 token unless 0): a
  // real trace shrunk to a small machine (kvscope check on a CPU), arrivals and prefix sharing
  // kept.
  double length_scale = 1.0;
  TraceFormat format = TraceFormat::automatic;
  BadRecordPolicy bad_records = BadRecordPolicy::stop;
  int64_t max_requests = -1;   // -1: the whole trace
  bool keep_steps = true;      // per-step timeline in the result
  bool keep_requests = true;   // per-request table in the result
  double hit_window_s = 60.0;  // width of the windows of MethodResult::hit_windows (simulated s)
  // How decode attention is priced: false, one batched call per group at the group's mean
  // context (a paged kernel over all sequences); true, one call per sequence at its own context
  // (what kvscope check's executor runs over its per-sequence caches).
  bool decode_attention_per_sequence = false;
  // Whether steps pay for the LM head (vocab x hidden GEMM over the sequences producing a token).
  // Off by default so far: the hand-computed replays of tests/test_replay_hand.cpp leave it out;
  // kvscope check turns it on, as its executor runs it.
  bool price_lm_head = false;
  StepObserver on_step;  // called once per step with the step as scheduled (may be empty)
};

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, mean = 0;
};

// One scheduler step of one method.
struct StepRecord {
  double start_ms = 0;
  double paper_ms = 0;  // priced by the paper's attention-only model
  double full_ms = 0;   // priced by the full-layer model (this drives the simulated clock)
  int64_t batch = 0, prefill_tokens = 0, decode_tokens = 0;
  int64_t kv_bytes = 0;         // KV pool in use after the step
  int64_t ccv_cache_bytes = 0;  // CCV cache in use after the step
  double hit_rate = 0;          // p measured over all CCV lookups so far
  // Where the full-layer time went.
  double attention_ms = 0, dense_ms = 0, ccv_ms = 0, other_ms = 0;
  int64_t kv_in_step_bytes = 0;  // KV pool in use while the step runs (before its frees)
  int64_t waiting = 0;           // requests queued (arrived, not running) when it started
};

struct RequestRecord {
  int64_t id = 0;  // 0-based index in the trace
  int64_t trace_line = 0;
  double arrival_ms = 0, first_token_ms = 0, finish_ms = 0;
  int64_t input_tokens = 0, output_tokens = 0;
  int64_t preemptions = 0;
  bool ccv_hit = false;
  double similarity = 0;  // best cosine against the CCV cache at lookup
  bool rejected = false;  // its KV could never fit the pool; not served (times are 0)
  std::string session;    // from the trace, when it has one
};

struct MethodSummary {
  Method method = Method::baseline;
  int64_t requests = 0;
  Percentiles ttft_ms, tbt_ms, e2e_ms;
  double makespan_s = 0;
  double throughput_tokens_per_s = 0;  // generated tokens / makespan
  int64_t peak_kv_bytes = 0;
  double mean_kv_bytes = 0;  // time-weighted
  int64_t kv_capacity_bytes = 0;
  int64_t peak_ccv_cache_bytes = 0;
  double hit_rate = 0;  // p over the whole trace; 0 without CCV
  int64_t ccv_lookups = 0, ccv_hits = 0, ccv_evictions = 0;
  int64_t preemptions = 0;
  double busy_paper_ms = 0, busy_full_ms = 0;  // sum of step times under each model
  double time_saved_vs_baseline_ms = 0;        // baseline busy_full_ms minus this one's
  // Added with the engine:
  double time_saved_vs_baseline_paper_ms = 0;  // the same under the paper's model
  bool has_baseline = false;                   // whether the two above could be computed
  int64_t rejected = 0;                        // requests whose KV can never fit the pool
  int64_t steps = 0;
  int64_t generated_tokens = 0;     // = sum of output lengths of served requests
  int64_t prefill_tokens = 0;       // prompt tokens computed, recomputation included
  int64_t weight_bytes = 0;         // model (+ CCV layer for CCV methods)
  int64_t peak_total_bytes = 0;     // weights + KV + CCV cache, at the worst step
  double mean_ccv_cache_bytes = 0;  // time-weighted
  int64_t ccv_insertions = 0, ccv_expirations = 0;
};

// p over simulated time: lookups made in [start_s, start_s + ReplayConfig::hit_window_s).
struct HitWindow {
  double start_s = 0;
  int64_t lookups = 0, hits = 0;
};

struct MethodResult {
  MethodSummary summary;
  std::vector<StepRecord> steps;
  std::vector<RequestRecord> requests;
  std::vector<HitWindow> hit_windows;  // CCV methods; empty otherwise
};

struct TraceStats {
  std::string path;
  std::string format;
  int64_t requests = 0, skipped_records = 0;
  int64_t input_tokens = 0, output_tokens = 0;
  double duration_s = 0;
};

struct ReplayResult {
  TraceStats trace;
  std::vector<MethodResult> methods;  // in the order of ReplayConfig::methods
  bool cancelled = false;
};

// ReplayConfig::length_scale applied to one record.
void scale_lengths(TraceRecord& rec, double scale);

// Called now and then with the fraction done in [0, 1] and a short note.
using ProgressFn = std::function<void(double fraction, const std::string& note)>;

// Replays `trace_path` with every configured method, in lockstep from one pass over the file.
// Throws InputError for a bad trace (under BadRecordPolicy::stop) or configuration (its field
// names the CLI option, e.g. "--gpu-mem"). Setting *cancel stops early with cancelled = true
// and the results of what was replayed. The progress callback runs on the calling thread.
// Deterministic: the same inputs give the same result, bit for bit.
ReplayResult run_replay(const std::string& trace_path, const ReplayConfig& config,
                        const OpCostModel& costs, const ProgressFn& progress = {},
                        const std::atomic<bool>* cancel = nullptr);

}  // namespace kvscope
