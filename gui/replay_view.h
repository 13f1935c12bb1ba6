// The Replay view: memory and the CCV hit rate over simulated time, latency percentiles (the
// metric picked above the chart) and step time by kernel, for one replay result.
#pragma once

#include <memory>

#include <QList>
#include <QWidget>

#include "gui/charts.h"
#include "sim/replay/replay.h"

class QComboBox;

namespace kvscope::gui {

class ChartView;

class ReplayView : public QWidget {
  Q_OBJECT

 public:
  explicit ReplayView(QWidget* parent = nullptr);

  // `views` is what the ReplayRunner prepared of `result` for the charts.
  void show_result(std::shared_ptr<const ReplayResult> result,
                   std::shared_ptr<const ReplayViews> views);

  // memory_over_time, hit_rate_over_time, latency, step_breakdown
  QList<ChartView*> charts() const { return {memory_, hit_rate_, latency_, steps_}; }
  QComboBox* latency_metric_combo() const { return latency_metric_; }

 private:
  void show_latency();

  std::shared_ptr<const ReplayResult> result_;
  std::shared_ptr<const ReplayViews> views_;
  ChartView* memory_ = nullptr;
  ChartView* hit_rate_ = nullptr;
  ChartView* latency_ = nullptr;
  ChartView* steps_ = nullptr;
  QComboBox* latency_metric_ = nullptr;
};

}  // namespace kvscope::gui
