// The event loop of one method's replay. Two kinds of events drive it: an arrival (from the
// trace, in time order) and the end of a step (the scheduler forms the step, the StepPricer
// prices it, the clock advances by the full-layer time). Arrivals are pushed in as the trace is
// read, so several methods replay in lockstep from one pass over the trace, and nothing is
// held for requests that have not arrived or have finished.
#pragma once

#include <atomic>
#include <memory>
#include <optional>

#include "sim/ccv/ccv_cache.h"
#include "sim/engine/kv_pool.h"
#include "sim/engine/metrics.h"
#include "sim/engine/request.h"
#include "sim/engine/scheduler.h"
#include "sim/engine/step_pricer.h"
#include "sim/replay/replay.h"

namespace kvscope {

// KV pool capacity of `method`: GPU memory minus the weights, and for the CCV methods minus the
// CCV layer's weights and the CCV cache budget. Throws InputError when nothing is left.
int64_t kv_capacity_bytes(const ReplayConfig& config, Method method);
// Weights held on the GPU under `method` (the model, plus the CCV layer for CCV methods).
int64_t resident_weight_bytes(const ReplayConfig& config, Method method);

// Adds one sequence's part in a step to the shape the StepPricer prices. This is the one rule:
// the replay prices its steps by it, and kvscope check prices recorded steps again by it
// (step_shape()), so a re-priced step is priced as the replay priced it.
// decode_per_sequence: ReplayConfig::decode_attention_per_sequence; lm_head:
// ReplayConfig::price_lm_head.
void add_to_step_shape(StepShape& shape, const ObservedStep::Item& item, bool decode_per_sequence,
                       bool lm_head);
// The StepShape of a recorded step, its items added by add_to_step_shape().
StepShape step_shape(const ObservedStep& step, bool decode_per_sequence, bool lm_head);

class MethodReplay final : private SchedulerEvents {
 public:
  MethodReplay(Method method, const ReplayConfig& config, const OpCostModel& costs);
  ~MethodReplay() override;

  // A request arriving at arrival_ms, no earlier than the previous one.
  void arrive(const TraceRecord& record, int64_t id, double arrival_ms,
              std::shared_ptr<const ContextSignature> ctx);

  // Runs every step that starts before t_ms. Returns false if *cancel was set.
  bool run_until(double t_ms, const std::atomic<bool>* cancel = nullptr);

  double now_ms() const { return now_ms_; }
  bool has_work() const { return replica_.has_work(); }
  Method method() const { return method_; }

  // The metrics of everything replayed; the replay is spent afterwards.
  MethodResult finish();

 private:
  void step();
  void complete_prefill(Request& r, double end_ms);
  void emit_token(Request& r, double end_ms, int64_t& steady, double start_ms);
  void retire(uint32_t slot, double finish_ms);
  RequestRecord record_of(const Request& r) const;
  static bool emits(const Request& r, const BatchItem& it);  // produces a token this step
  // The sequence's part in the step, as priced and as observers see it.
  static ObservedStep::Item item_of(const Request& r, const BatchItem& it);
  void observe(double start_ms, int64_t kv_in_step, const StepPrice& price);

  void on_preempt(Request& r) override;
  void on_reject(Request& r) override;
  void on_lookup(Request& r, double now_ms) override;

  Method method_;
  const ReplayConfig& config_;
  std::unique_ptr<CcvCache> ccv_;
  Replica replica_;
  Scheduler scheduler_;
  StepPricer pricer_;
  ReplayMetrics metrics_;
  int64_t weight_bytes_;

  double now_ms_ = 0;
  Batch batch_;
  StepShape shape_;
  std::vector<uint32_t> rejected_;  // slots to free after scheduling
  ObservedStep observed_;           // reused for ReplayConfig::on_step
  int64_t steps_seen_ = 0;
};

}  // namespace kvscope
