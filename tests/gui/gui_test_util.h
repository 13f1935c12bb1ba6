// Helpers shared by the kvscope-gui Qt Test suites.
#pragma once

#include <stdexcept>

#include <QAbstractSeries>
#include <QCoreApplication>
#include <QStandardPaths>
#include <QXYSeries>

#include "gui/chart_view.h"
#include "gui/replay_runner.h"

namespace kvscope::gui::testing {

// Keeps tests from reading or writing the user's recent-files list.
inline void isolate_settings() {
  QStandardPaths::setTestModeEnabled(true);
  QCoreApplication::setOrganizationName("kvscope-test");
  QCoreApplication::setApplicationName("kvscope-gui-test");
}

// The points of the series called `name` in `v`; empty if there is none.
inline QList<QPointF> points(const ChartView* v, const QString& name) {
  for (QAbstractSeries* s : v->chart()->series())
    if (s->name() == name)
      if (auto* xy = qobject_cast<QXYSeries*>(s)) return xy->points();
  return {};
}

inline QStringList series_names(const ChartView* v) {
  QStringList out;
  for (QAbstractSeries* s : v->chart()->series()) out << s->name();
  return out;
}

// For windows whose test must not replay: calling it is a failure the runner reports.
inline ReplayFn no_replay() {
  return [](const std::string&, const ReplayConfig&, const OpCostModel&, const ProgressFn&,
            const std::atomic<bool>*) -> ReplayResult {
    throw std::logic_error("this test does not expect a replay");
  };
}

}  // namespace kvscope::gui::testing
