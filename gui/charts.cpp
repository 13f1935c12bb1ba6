#include "gui/charts.h"

#include "model/kv_format.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QLegendMarker>
#include <QLineSeries>
#include <QLogValueAxis>
#include <QPen>
#include <QScatterSeries>
#include <QStackedBarSeries>
#include <QValueAxis>

namespace kvscope::gui {

ByteUnit byte_unit_for(double max_bytes) {
  static const std::pair<const char*, double> units[] = {
      {"TiB", 1099511627776.0}, {"GiB", 1073741824.0}, {"MiB", 1048576.0}, {"KiB", 1024.0}};
  for (const auto& [name, bytes] : units)
    if (max_bytes >= bytes) return {name, bytes};
  return {"B", 1.0};
}

QString method_label(Method m) {
  const KvFormatInfo& f = kv_format_info(m);
  return QString::fromUtf8(std::string(m.with_ccv ? f.ccv_label : f.label).c_str());
}

namespace {

// One colour per method, in the order of all_methods().
QColor method_color(Method m) {
  static const QColor palette[] = {QColor(0x44, 0x55, 0x66), QColor(0xe0, 0x7b, 0x1a),
                                   QColor(0x2a, 0x9d, 0x4a), QColor(0x7b, 0x3f, 0xb0),
                                   QColor(0x1f, 0x77, 0xb4), QColor(0xd6, 0x27, 0x28)};
  return palette[method_index(m) % std::size(palette)];
}

QLineSeries* add_line(ChartView* v, const QString& name, const QList<QPointF>& pts, QColor color,
                      Qt::PenStyle style = Qt::SolidLine, bool markers = false,
                      double width = 2.0) {
  auto* s = new QLineSeries();
  s->setName(name);
  s->replace(pts);
  QPen pen(color);
  pen.setWidthF(width);
  pen.setStyle(style);
  s->setPen(pen);
  s->setPointsVisible(markers);
  v->chart()->addSeries(s);
  v->track(s);
  return s;
}

// Attaches x and y axes to every series of the chart.
void attach(ChartView* v, QAbstractAxis* x, QAbstractAxis* y) {
  x->setTitleText(v->x_axis().title());
  y->setTitleText(v->y_axis().title());
  v->chart()->addAxis(x, Qt::AlignBottom);
  v->chart()->addAxis(y, Qt::AlignLeft);
  for (QAbstractSeries* s : v->chart()->series()) {
    s->attachAxis(x);
    s->attachAxis(y);
  }
}

// Context lengths span orders of magnitude: a base-2 log axis puts each doubling at equal width.
QAbstractAxis* tokens_axis() {
  auto* a = new QLogValueAxis();
  a->setBase(2);
  a->setLabelFormat("%.0f");
  a->setMinorTickCount(0);
  return a;
}

QAbstractAxis* value_axis(double min, double max, const char* fmt = "%.3g") {
  auto* a = new QValueAxis();
  a->setRange(min, max > min ? max : min + 1);
  a->setLabelFormat(fmt);
  a->applyNiceNumbers();
  return a;
}

}  // namespace

void show_cost_chart(ChartView* v, const std::vector<AnalyticRow>& rows) {
  v->clear();
  v->set_axes({"context length N", "tokens"}, {"prefill time", "ms"});
  QList<QPointF> tran, ccv, full_tran, full_ccv;
  double lo = INFINITY, hi = 0;
  for (const AnalyticRow& r : rows) {
    const double n = static_cast<double>(r.n_tokens);
    tran << QPointF(n, r.paper.t_tran_ms);
    ccv << QPointF(n, r.paper.t_ccv_ms);
    full_tran << QPointF(n, r.full.t_tran_ms);
    full_ccv << QPointF(n, r.full.t_ccv_ms);
    for (double t : {r.paper.t_tran_ms, r.paper.t_ccv_ms, r.full.t_tran_ms, r.full.t_ccv_ms}) {
      lo = std::min(lo, t);
      hi = std::max(hi, t);
    }
  }
  add_line(v, "T_tran (paper)", tran, method_color(Method::baseline), Qt::SolidLine, true);
  add_line(v, "T_ccv (paper)", ccv, method_color(Method::ccv), Qt::SolidLine, true);
  add_line(v, "T_tran (full layer)", full_tran, method_color(Method::baseline), Qt::DashLine, true);
  add_line(v, "T_ccv (full layer)", full_ccv, method_color(Method::ccv), Qt::DashLine, true);
  QAbstractAxis* y = nullptr;
  if (lo > 0 && std::isfinite(lo)) {
    auto* log_y = new QLogValueAxis();
    log_y->setBase(10);
    log_y->setLabelFormat("%g");
    log_y->setMinorTickCount(-1);
    log_y->setMinorGridLineColor(QColor(235, 235, 235));
    log_y->setRange(std::pow(10.0, std::floor(std::log10(lo))),
                    std::pow(10.0, std::ceil(std::log10(hi))));
    y = log_y;
  } else {
    y = value_axis(0, hi);
  }
  attach(v, tokens_axis(), y);
}

void show_memory_chart(ChartView* v, const std::vector<AnalyticRow>& rows,
                       const std::vector<Method>& methods) {
  v->clear();
  double max_bytes = 0;
  for (const AnalyticRow& r : rows)
    for (Method m : methods) max_bytes = std::max(max_bytes, r.kv_bytes(m));
  const ByteUnit u = byte_unit_for(max_bytes);
  v->set_axes({"context length N", "tokens"}, {"KV per sequence", u.name});
  for (Method m : methods) {
    QList<QPointF> pts;
    for (const AnalyticRow& r : rows)
      pts << QPointF(static_cast<double>(r.n_tokens), r.kv_bytes(m) / u.bytes);
    add_line(v, method_label(m), pts, method_color(m), Qt::SolidLine, true);
  }
  attach(v, tokens_axis(), value_axis(0, max_bytes / u.bytes));
}

namespace {

TimelineLine timeline(const QString& name, Method m, Qt::PenStyle style, double width,
                      QList<QPointF> pts, bool light = false) {
  return {name, m, style, width, light, std::move(pts)};
}

void draw(ChartView* v, const TimelineLine& l) {
  const QColor c = method_color(l.method);
  add_line(v, l.name, l.points, l.light ? c.lighter(135) : c, l.style, false, l.width);
}

}  // namespace

ReplayViews prepare_replay_views(const ReplayResult& r, double window_s) {
  ReplayViews out;
  double max_bytes = 0;
  for (const MethodResult& m : r.methods)
    for (const StepRecord& s : m.steps) {
      max_bytes = std::max(max_bytes, static_cast<double>(s.kv_bytes + s.ccv_cache_bytes));
      out.max_time_s = std::max(out.max_time_s, (s.start_ms + s.full_ms) / 1e3);
    }
  out.memory_unit = byte_unit_for(max_bytes);
  out.max_memory = max_bytes / out.memory_unit.bytes;
  out.window_s = window_s;

  for (const MethodResult& m : r.methods) {
    const Method method = m.summary.method;
    const auto& steps = m.steps;
    auto end_s = [&](std::size_t i) { return (steps[i].start_ms + steps[i].full_ms) / 1e3; };
    // Memory: thin lines, as a long timeline is drawn as its per-bucket lows and highs.
    auto memory = [&](const QString& name, auto bytes_of, Qt::PenStyle style) {
      const auto idx = envelope_indices(steps.size(), kMaxTimelinePoints, [&](std::size_t i) {
        return static_cast<double>(bytes_of(steps[i]));
      });
      QList<QPointF> pts;
      pts.reserve(static_cast<qsizetype>(idx.size()));
      for (std::size_t i : idx)
        pts << QPointF(end_s(i), static_cast<double>(bytes_of(steps[i])) / out.memory_unit.bytes);
      out.memory.push_back(timeline(name, method, style, 1.0, std::move(pts)));
    };
    memory(
        method_label(method) + " KV", [](const StepRecord& s) { return s.kv_bytes; },
        Qt::SolidLine);
    if (uses_ccv(method) && m.summary.peak_ccv_cache_bytes > 0)
      memory(
          method_label(method) + " cache", [](const StepRecord& s) { return s.ccv_cache_bytes; },
          Qt::DashLine);

    KernelTimes t;
    for (const StepRecord& s : steps) {
      t.attention_ms += s.attention_ms;
      t.dense_ms += s.dense_ms;
      t.ccv_ms += s.ccv_ms;
      t.other_ms += s.other_ms;
    }
    out.kernel_times.push_back(t);

    if (!uses_ccv(method)) continue;
    // p over all lookups so far, as each step saw it.
    const auto idx = envelope_indices(steps.size(), kMaxTimelinePoints,
                                      [&](std::size_t i) { return steps[i].hit_rate; });
    QList<QPointF> so_far;
    so_far.reserve(static_cast<qsizetype>(idx.size()));
    for (std::size_t i : idx) {
      so_far << QPointF(end_s(i), steps[i].hit_rate);
      out.max_hit_rate = std::max(out.max_hit_rate, steps[i].hit_rate);
    }
    out.hit_rate.push_back(
        timeline(method_label(method) + " so far", method, Qt::SolidLine, 2.5, std::move(so_far)));
    // p within each window of simulated time, at the window's middle; windows without a lookup
    // have no p and are left out.
    QList<QPointF> win;
    for (const HitWindow& w : m.hit_windows) {
      if (w.lookups == 0) continue;
      const double p = static_cast<double>(w.hits) / static_cast<double>(w.lookups);
      win << QPointF(w.start_s + window_s / 2, p);
      out.max_time_s = std::max(out.max_time_s, w.start_s + window_s);
      out.max_hit_rate = std::max(out.max_hit_rate, p);
    }
    if (!win.isEmpty())
      out.hit_rate.push_back(
          timeline(method_label(method) + QObject::tr(" per %1 s").arg(format_value(window_s)),
                   method, Qt::SolidLine, 1.0, std::move(win), true));
  }
  return out;
}

void show_memory_timeline(ChartView* v, const ReplayViews& d) {
  v->clear();
  v->set_axes({"simulated time", "s"}, {"memory in use", d.memory_unit.name});
  for (const TimelineLine& l : d.memory) draw(v, l);
  attach(v, value_axis(0, d.max_time_s, "%.0f"), value_axis(0, d.max_memory));
  v->chart()->legend()->setAlignment(Qt::AlignRight);
  if (v->chart()->series().isEmpty()) v->set_placeholder(QObject::tr("no steps in this replay"));
}

void show_hit_rate_timeline(ChartView* v, const ReplayViews& d) {
  v->clear();
  v->set_axes({"simulated time", "s"}, {"CCV hit rate p", ""});
  for (const TimelineLine& l : d.hit_rate) draw(v, l);
  // p is often small (the Mooncake trace's is about 0.01): the axis follows the data up to 1.
  attach(v, value_axis(0, d.max_time_s, "%.0f"),
         value_axis(0, std::min(1.0, std::max(0.01, d.max_hit_rate * 1.15)), "%.3g"));
  v->chart()->legend()->setAlignment(Qt::AlignRight);
  if (v->chart()->series().isEmpty())
    v->set_placeholder(QObject::tr("no CCV method in this replay"));
}

QString latency_metric_label(LatencyMetric m) {
  switch (m) {
    case LatencyMetric::ttft:
      return "time to first token";
    case LatencyMetric::tbt:
      return "time between tokens";
    case LatencyMetric::e2e:
      return "end-to-end latency";
  }
  return {};
}

void show_latency_chart(ChartView* v, const ReplayResult& r, LatencyMetric metric) {
  v->clear();
  auto pick = [metric](const MethodSummary& s) -> const Percentiles& {
    return metric == LatencyMetric::ttft  ? s.ttft_ms
           : metric == LatencyMetric::tbt ? s.tbt_ms
                                          : s.e2e_ms;
  };
  double hi_ms = 0;
  for (const MethodResult& m : r.methods) {
    const Percentiles& p = pick(m.summary);
    hi_ms = std::max({hi_ms, p.p50, p.p90, p.p99, p.mean});
  }
  // Queueing can make latencies minutes long: seconds read better from 10 s up.
  const bool seconds = hi_ms >= 1e4;
  const double scale = seconds ? 1e-3 : 1.0;
  v->set_axes({"percentile", ""}, {latency_metric_label(metric), seconds ? "s" : "ms"});
  const QStringList cats{"p50", "p90", "p99", "mean"};
  v->set_categories(cats);
  auto* series = new QBarSeries();
  for (const MethodResult& m : r.methods) {
    const Percentiles& p = pick(m.summary);
    auto* set = new QBarSet(method_label(m.summary.method));
    set->setColor(method_color(m.summary.method));
    set->append({p.p50 * scale, p.p90 * scale, p.p99 * scale, p.mean * scale});
    series->append(set);
    v->track(set);
  }
  v->chart()->addSeries(series);
  auto* x = new QBarCategoryAxis();
  x->append(cats);
  attach(v, x, value_axis(0, hi_ms * scale, hi_ms * scale >= 1000 ? "%.0f" : "%.3g"));
}

void show_step_breakdown(ChartView* v, const ReplayResult& r, const ReplayViews& d) {
  v->clear();
  v->set_axes({"method", ""}, {"step time, summed over the replay", "s"});
  QStringList cats;
  auto* attention = new QBarSet("attention");
  auto* dense = new QBarSet("QKV, O, MLP");
  auto* ccv = new QBarSet("CCV linear + cosine");
  auto* other = new QBarSet("norms");
  attention->setColor(QColor(0x3b, 0x6e, 0xc4));
  dense->setColor(QColor(0x9a, 0xa5, 0xb1));
  ccv->setColor(method_color(Method::ccv));
  other->setColor(QColor(0xd9, 0xb3, 0x4c));
  double hi = 0;
  for (std::size_t k = 0; k < r.methods.size() && k < d.kernel_times.size(); ++k) {
    cats << method_label(r.methods[k].summary.method);
    const KernelTimes& t = d.kernel_times[k];
    attention->append(t.attention_ms / 1e3);
    dense->append(t.dense_ms / 1e3);
    ccv->append(t.ccv_ms / 1e3);
    other->append(t.other_ms / 1e3);
    hi = std::max(hi, (t.attention_ms + t.dense_ms + t.ccv_ms + t.other_ms) / 1e3);
  }
  v->set_categories(cats);
  auto* series = new QStackedBarSeries();
  for (QBarSet* s : {attention, dense, ccv, other}) {
    series->append(s);
    v->track(s);
  }
  v->chart()->addSeries(series);
  auto* x = new QBarCategoryAxis();
  x->append(cats);
  attach(v, x, value_axis(0, hi, hi >= 1000 ? "%.0f" : "%.3g"));
}

std::size_t show_pred_vs_meas(ChartView* v, const std::vector<check::StepsCsvRow>& steps) {
  v->clear();
  v->set_axes({"measured step time", "ms"}, {"predicted step time", "ms"});
  std::vector<Method> methods;
  double lo = INFINITY, hi = 0;
  std::size_t left_out = 0;
  for (const check::StepsCsvRow& r : steps) {
    if (!(r.predicted_ms > 0 && r.measured_ms > 0)) {
      ++left_out;
      continue;
    }
    if (std::find(methods.begin(), methods.end(), r.method) == methods.end())
      methods.push_back(r.method);
    lo = std::min({lo, r.predicted_ms, r.measured_ms});
    hi = std::max({hi, r.predicted_ms, r.measured_ms});
  }
  if (methods.empty()) {
    v->set_placeholder(steps.empty() ? QObject::tr("no steps.csv beside this check summary")
                                     : QObject::tr("no step with a measured time"));
    return left_out;
  }
  // Whole decades, so the reference lines run corner to corner.
  const double d0 = std::pow(10.0, std::floor(std::log10(lo)));
  double d1 = std::pow(10.0, std::ceil(std::log10(hi)));
  if (d1 <= d0) d1 = d0 * 10;
  const QColor line(0x44, 0x44, 0x44), band(0x88, 0x88, 0x88);
  add_line(v, "y = x", {{d0, d0}, {d1, d1}}, line, Qt::SolidLine, false, 1.2);
  add_line(v, "+10%", {{d0, d0 * 1.1}, {d1 / 1.1, d1}}, band, Qt::DashLine, false, 1.0);
  add_line(v, "-10%", {{d0, d0 * 0.9}, {d1, d1 * 0.9}}, band, Qt::DashLine, false, 1.0);
  for (Method m : methods) {
    auto* s = new QScatterSeries();
    s->setName(method_label(m));
    s->setMarkerSize(7);
    QColor c = method_color(m);
    s->setBorderColor(c.darker(130));
    c.setAlpha(170);  // overlapping steps stay visible
    s->setColor(c);
    QList<QPointF> pts;
    QStringList notes;
    for (const check::StepsCsvRow& r : steps) {
      if (r.method != m || !(r.predicted_ms > 0 && r.measured_ms > 0)) continue;
      pts << QPointF(r.measured_ms, r.predicted_ms);
      notes << QObject::tr("step %1 (%2), error %3%\n%4")
                   .arg(r.step)
                   .arg(QString::fromUtf8(
                       check::step_kind_name(r.kind).data(),
                       static_cast<qsizetype>(check::step_kind_name(r.kind).size())))
                   .arg(QString::number(100.0 * r.rel_error, 'f', 1))
                   .arg(QString::fromStdString(r.shape));
    }
    s->replace(pts);
    v->chart()->addSeries(s);
    v->track(s);
    v->set_point_notes(s, notes);
  }
  auto log_axis = [&] {
    auto* a = new QLogValueAxis();
    a->setBase(10);
    a->setLabelFormat("%g");
    a->setMinorTickCount(-1);
    a->setMinorGridLineColor(QColor(235, 235, 235));
    a->setRange(d0, d1);
    return a;
  };
  attach(v, log_axis(), log_axis());
  // One legend entry for the two +-10% lines.
  const QList<QAbstractSeries*> all = v->chart()->series();
  v->chart()->legend()->markers(all[1]).front()->setLabel(QObject::tr("±10%"));
  v->chart()->legend()->markers(all[2]).front()->setVisible(false);
  v->chart()->legend()->setAlignment(Qt::AlignRight);
  return left_out;
}

}  // namespace kvscope::gui
