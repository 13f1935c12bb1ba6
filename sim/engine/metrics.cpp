#include "sim/engine/metrics.h"

#include <algorithm>
#include <cmath>

#include <boost/histogram.hpp>

namespace kvscope {

namespace bh = boost::histogram;

namespace {
// 16384 bins over 14 decades: adjacent edges differ by 0.197%, so a bin's geometric centre is
// within 0.1% of anything in it.
constexpr unsigned kBins = 16384;
constexpr double kLowMs = 1e-4, kHighMs = 1e10;
using LogAxis = bh::axis::regular<double, bh::axis::transform::log>;
using Hist =
    decltype(bh::make_histogram_with(std::vector<double>(), LogAxis(kBins, kLowMs, kHighMs)));
}  // namespace

struct LatencyHistogram::Impl {
  Hist h = bh::make_histogram_with(std::vector<double>(), LogAxis(kBins, kLowMs, kHighMs));
};

LatencyHistogram::LatencyHistogram() : impl_(std::make_unique<Impl>()) {}
LatencyHistogram::~LatencyHistogram() = default;
LatencyHistogram::LatencyHistogram(LatencyHistogram&&) noexcept = default;
LatencyHistogram& LatencyHistogram::operator=(LatencyHistogram&&) noexcept = default;

void LatencyHistogram::add(double ms, double count) {
  if (count <= 0) return;
  impl_->h(bh::weight(count), ms);
  if (count_ == 0 || ms < min_) min_ = ms;
  if (count_ == 0 || ms > max_) max_ = ms;
  count_ += count;
  sum_ += ms * count;
}

Percentiles LatencyHistogram::percentiles() const {
  Percentiles p;
  if (count_ == 0) return p;
  p.mean = sum_ / count_;
  const double qs[3] = {0.50, 0.90, 0.99};
  double* out[3] = {&p.p50, &p.p90, &p.p99};
  const auto& axis = impl_->h.axis();
  int q = 0;
  double below = 0;  // values in the bins passed so far
  for (auto&& bin : bh::indexed(impl_->h, bh::coverage::all)) {
    below += *bin;
    while (q < 3 && below >= std::ceil(qs[q] * count_ - 1e-9)) {
      const int i = bin.index();
      double v = i < 0 ? min_
                 : i >= static_cast<int>(axis.size())
                     ? max_
                     : std::sqrt(bin.bin().lower() * bin.bin().upper());
      *out[q++] = std::clamp(v, min_, max_);
    }
    if (q == 3) break;
  }
  return p;
}

ReplayMetrics::ReplayMetrics(Method method, const ReplayConfig& config)
    : keep_steps_(config.keep_steps),
      keep_requests_(config.keep_requests),
      hit_window_ms_(config.hit_window_s * 1e3) {
  result_.summary.method = method;
}

void ReplayMetrics::step(const StepRecord& s, int64_t ccv_bytes_at_start) {
  const double end = s.start_ms + s.full_ms;
  ccv_byte_ms_ += static_cast<double>(ccv_bytes_after_last_) * (s.start_ms - last_step_end_ms_) +
                  static_cast<double>(ccv_bytes_at_start) * s.full_ms;
  kv_byte_ms_ += static_cast<double>(s.kv_in_step_bytes) * s.full_ms;
  last_step_end_ms_ = end;
  ccv_bytes_after_last_ = s.ccv_cache_bytes;
  peak_in_flight_bytes_ = std::max({peak_in_flight_bytes_, s.kv_in_step_bytes + ccv_bytes_at_start,
                                    s.kv_bytes + s.ccv_cache_bytes});
  result_.summary.peak_kv_bytes = std::max(result_.summary.peak_kv_bytes, s.kv_in_step_bytes);
  result_.summary.peak_ccv_cache_bytes =
      std::max({result_.summary.peak_ccv_cache_bytes, ccv_bytes_at_start, s.ccv_cache_bytes});
  result_.summary.busy_paper_ms += s.paper_ms;
  result_.summary.busy_full_ms += s.full_ms;
  ++result_.summary.steps;
  if (keep_steps_) result_.steps.push_back(s);
}

void ReplayMetrics::finished(const RequestRecord& r) {
  ++result_.summary.requests;
  result_.summary.generated_tokens += r.output_tokens;
  ttft_.add(r.first_token_ms - r.arrival_ms);
  e2e_.add(r.finish_ms - r.arrival_ms);
  last_finish_ms_ = std::max(last_finish_ms_, r.finish_ms);
  if (keep_requests_) result_.requests.push_back(r);
}

void ReplayMetrics::rejected(const RequestRecord& r) {
  ++result_.summary.rejected;
  if (keep_requests_) result_.requests.push_back(r);
}

void ReplayMetrics::lookup(double now_ms, bool hit) {
  const auto w = static_cast<size_t>(std::max(0.0, std::floor(now_ms / hit_window_ms_)));
  auto& windows = result_.hit_windows;
  while (windows.size() <= w)
    windows.push_back(HitWindow{static_cast<double>(windows.size()) * hit_window_ms_ / 1e3, 0, 0});
  ++windows[w].lookups;
  if (hit) ++windows[w].hits;
}

MethodResult ReplayMetrics::take(int64_t kv_capacity_bytes, int64_t weight_bytes,
                                 const CcvCacheStats* ccv) {
  MethodSummary& s = result_.summary;
  s.ttft_ms = ttft_.percentiles();
  s.tbt_ms = tbt_.percentiles();
  s.e2e_ms = e2e_.percentiles();
  const double makespan_ms = std::max(last_finish_ms_, last_step_end_ms_);
  s.makespan_s = makespan_ms / 1e3;
  s.throughput_tokens_per_s =
      makespan_ms > 0 ? static_cast<double>(s.generated_tokens) / s.makespan_s : 0.0;
  s.mean_kv_bytes = makespan_ms > 0 ? kv_byte_ms_ / makespan_ms : 0.0;
  s.mean_ccv_cache_bytes = makespan_ms > 0 ? ccv_byte_ms_ / makespan_ms : 0.0;
  s.kv_capacity_bytes = kv_capacity_bytes;
  s.weight_bytes = weight_bytes;
  s.peak_total_bytes = weight_bytes + peak_in_flight_bytes_;
  if (ccv) {
    s.ccv_lookups = ccv->lookups;
    s.ccv_hits = ccv->hits;
    s.hit_rate =
        ccv->lookups ? static_cast<double>(ccv->hits) / static_cast<double>(ccv->lookups) : 0.0;
    s.ccv_evictions = ccv->evictions;
    s.ccv_expirations = ccv->expirations;
    s.ccv_insertions = ccv->insertions;
  }
  std::sort(result_.requests.begin(), result_.requests.end(),
            [](const RequestRecord& a, const RequestRecord& b) { return a.id < b.id; });
  return std::move(result_);
}

}  // namespace kvscope
