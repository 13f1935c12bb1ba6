// Fills the app's charts from library results. Each function only maps numbers the library
// computed (model/ for the analytic rows, sim/ for the replay result) onto series, choosing
// display units; nothing here models or simulates.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include <QString>

#include "gui/analytic.h"
#include "gui/chart_view.h"
#include "sim/replay/replay.h"

namespace kvscope::gui {

// A byte unit for an axis, picked from the largest value shown (B, KiB, MiB, GiB, TiB).
struct ByteUnit {
  QString name;
  double bytes = 1;
};
ByteUnit byte_unit_for(double max_bytes);

QString method_label(Method m);  // "baseline", "Fourier", "CCV", "Fourier+CCV"

// The most points one timeline series shows. Longer timelines show, per bucket of consecutive
// steps, the step with the lowest and the one with the highest value, so peaks survive and every
// point drawn is a real step of the result.
constexpr std::size_t kMaxTimelinePoints = 4000;
std::vector<std::size_t> envelope_indices(std::size_t n, std::size_t max_points,
                                          const std::function<double(std::size_t)>& value);

// Analytic view.
void show_cost_chart(ChartView* v, const std::vector<AnalyticRow>& rows);
void show_memory_chart(ChartView* v, const std::vector<AnalyticRow>& rows,
                       const std::vector<Method>& methods);

// Replay view.
enum class LatencyMetric { ttft, tbt, e2e };
QString latency_metric_label(LatencyMetric m);
void show_memory_timeline(ChartView* v, const ReplayResult& r);
// p over all lookups so far (each step's) and p per window of `window_s` simulated seconds.
void show_hit_rate_timeline(ChartView* v, const ReplayResult& r, double window_s);
void show_latency_chart(ChartView* v, const ReplayResult& r, LatencyMetric metric);
void show_step_breakdown(ChartView* v, const ReplayResult& r);

// The step-time breakdown's four parts, summed over a method's steps (ms).
struct KernelTimes {
  double attention_ms = 0, dense_ms = 0, ccv_ms = 0, other_ms = 0;
};
KernelTimes sum_kernel_times(const MethodResult& m);

}  // namespace kvscope::gui
