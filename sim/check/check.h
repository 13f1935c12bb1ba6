// kvscope check: the replay's steps run on the real kernels, and the error of every prediction.
//
// The replay (sim/replay/replay.h) schedules a trace's first requests and prices each step with
// the cost model; an observer records each step as scheduled (its sequences, their contexts and
// the KV the pool holds for them). The StepExecutor (executor.h) then runs those same steps on a
// kernel backend and times them, and holds the KV caches the steps need, allocated from the
// kernels' own layouts, for a comparison with the memory model's count. Vidur's split: the
// predictor and the executor answer the same call for the same steps.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/backend.h"
#include "model/cost.h"
#include "sim/engine/step_pricer.h"
#include "sim/replay/replay.h"

namespace kvscope::check {

enum class StepKind { prefill, decode, mixed };
std::string_view step_kind_name(StepKind k);
StepKind kind_of(const ObservedStep& s);

struct CheckConfig {
  // Model, methods, scheduler, max_requests (the K first requests). gpu_memory_bytes <= 0:
  // measured on the device, its free memory less the executor's scratch and
  // device_reserve_bytes (the CPU backend cannot measure it and needs a value).
  ReplayConfig replay;
  std::string backend = "cpu";
  int64_t device_reserve_bytes = int64_t{2} << 30;  // the backend's own workspaces
  int64_t max_steps = 0;   // per method, spread over the step kinds; 0: every step
  int warmup = 1;          // untimed runs of a step before it is timed
  int reps = 0;            // timed runs per step (median); 0: enough for ~100 ms, 1..5
  bool breakdown = false;  // also time each part of each step alone (attention, dense, ...)
  // Wall-clock seconds for running steps (0: no limit), shared out between the methods still to
  // run. Each method runs its chosen steps in an interleaved order (a bit-reversal of their
  // sequence), so a method cut short still has steps from all over its replay.
  double time_budget_s = 0;
};

struct CheckStep {
  Method method = Method::baseline;
  int64_t index = 0;  // the step's number in the method's replay
  StepKind kind = StepKind::decode;
  int64_t prefill_seqs = 0, decode_seqs = 0, prefill_tokens = 0, decode_tokens = 0;
  int64_t hits = 0;    // sequences reusing a cached CCV
  int64_t max_kv = 0;  // longest context attended
  int64_t mean_decode_kv = 0;
  double predicted_ms = 0, measured_ms = 0;
  double pred_attention_ms = 0, pred_dense_ms = 0, pred_ccv_ms = 0, pred_other_ms = 0;
  // With CheckConfig::breakdown, each part timed alone (-1 otherwise).
  double meas_attention_ms = -1, meas_dense_ms = -1, meas_ccv_ms = -1, meas_other_ms = -1;
  int64_t predicted_kv_bytes = 0;  // the KV pool in use while the step runs (model/memory.h)
  int64_t allocated_kv_bytes = 0;  // backend allocated_bytes() held by the caches
  int64_t device_used_bytes = -1;  // total - free from the device (cudaMemGetInfo); -1: unknown
  int reps = 0;
  std::string shape;                      // human description of the step's sequences
  std::vector<ObservedStep::Item> items;  // the step as scheduled (for steps.jsonl)
  double rel_error() const {
    return measured_ms > 0 ? std::abs(predicted_ms - measured_ms) / measured_ms : 0.0;
  }
};

struct ErrorStats {
  Method method = Method::baseline;
  std::string kind;  // prefill | decode | mixed | all
  int64_t steps = 0;
  double median = 0, p90 = 0, max = 0;       // |pred - meas| / meas
  double predicted_ms = 0, measured_ms = 0;  // sums
  double mean_signed = 0;                    // mean (pred - meas) / meas: the bias
};

struct MemoryStats {
  Method method = Method::baseline;
  int64_t steps = 0;        // steps whose memory was compared
  int64_t equal_steps = 0;  // predicted == allocated to the byte
  int64_t max_abs_diff_bytes = 0;
  int64_t peak_predicted_bytes = 0, peak_allocated_bytes = 0;  // KV, at the peak step
  int64_t weights_predicted_bytes = 0, weights_allocated_bytes = 0;
  int64_t device_peak_used_bytes = -1;  // cudaMemGetInfo's total - free at the worst step
};

struct CheckResult {
  TraceStats trace;
  kernels::DeviceInfo device;
  std::string cost_model;
  int64_t gpu_memory_bytes = 0;       // what the replay sized its pools from
  std::vector<int64_t> replay_steps;  // per method: steps the replay scheduled
  std::vector<CheckStep> steps;       // the steps run, in method then step order
  std::vector<ErrorStats> latency;    // per method and kind, then "all"
  std::vector<MemoryStats> memory;    // per method
  double wall_s = 0;
  int64_t failed_steps = 0;  // steps the backend could not run (left out of the statistics)
  std::string first_failure;
};

using ProgressFn = std::function<void(double fraction, const std::string& note)>;

// Runs the check. Throws InputError for a bad trace or configuration, std::runtime_error when
// the backend is missing.
CheckResult run_check(const std::string& trace_path, const CheckConfig& config,
                      const OpCostModel& costs, const ProgressFn& progress = {});

// Re-prices the steps of an earlier check (its steps.jsonl, check_outputs) with `costs`: the
// same steps and measurements, new predictions. `rc` must describe the same model, methods and
// scheduler as the check that measured them (model and methods are checked).
CheckResult reprice_check(const std::string& steps_jsonl, const ReplayConfig& rc,
                          const OpCostModel& costs);

// Per method and kind error statistics, and per method memory statistics, from r.steps
// (weights kept from r.memory where present).
void summarize(CheckResult& r, const std::vector<Method>& methods);

// Steps chosen when only `max_steps` of `kinds.size()` can run: an equal share per kind (what a
// kind does not use goes to the others), evenly spaced within each kind. Indices, sorted.
std::vector<size_t> sample_steps(const std::vector<StepKind>& kinds, int64_t max_steps);

// 0..n-1 in bit-reversed (van der Corput) order: every prefix spreads over the whole range.
std::vector<size_t> interleaved_order(size_t n);

// Error statistics of a set of relative errors (sorted copy; p90 by nearest rank).
void fill_error_stats(std::vector<double> rel_errors, ErrorStats& out);

}  // namespace kvscope::check
