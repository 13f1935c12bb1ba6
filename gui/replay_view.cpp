#include "gui/replay_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSplitter>
#include <QVBoxLayout>

#include "gui/chart_view.h"

namespace kvscope::gui {

ReplayView::ReplayView(QWidget* parent) : QWidget(parent) {
  auto* grid = new QVBoxLayout(this);
  memory_ = new ChartView("memory_over_time", tr("Memory over time"));
  hit_rate_ = new ChartView("hit_rate_over_time", tr("CCV hit rate p over time"));
  latency_ = new ChartView("latency", tr("Latency percentiles"));
  steps_ = new ChartView("step_breakdown", tr("Step time by kernel (full-layer model)"));
  auto* top = new QSplitter(Qt::Horizontal);
  top->addWidget(memory_);
  top->addWidget(hit_rate_);
  auto* bottom = new QSplitter(Qt::Horizontal);
  auto* latency = new QWidget();
  auto* lv = new QVBoxLayout(latency);
  lv->setContentsMargins(0, 0, 0, 0);
  lv->setSpacing(2);
  auto* metric_row = new QHBoxLayout();
  metric_row->addWidget(new QLabel(tr("Latency:")));
  latency_metric_ = new QComboBox();
  for (LatencyMetric m : {LatencyMetric::ttft, LatencyMetric::tbt, LatencyMetric::e2e})
    latency_metric_->addItem(latency_metric_label(m), static_cast<int>(m));
  connect(latency_metric_, &QComboBox::currentIndexChanged, this, [this] {
    if (result_) show_latency();
  });
  metric_row->addWidget(latency_metric_);
  metric_row->addStretch(1);
  lv->addLayout(metric_row);
  lv->addWidget(latency_, 1);
  bottom->addWidget(latency);
  bottom->addWidget(steps_);
  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(top);
  split->addWidget(bottom);
  split->setSizes({420, 420});
  grid->addWidget(split);
  for (ChartView* c : charts())
    c->set_placeholder(tr("Open a trace and run a replay (Replay > Run)"));
}

void ReplayView::show_result(std::shared_ptr<const ReplayResult> result,
                             std::shared_ptr<const ReplayViews> views) {
  result_ = std::move(result);
  views_ = std::move(views);
  show_memory_timeline(memory_, *views_);
  show_hit_rate_timeline(hit_rate_, *views_);
  show_latency();
  show_step_breakdown(steps_, *result_, *views_);
}

void ReplayView::show_latency() {
  show_latency_chart(latency_, *result_,
                     static_cast<LatencyMetric>(latency_metric_->currentData().toInt()));
}

}  // namespace kvscope::gui
