#include "gui/fidelity.h"

#include <cmath>

#include <QObject>

#include "gui/charts.h"
#include "gui/number_table.h"
#include "model/methods.h"

namespace kvscope::gui {

namespace {

QString qs(const std::string& s) { return QString::fromStdString(s); }

QString percent(double fraction) { return QString::number(100.0 * fraction, 'f', 1) + "%"; }
QString target(double fraction) { return QString::number(100.0 * fraction, 'g', 3) + "%"; }

// The summary names methods as the CLI does (fourier_ccv); the app's labels read "Fourier+CCV".
QString method_text(const std::string& name) {
  const auto m = parse_method(name);
  return m ? method_label(*m) : qs(name);
}

// Whole numbers with thousands separators, the same in every locale: 64,270,630,912.
QString grouped(int64_t v) {
  QString digits = QString::number(v < 0 ? -v : v);
  for (qsizetype i = digits.size() - 3; i > 0; i -= 3) digits.insert(i, ',');
  return v < 0 ? "-" + digits : digits;
}

// Exact bytes, grouped, so "equal to the byte" can be read off; the binary unit beside them.
QString exact_bytes(int64_t b) {
  const ByteUnit u = byte_unit_for(static_cast<double>(b));
  QString text = grouped(b) + " B";
  if (u.bytes > 1)
    text += QStringLiteral(" (%1 %2)").arg(static_cast<double>(b) / u.bytes, 0, 'f', 2).arg(u.name);
  return text;
}

const QColor kMet(0xd4, 0xed, 0xda), kMissed(0xf8, 0xd7, 0xda);

}  // namespace

CheckOutput load_check_output(const CheckFiles& files) {
  CheckOutput c;
  c.files = files;
  c.summary = load_check_summary(files.summary.toStdString());
  if (!files.steps_csv.isEmpty()) c.steps = check::read_steps_csv(files.steps_csv.toStdString());
  return c;
}

QString check_header_text(const CheckOutput& c) {
  const CheckSummary& s = c.summary;
  // A row without steps measured nothing: it neither meets nor misses a target.
  int measured = 0, missed = 0;
  for (const LatencyFidelity& l : s.latency) {
    if (l.steps == 0) continue;
    ++measured;
    missed += meets_median_target(l) && meets_p90_target(l) ? 0 : 1;
  }
  const QString targets =
      QObject::tr(
          "Targets (median <= %1, p90 <= %2 of |predicted - measured| / measured step "
          "time): %3.")
          .arg(target(kTargetMedianRelError), target(kTargetP90RelError),
               measured == 0 ? QObject::tr("no row with measured steps")
               : missed == 0
                   ? QObject::tr("met in all %1 rows with steps").arg(measured)
                   : QObject::tr("missed in %1 of %2 rows with steps").arg(missed).arg(measured));
  const QString steps =
      c.files.steps_csv.isEmpty()
          ? QObject::tr("no steps.csv beside it, so no per-step chart")
          : QObject::tr("%1 steps from %2").arg(c.steps.size()).arg(c.files.steps_csv);
  return QObject::tr(
             "Check of %1 on %2 (%3 backend), %4: first %5 requests of %6.\n"
             "Command: %7\n"
             "Read from %8; %9.\n"
             "%10")
      .arg(qs(s.model), qs(s.device), qs(s.backend), qs(s.date))
      .arg(s.requests)
      .arg(qs(s.trace), qs(s.command), c.files.summary, steps, targets);
}

void show_latency_fidelity(NumberTable* t, const CheckSummary& s) {
  const QStringList cols{QObject::tr("steps"),
                         QObject::tr("median"),
                         QObject::tr("p90"),
                         QObject::tr("max"),
                         QObject::tr("median ≤ %1").arg(target(kTargetMedianRelError)),
                         QObject::tr("p90 ≤ %1").arg(target(kTargetP90RelError))};
  QStringList rows;
  std::vector<std::vector<double>> values;
  std::vector<std::vector<QString>> shown;
  std::vector<std::vector<QColor>> colours;
  for (const LatencyFidelity& l : s.latency) {
    rows << QStringLiteral("%1, %2").arg(method_text(l.method), qs(l.step_kind));
    const bool median_met = meets_median_target(l), p90_met = meets_p90_target(l);
    // Without steps there is nothing to hold against a target (NaN: an empty CSV cell).
    const bool measured = l.steps > 0;
    auto status = [&](bool met) { return measured ? (met ? 1.0 : 0.0) : std::nan(""); };
    auto mark = [&](bool met) {
      return !measured ? QObject::tr("no steps") : met ? QObject::tr("met") : QObject::tr("missed");
    };
    values.push_back({static_cast<double>(l.steps), l.median_rel_error, l.p90_rel_error,
                      l.max_rel_error, status(median_met), status(p90_met)});
    shown.push_back({QString::number(l.steps), percent(l.median_rel_error),
                     percent(l.p90_rel_error), percent(l.max_rel_error), mark(median_met),
                     mark(p90_met)});
    std::vector<QColor> c(cols.size());
    if (measured) {
      c[latency_col::median] = c[latency_col::median_met] = median_met ? kMet : kMissed;
      c[latency_col::p90] = c[latency_col::p90_met] = p90_met ? kMet : kMissed;
    }
    colours.push_back(std::move(c));
  }
  t->set(rows, cols, std::move(values), std::move(shown));
  t->set_backgrounds(std::move(colours));
}

void show_memory_fidelity(NumberTable* t, const CheckSummary& s) {
  const QStringList cols{QObject::tr("predicted KV (bytes)"), QObject::tr("allocated KV (bytes)"),
                         QObject::tr("difference (bytes)")};
  QStringList rows;
  std::vector<std::vector<double>> values;
  std::vector<std::vector<QString>> shown;
  std::vector<std::vector<QColor>> colours;
  for (const MemoryFidelity& m : s.memory) {
    rows << method_text(m.method);
    const int64_t diff = m.predicted_bytes - m.allocated_bytes;
    values.push_back({static_cast<double>(m.predicted_bytes),
                      static_cast<double>(m.allocated_bytes), static_cast<double>(diff)});
    shown.push_back(
        {exact_bytes(m.predicted_bytes), exact_bytes(m.allocated_bytes),
         diff == 0 ? QObject::tr("equal") : (diff > 0 ? "+" : "") + grouped(diff) + " B"});
    std::vector<QColor> c(cols.size());
    c[memory_col::difference] = diff == 0 ? kMet : kMissed;
    colours.push_back(std::move(c));
  }
  t->set(rows, cols, std::move(values), std::move(shown));
  t->set_backgrounds(std::move(colours));
}

}  // namespace kvscope::gui
