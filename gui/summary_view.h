// The Summary view: the trace replayed and what priced its steps, and a table of every method's
// summary (latency percentiles, throughput, memory, CCV cache counters, time saved).
#pragma once

#include <optional>
#include <string>

#include <QWidget>

#include "sim/replay/replay.h"

class QLabel;
class QPushButton;

namespace kvscope::gui {

class NumberTable;

class SummaryView : public QWidget {
  Q_OBJECT

 public:
  explicit SummaryView(QWidget* parent = nullptr);

  // `cost_model` describes what priced the replay's steps.
  void show_result(const ReplayResult& r, const std::string& cost_model);

  NumberTable* table() const { return table_; }

 signals:
  // The button under the table: the hit rate of the result's first CCV method.
  void use_hit_rate_requested(double p);

 private:
  QLabel* trace_stats_ = nullptr;
  NumberTable* table_ = nullptr;
  QPushButton* use_measured_p_ = nullptr;
  std::optional<double> measured_p_;  // none when no CCV method ran
};

}  // namespace kvscope::gui
