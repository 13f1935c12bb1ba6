#include "gui/summary_view.h"

#include <cmath>
#include <functional>

#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QTableView>
#include <QVBoxLayout>

#include "gui/chart_view.h"
#include "gui/charts.h"
#include "gui/number_table.h"
#include "sim/cli/options.h"

namespace kvscope::gui {

SummaryView::SummaryView(QWidget* parent) : QWidget(parent) {
  auto* v = new QVBoxLayout(this);
  trace_stats_ = new QLabel(tr("No replay yet."));
  trace_stats_->setWordWrap(true);
  trace_stats_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  v->addWidget(trace_stats_);
  table_ = new NumberTable(this);
  auto* view = new QTableView();
  view->setModel(table_);
  view->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  view->verticalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  v->addWidget(view, 1);
  use_measured_p_ = new QPushButton(tr("Use the measured hit rate as p in the analytic view"));
  use_measured_p_->setEnabled(false);
  connect(use_measured_p_, &QPushButton::clicked, this, [this] {
    if (measured_p_) emit use_hit_rate_requested(*measured_p_);
  });
  v->addWidget(use_measured_p_, 0, Qt::AlignLeft);
}

void SummaryView::show_result(const ReplayResult& r, const std::string& cost_model) {
  const TraceStats& t = r.trace;
  trace_stats_->setText(
      tr("%1Trace %2 (%3): %4 requests, %5 skipped records, %6 input and %7 output tokens over "
         "%8 s. Steps priced by %9.")
          .arg(r.cancelled ? tr("[cancelled, partial] ") : QString(),
               QString::fromStdString(t.path), QString::fromStdString(t.format))
          .arg(t.requests)
          .arg(t.skipped_records)
          .arg(t.input_tokens)
          .arg(t.output_tokens)
          .arg(format_value(t.duration_s))
          .arg(QString::fromStdString(cost_model)));

  enum Kind { count, ms, seconds, bytes, ratio, rate };
  struct Metric {
    QString name;
    Kind kind;
    std::function<double(const MethodSummary&)> get;
  };
  auto d = [](int64_t v) { return static_cast<double>(v); };
  // Differences from the baseline exist only when the baseline ran too.
  auto vs_base = [](const MethodSummary& s, double v) { return s.has_baseline ? v : std::nan(""); };
  const std::vector<Metric> metrics = {
      {tr("requests served"), count, [&](const MethodSummary& s) { return d(s.requests); }},
      {tr("requests rejected (KV never fits)"), count,
       [&](const MethodSummary& s) { return d(s.rejected); }},
      {tr("TTFT p50 (ms)"), ms, [](const MethodSummary& s) { return s.ttft_ms.p50; }},
      {tr("TTFT p90 (ms)"), ms, [](const MethodSummary& s) { return s.ttft_ms.p90; }},
      {tr("TTFT p99 (ms)"), ms, [](const MethodSummary& s) { return s.ttft_ms.p99; }},
      {tr("TTFT mean (ms)"), ms, [](const MethodSummary& s) { return s.ttft_ms.mean; }},
      {tr("TBT p50 (ms)"), ms, [](const MethodSummary& s) { return s.tbt_ms.p50; }},
      {tr("TBT p90 (ms)"), ms, [](const MethodSummary& s) { return s.tbt_ms.p90; }},
      {tr("TBT p99 (ms)"), ms, [](const MethodSummary& s) { return s.tbt_ms.p99; }},
      {tr("TBT mean (ms)"), ms, [](const MethodSummary& s) { return s.tbt_ms.mean; }},
      {tr("E2E p50 (ms)"), ms, [](const MethodSummary& s) { return s.e2e_ms.p50; }},
      {tr("E2E p90 (ms)"), ms, [](const MethodSummary& s) { return s.e2e_ms.p90; }},
      {tr("E2E p99 (ms)"), ms, [](const MethodSummary& s) { return s.e2e_ms.p99; }},
      {tr("E2E mean (ms)"), ms, [](const MethodSummary& s) { return s.e2e_ms.mean; }},
      {tr("makespan (s)"), seconds, [](const MethodSummary& s) { return s.makespan_s; }},
      {tr("throughput (generated tokens/s)"), rate,
       [](const MethodSummary& s) { return s.throughput_tokens_per_s; }},
      {tr("generated tokens"), count,
       [&](const MethodSummary& s) { return d(s.generated_tokens); }},
      {tr("prefill tokens (recomputation included)"), count,
       [&](const MethodSummary& s) { return d(s.prefill_tokens); }},
      {tr("steps"), count, [&](const MethodSummary& s) { return d(s.steps); }},
      {tr("weights (bytes)"), bytes, [&](const MethodSummary& s) { return d(s.weight_bytes); }},
      {tr("peak total: weights + KV + CCV cache (bytes)"), bytes,
       [&](const MethodSummary& s) { return d(s.peak_total_bytes); }},
      {tr("peak KV (bytes)"), bytes, [&](const MethodSummary& s) { return d(s.peak_kv_bytes); }},
      {tr("mean KV, time-weighted (bytes)"), bytes,
       [](const MethodSummary& s) { return s.mean_kv_bytes; }},
      {tr("KV pool capacity (bytes)"), bytes,
       [&](const MethodSummary& s) { return d(s.kv_capacity_bytes); }},
      {tr("peak CCV cache (bytes)"), bytes,
       [&](const MethodSummary& s) { return d(s.peak_ccv_cache_bytes); }},
      {tr("mean CCV cache, time-weighted (bytes)"), bytes,
       [](const MethodSummary& s) { return s.mean_ccv_cache_bytes; }},
      {tr("CCV hit rate p"), ratio, [](const MethodSummary& s) { return s.hit_rate; }},
      {tr("CCV lookups"), count, [&](const MethodSummary& s) { return d(s.ccv_lookups); }},
      {tr("CCV hits"), count, [&](const MethodSummary& s) { return d(s.ccv_hits); }},
      {tr("CCV insertions"), count, [&](const MethodSummary& s) { return d(s.ccv_insertions); }},
      {tr("CCV evictions"), count, [&](const MethodSummary& s) { return d(s.ccv_evictions); }},
      {tr("CCV expirations"), count, [&](const MethodSummary& s) { return d(s.ccv_expirations); }},
      {tr("preemptions"), count, [&](const MethodSummary& s) { return d(s.preemptions); }},
      {tr("busy time, paper model (ms)"), ms,
       [](const MethodSummary& s) { return s.busy_paper_ms; }},
      {tr("busy time, full-layer model (ms)"), ms,
       [](const MethodSummary& s) { return s.busy_full_ms; }},
      {tr("time saved vs baseline, full-layer model (ms)"), ms,
       [&](const MethodSummary& s) { return vs_base(s, s.time_saved_vs_baseline_ms); }},
      {tr("time saved vs baseline, paper model (ms)"), ms,
       [&](const MethodSummary& s) { return vs_base(s, s.time_saved_vs_baseline_paper_ms); }},
  };
  QStringList rows, cols;
  for (const MethodResult& m : r.methods) cols << method_label(m.summary.method);
  std::vector<std::vector<double>> values;
  std::vector<std::vector<QString>> shown;
  for (const Metric& metric : metrics) {
    rows << metric.name;
    std::vector<double> vrow;
    std::vector<QString> srow;
    for (const MethodResult& m : r.methods) {
      const double x = metric.get(m.summary);
      vrow.push_back(x);
      if (std::isnan(x)) {
        srow.push_back(tr("n/a (no baseline)"));
        continue;
      }
      switch (metric.kind) {
        case count:
          srow.push_back(QString::number(static_cast<qlonglong>(x)));
          break;
        case bytes:
          srow.push_back(QString::fromStdString(cli::human_bytes(x)));
          break;
        case ratio:
          srow.push_back(QString::number(x, 'f', 4));
          break;
        default:
          srow.push_back(format_value(x));
      }
    }
    values.push_back(std::move(vrow));
    shown.push_back(std::move(srow));
  }
  table_->set(rows, cols, std::move(values), std::move(shown));
  measured_p_.reset();
  for (const MethodResult& m : r.methods)
    if (uses_ccv(m.summary.method)) {
      measured_p_ = m.summary.hit_rate;
      break;
    }
  use_measured_p_->setEnabled(measured_p_.has_value());
}

}  // namespace kvscope::gui
