// What a replay observes: latencies, memory over time, CCV lookups, the step timeline and the
// request table. Everything but the two optional tables takes constant memory.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "sim/ccv/ccv_cache.h"
#include "sim/replay/replay.h"

namespace kvscope {

// Latencies in a fixed log-spaced histogram (Boost.Histogram) from 1e-4 ms to 1e10 ms: constant
// memory whatever the trace length. Percentiles are nearest-rank, read at the geometric centre
// of their bin and clamped to the exact min and max, so within 0.1% of the exact value; the
// mean is exact.
class LatencyHistogram {
 public:
  LatencyHistogram();
  ~LatencyHistogram();
  LatencyHistogram(LatencyHistogram&&) noexcept;
  LatencyHistogram& operator=(LatencyHistogram&&) noexcept;

  void add(double ms, double count = 1);
  double count() const { return count_; }
  Percentiles percentiles() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  double count_ = 0, sum_ = 0, min_ = 0, max_ = 0;
};

class ReplayMetrics {
 public:
  ReplayMetrics(Method method, const ReplayConfig& config);

  // A step that ran; ccv_bytes_at_start is the cache while it ran (StepRecord has it after).
  void step(const StepRecord& s, int64_t ccv_bytes_at_start);
  void token_gaps(double gap_ms, double count) { tbt_.add(gap_ms, count); }
  void first_token(double ttft_ms) { ttft_.add(ttft_ms); }
  void finished(const RequestRecord& r);
  void rejected(const RequestRecord& r);
  void lookup(double now_ms, bool hit);
  void preempted() { ++result_.summary.preemptions; }
  void prefill_done(int64_t tokens) { result_.summary.prefill_tokens += tokens; }

  // The result, with the summary completed; the metrics are spent afterwards.
  MethodResult take(int64_t kv_capacity_bytes, int64_t weight_bytes, const CcvCacheStats* ccv);

 private:
  MethodResult result_;
  bool keep_steps_, keep_requests_;
  double hit_window_ms_;
  LatencyHistogram ttft_, tbt_, e2e_;
  double kv_byte_ms_ = 0, ccv_byte_ms_ = 0;  // integrals over simulated time
  double last_step_end_ms_ = 0;
  int64_t ccv_bytes_after_last_ = 0;
  int64_t peak_in_flight_bytes_ = 0;  // KV + CCV cache at the worst moment
  double last_finish_ms_ = 0;
};

}  // namespace kvscope
