// Fills the app's charts from library results. Each function only maps numbers the library
// computed (model/ for the analytic rows, sim/ for the replay result) onto series, choosing
// display units; nothing here models or simulates.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include <QList>
#include <QPointF>
#include <QString>

#include "gui/chart_view.h"
#include "model/analytic.h"
#include "sim/check/check_report.h"
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
constexpr std::size_t kMaxTimelinePoints = 2000;
template <class Value>  // double(std::size_t)
std::vector<std::size_t> envelope_indices(std::size_t n, std::size_t max_points, Value value) {
  std::vector<std::size_t> out;
  if (n <= max_points || max_points < 4) {
    out.resize(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = i;
    return out;
  }
  const std::size_t buckets = max_points / 2;
  out.reserve(max_points + 2);
  out.push_back(0);
  for (std::size_t b = 0; b < buckets; ++b) {
    const std::size_t lo = b * n / buckets, hi = (b + 1) * n / buckets;
    std::size_t imin = lo, imax = lo;
    double vmin = value(lo), vmax = vmin;
    for (std::size_t i = lo + 1; i < hi; ++i) {
      const double v = value(i);
      if (v < vmin) vmin = v, imin = i;
      if (v > vmax) vmax = v, imax = i;
    }
    for (std::size_t i : {std::min(imin, imax), std::max(imin, imax)})
      if (i != out.back()) out.push_back(i);
  }
  if (out.back() != n - 1) out.push_back(n - 1);
  return out;
}

// Analytic view.
void show_cost_chart(ChartView* v, const std::vector<AnalyticRow>& rows);
void show_memory_chart(ChartView* v, const std::vector<AnalyticRow>& rows,
                       const std::vector<Method>& methods);

// Replay view. A result can hold millions of steps: prepare_replay_views walks them (on the
// replay's worker thread) and keeps only what the charts draw, so showing a result on the UI
// thread costs the same for any trace length.
struct KernelTimes {  // a method's steps' parts summed (ms)
  double attention_ms = 0, dense_ms = 0, ccv_ms = 0, other_ms = 0;
};
struct TimelineLine {
  QString name;
  Method method = Method::baseline;
  Qt::PenStyle style = Qt::SolidLine;
  double width = 1.0;
  bool light = false;  // a lighter shade of the method's colour
  QList<QPointF> points;
};
struct ReplayViews {
  ByteUnit memory_unit;
  double max_memory = 0;  // in memory_unit
  double max_time_s = 0;
  double max_hit_rate = 0;
  double window_s = 0;
  std::vector<TimelineLine> memory;       // KV per method; the CCV cache of the CCV methods
  std::vector<TimelineLine> hit_rate;     // CCV methods: p so far, p per window
  std::vector<KernelTimes> kernel_times;  // per method, in the result's order
};
ReplayViews prepare_replay_views(const ReplayResult& r, double window_s);

enum class LatencyMetric { ttft, tbt, e2e };
QString latency_metric_label(LatencyMetric m);
void show_memory_timeline(ChartView* v, const ReplayViews& d);
void show_hit_rate_timeline(ChartView* v, const ReplayViews& d);
void show_latency_chart(ChartView* v, const ReplayResult& r, LatencyMetric metric);
void show_step_breakdown(ChartView* v, const ReplayResult& r, const ReplayViews& d);

// Fidelity view: predicted against measured step time of a check's steps, log-log in ms, one
// series per method (in the order the steps name them; a point per step, in file order, at
// (measured, predicted)), with the y = x line and the +-10% lines (|pred - meas| / meas = 0.1).
// Steps with a time of 0 cannot sit on log axes and are left out; the count is returned.
std::size_t show_pred_vs_meas(ChartView* v, const std::vector<check::StepsCsvRow>& steps);

}  // namespace kvscope::gui
