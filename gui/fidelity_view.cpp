#include "gui/fidelity_view.h"

#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>

#include "gui/chart_view.h"
#include "gui/charts.h"
#include "gui/fidelity.h"
#include "gui/number_table.h"

namespace kvscope::gui {

FidelityView::FidelityView(QWidget* parent) : QWidget(parent) {
  auto* v = new QVBoxLayout(this);
  header_ = new QLabel();
  header_->setWordWrap(true);
  header_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  v->addWidget(header_);
  auto table_view = [&](NumberTable*& table) {
    table = new NumberTable(this);
    auto* view = new QTableView();
    view->setModel(table);
    view->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    connect(view, &QTableView::pressed, this, [this, table] { emit table_activated(table); });
    return view;
  };
  scatter_ = new ChartView("pred_vs_meas", tr("Predicted vs measured step time"));
  // The latency table beside the chart, the short memory table under both: the chart keeps
  // enough width for its legend.
  auto* top = new QSplitter(Qt::Horizontal);
  top->addWidget(table_view(latency_table_));
  top->addWidget(scatter_);
  top->setSizes({560, 480});
  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(top);
  split->addWidget(table_view(memory_table_));
  split->setSizes({600, 150});
  v->addWidget(split, 1);
  show_check(nullptr);
}

void FidelityView::show_check(const CheckOutput* check) {
  if (!check) {
    header_->setText(
        tr("No check result. Open one with File > Open check result, or drop a kvscope check "
           "--out folder (or its check_summary.json) on the window."));
    latency_table_->reset();
    memory_table_->reset();
    scatter_->clear();
    scatter_->set_placeholder(tr("Open a check result (File > Open check result)"));
    return;
  }
  show_latency_fidelity(latency_table_, check->summary);
  show_memory_fidelity(memory_table_, check->summary);
  const std::size_t left_out = show_pred_vs_meas(scatter_, check->steps);
  QString header = check_header_text(*check);
  if (left_out > 0)
    header += '\n' + tr("%1 steps with a predicted or measured time of 0 are not in the chart "
                        "(log axes).")
                         .arg(left_out);
  header_->setText(header);
}

QString FidelityView::header_text() const { return header_->text(); }

}  // namespace kvscope::gui
