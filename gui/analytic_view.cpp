#include "gui/analytic_view.h"

#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>

#include "gui/chart_view.h"
#include "gui/charts.h"
#include "gui/number_table.h"
#include "sim/cli/options.h"

namespace kvscope::gui {

AnalyticView::AnalyticView(QWidget* parent) : QWidget(parent) {
  auto* ov = new QVBoxLayout(this);
  ov->setContentsMargins(0, 0, 0, 0);
  pricing_ = new QLabel();
  pricing_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  ov->addWidget(pricing_);
  auto* w = new QSplitter(Qt::Vertical);
  ov->addWidget(w, 1);
  auto* charts = new QSplitter(Qt::Horizontal);
  cost_ = new ChartView("cost_vs_n", tr("Prefill time over N: T_tran vs T_ccv"));
  kv_ = new ChartView("kv_vs_n", tr("KV cache per sequence over N"));
  charts->addWidget(cost_);
  charts->addWidget(kv_);
  w->addWidget(charts);
  table_ = new NumberTable(this);
  auto* view = new QTableView();
  view->setModel(table_);
  view->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  w->addWidget(view);
  w->setStretchFactor(0, 3);
  w->setStretchFactor(1, 1);
  w->setSizes({560, 240});  // the charts first; the table scrolls
}

void AnalyticView::show_rows(const std::vector<AnalyticRow>& rows, const QString& pricing,
                             const std::vector<Method>& methods) {
  pricing_->setText(pricing);
  show_cost_chart(cost_, rows);
  show_memory_chart(kv_, rows, methods);

  const QStringList cols{tr("T_tran paper (ms)"),
                         tr("T_ccv paper (ms)"),
                         tr("speedup paper"),
                         tr("T_tran full (ms)"),
                         tr("T_ccv full (ms)"),
                         tr("speedup full"),
                         tr("T_sa (ms)"),
                         tr("T_l (ms)"),
                         tr("T_cos (ms)"),
                         tr("KV baseline (bytes)"),
                         tr("KV fourier (bytes)"),
                         tr("KV ccv at p (bytes)"),
                         tr("KV fourier+ccv at p (bytes)"),
                         tr("CCV entry (bytes)")};
  QStringList row_names;
  std::vector<std::vector<double>> values;
  std::vector<std::vector<QString>> shown;
  for (const AnalyticRow& r : rows) {
    row_names << tr("N = %1").arg(r.n_tokens);
    const std::vector<double> ms = {r.paper.t_tran_ms, r.paper.t_ccv_ms, r.paper.speedup(),
                                    r.full.t_tran_ms,  r.full.t_ccv_ms,  r.full.speedup(),
                                    r.terms.t_sa_ms,   r.terms.t_l_ms,   r.terms.t_cos_ms};
    const std::vector<double> bytes = {
        static_cast<double>(r.kv_baseline_bytes), static_cast<double>(r.kv_fourier_bytes),
        r.kv_ccv_bytes, r.kv_fourier_ccv_bytes, static_cast<double>(r.ccv_entry_bytes)};
    std::vector<double> row = ms;
    row.insert(row.end(), bytes.begin(), bytes.end());
    std::vector<QString> text;
    for (double x : ms) text.push_back(format_value(x));
    for (double b : bytes) text.push_back(QString::fromStdString(cli::human_bytes(b)));
    values.push_back(std::move(row));
    shown.push_back(std::move(text));
  }
  table_->set(row_names, cols, std::move(values), std::move(shown));
}

}  // namespace kvscope::gui
