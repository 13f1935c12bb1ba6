// The Fidelity view: the repository's H100 check output (results/fidelity/h100-llama-3.1-8b) opened
// as a folder or through any of its files shows exactly what load_check_summary and
// check::read_steps_csv read; bad check files are refused with file, line and field and leave
// the view as it was; sessions keep the check result; the view exports like the others.
#include <cmath>

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QLogValueAxis>
#include <QMimeData>
#include <QScatterSeries>
#include <QSvgRenderer>
#include <QTemporaryDir>
#include <QTest>
#include <QUrl>

#include <nlohmann/json.hpp>

#include "gui/file_kind.h"
#include "gui/main_window.h"
#include "gui/number_table.h"
#include "gui_test_util.h"
#include "model/error.h"
#include "sim/check/check.h"
#include "sim/check/check_report.h"
#include "sim/plan/check_summary.h"

using namespace kvscope;
using namespace kvscope::gui;
using kvscope::gui::testing::points;
using kvscope::gui::testing::series_names;

namespace {

const QString kCheckDir = QStringLiteral(KVSCOPE_SOURCE_DIR "/results/fidelity/h100-llama-3.1-8b");

// The header's verdict on the targets, counted here from the summary itself (rows without steps
// have nothing to meet).
QString expected_verdict(const CheckSummary& s) {
  int rows = 0, missed = 0;
  for (const LatencyFidelity& l : s.latency) {
    if (l.steps == 0) continue;
    ++rows;
    if (!meets_median_target(l) || !meets_p90_target(l)) ++missed;
  }
  return missed == 0 ? QString("met in all %1 rows with steps").arg(rows)
                     : QString("missed in %1 of %2 rows with steps").arg(missed).arg(rows);
}

QByteArray read(const QString& path) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

void write(const QString& path, const QByteArray& text) {
  QFile f(path);
  QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
  f.write(text);
}

// A copy of the repository's check output, to edit or to open from another place.
void copy_check(const QString& to) {
  QVERIFY(QDir().mkpath(to));
  for (const char* name : {"check_summary.json", "check.json", "steps.csv", "steps.jsonl"})
    write(QDir(to).filePath(name), read(QDir(kCheckDir).filePath(name)));
}

QString table_text(const NumberTable* t, int row, int col) {
  return t->data(t->index(row, col), Qt::DisplayRole).toString();
}

// Everything the Fidelity view shows, to compare before and after a failed open.
QString shown(const MainWindow& w) {
  return w.check_header_text() + "\n" + w.fidelity_table()->csv("x") + "\n" +
         w.fidelity_memory_table()->csv("x") + "\n" + w.chart("pred_vs_meas")->csv();
}

}  // namespace

class TestGuiFidelity : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() { kvscope::gui::testing::isolate_settings(); }

  void showsTheLibrarysNumbersForTheRepositoryCheck() {
    const CheckSummary lib = load_check_summary((kCheckDir + "/check_summary.json").toStdString());
    const auto steps = check::read_steps_csv((kCheckDir + "/steps.csv").toStdString());
    QVERIFY(!lib.latency.empty() && !lib.memory.empty() && !steps.empty());

    MainWindow w(kvscope::gui::testing::no_replay());
    QVERIFY2(w.open_file(kCheckDir), qPrintable(w.error_text()));
    QVERIFY(w.error_text().isEmpty());
    QCOMPARE(w.session().view, View::fidelity);
    QCOMPARE(w.session().check_path, QFileInfo(kCheckDir).absoluteFilePath().toStdString());

    // Header: what was checked, where, when and how.
    const QString header = w.check_header_text();
    for (const std::string& s : {lib.model, lib.backend, lib.device, lib.date, lib.command})
      QVERIFY2(header.contains(QString::fromStdString(s)), qPrintable(header));
    QVERIFY2(header.contains(QString("first %1 requests of %2")
                                 .arg(lib.requests)
                                 .arg(QString::fromStdString(lib.trace))),
             qPrintable(header));
    QVERIFY2(header.contains(expected_verdict(lib)), qPrintable(header));

    // Latency: one row per summary row, the summary's own numbers, the targets marked.
    const NumberTable* t = w.fidelity_table();
    QCOMPARE(t->rowCount(), static_cast<int>(lib.latency.size()));
    for (int i = 0; i < t->rowCount(); ++i) {
      const LatencyFidelity& l = lib.latency[static_cast<std::size_t>(i)];
      QCOMPARE(t->value(i, latency_col::steps), static_cast<double>(l.steps));
      QCOMPARE(t->value(i, latency_col::median), l.median_rel_error);
      QCOMPARE(t->value(i, latency_col::p90), l.p90_rel_error);
      QCOMPARE(t->value(i, latency_col::max), l.max_rel_error);
      // Met or missed as the library's targets say, row by row.
      QCOMPARE(t->value(i, latency_col::median_met), meets_median_target(l) ? 1.0 : 0.0);
      QCOMPARE(t->value(i, latency_col::p90_met), meets_p90_target(l) ? 1.0 : 0.0);
      QCOMPARE(table_text(t, i, latency_col::median_met),
               QString(meets_median_target(l) ? "met" : "missed"));
      QCOMPARE(table_text(t, i, latency_col::p90_met),
               QString(meets_p90_target(l) ? "met" : "missed"));
      QVERIFY(t->data(t->index(i, latency_col::p90_met), Qt::BackgroundRole).isValid());
    }
    QCOMPARE(t->headerData(0, Qt::Vertical, Qt::DisplayRole).toString(),
             QString("baseline, prefill"));
    QCOMPARE(t->headerData(15, Qt::Vertical, Qt::DisplayRole).toString(),
             QString("Fourier+CCV, all"));
    // Shown as percentages with one decimal: baseline over all its steps.
    auto percent = [](double f) { return QString::number(100 * f, 'f', 1) + "%"; };
    QCOMPARE(table_text(t, 3, latency_col::median), percent(lib.latency[3].median_rel_error));
    QCOMPARE(table_text(t, 3, latency_col::p90), percent(lib.latency[3].p90_rel_error));
    QCOMPARE(table_text(t, 3, latency_col::max), percent(lib.latency[3].max_rel_error));

    // Memory: predicted and allocated bytes, equal to the byte.
    const NumberTable* m = w.fidelity_memory_table();
    QCOMPARE(m->rowCount(), static_cast<int>(lib.memory.size()));
    for (int i = 0; i < m->rowCount(); ++i) {
      const MemoryFidelity& r = lib.memory[static_cast<std::size_t>(i)];
      QCOMPARE(m->value(i, memory_col::predicted), static_cast<double>(r.predicted_bytes));
      QCOMPARE(m->value(i, memory_col::allocated), static_cast<double>(r.allocated_bytes));
      QCOMPARE(m->value(i, memory_col::difference), 0.0);
      QCOMPARE(table_text(m, i, memory_col::difference), QString("equal"));
    }
    QString grouped = QString::number(lib.memory[0].predicted_bytes);  // digits in threes
    for (auto i = grouped.size() - 3; i > 0; i -= 3) grouped.insert(i, ',');
    QVERIFY(table_text(m, 0, memory_col::predicted).startsWith(grouped + " B"));

    // The scatter: one series per method, a point per step at (measured, predicted), in file
    // order, on log axes in ms.
    ChartView* c = w.chart("pred_vs_meas");
    QCOMPARE(series_names(c),
             QStringList({"y = x", "+10%", "-10%", "baseline", "Fourier", "CCV", "Fourier+CCV"}));
    qsizetype total = 0;
    for (Method method : all_methods()) {
      QList<QPointF> expected;
      for (const check::StepsCsvRow& s : steps)
        if (s.method == method) expected << QPointF(s.measured_ms, s.predicted_ms);
      QCOMPARE(points(c, method_label(method)), expected);
      total += expected.size();
    }
    QCOMPARE(total, static_cast<qsizetype>(steps.size()));
    QCOMPARE(c->x_axis().unit, QString("ms"));
    QCOMPARE(c->y_axis().unit, QString("ms"));
    for (QAbstractAxis* a : c->chart()->axes()) QVERIFY(qobject_cast<QLogValueAxis*>(a));
    for (const QPointF& p : points(c, "y = x")) QCOMPARE(p.y(), p.x());
    for (const QPointF& p : points(c, "+10%")) QCOMPARE(p.y(), p.x() * 1.1);
    for (const QPointF& p : points(c, "-10%")) QCOMPARE(p.y(), p.x() * 0.9);

    // Hovering a point names the step, with units.
    QScatterSeries* baseline = nullptr;
    for (QAbstractSeries* s : c->chart()->series())
      if (s->name() == "baseline") baseline = qobject_cast<QScatterSeries*>(s);
    QVERIFY(baseline);
    const check::StepsCsvRow& first = steps.front();  // the file's first step is baseline's
    QCOMPARE(first.method, Method::baseline);
    const QString hover =
        c->hover_text_for(baseline, QPointF(first.measured_ms - 0.1, first.predicted_ms));
    const auto ms = [](double v) { return QString::number(v, 'f', 1) + " ms"; };
    QVERIFY2(hover.contains("measured step time = " + ms(first.measured_ms)) &&
                 hover.contains("predicted step time = " + ms(first.predicted_ms)) &&
                 hover.contains(QString("step %1 (%2), error %3%")
                                    .arg(first.step)
                                    .arg(QString::fromStdString(
                                        std::string(check::step_kind_name(first.kind))))
                                    .arg(QString::number(100 * first.rel_error, 'f', 1))) &&
                 hover.contains(QString::fromStdString(first.shape)),
             qPrintable(hover));

    // Copy command line: the check's own command.
    QCOMPARE(w.command_line(), QString::fromStdString(lib.command));
    w.set_view(View::analytic);
    QVERIFY(w.command_line().contains(" model "));
  }

  void missedTargetsAndMemoryDifferencesAreMarked() {
    QTemporaryDir tmp;
    auto j =
        nlohmann::json::parse(read(QDir(kCheckDir).filePath("check_summary.json")).toStdString());
    // Every row within its targets first, whatever the repository's check measured; then
    // baseline decode: median over its target, p90 just at it; ccv all: p90 over only.
    for (auto& row : j["latency"]) {
      row["median_rel_error"] = 0.01;
      row["p90_rel_error"] = 0.02;
      row["max_rel_error"] = 0.03;
    }
    j["latency"][1]["median_rel_error"] = 0.06;
    j["latency"][1]["p90_rel_error"] = 0.10;
    j["latency"][1]["max_rel_error"] = 0.3;
    j["latency"][11]["p90_rel_error"] = 0.12;
    j["latency"][11]["max_rel_error"] = 0.2;
    j["latency"][0]["steps"] = 0;  // another tool's summary may list a kind it did not measure
    j["memory"][2]["allocated_bytes"] = j["memory"][2]["predicted_bytes"].get<int64_t>() + 4096;
    const QString path = tmp.filePath("edited.json");
    write(path, QByteArray::fromStdString(j.dump()));
    MainWindow w(kvscope::gui::testing::no_replay());
    QVERIFY2(w.open_check(path), qPrintable(w.error_text()));
    const NumberTable* t = w.fidelity_table();
    auto background = [&](int row, int col) {
      return t->data(t->index(row, col), Qt::BackgroundRole).value<QColor>();
    };
    QCOMPARE(table_text(t, 1, latency_col::median_met), QString("missed"));
    QCOMPARE(t->value(1, latency_col::median_met), 0.0);
    QCOMPARE(table_text(t, 1, latency_col::p90_met), QString("met"));  // 10% is within
    QCOMPARE(table_text(t, 11, latency_col::median_met), QString("met"));
    QCOMPARE(table_text(t, 11, latency_col::p90_met), QString("missed"));
    QCOMPARE(t->value(11, latency_col::p90), 0.12);
    QCOMPARE(table_text(t, 0, latency_col::median_met), QString("no steps"));
    QVERIFY(std::isnan(t->value(0, latency_col::p90_met)));
    QVERIFY(!t->data(t->index(0, latency_col::p90_met), Qt::BackgroundRole).isValid());
    // Missed cells look different from met ones, value and mark alike.
    QVERIFY(background(1, latency_col::median_met) != background(1, latency_col::p90_met));
    QCOMPARE(background(1, latency_col::median), background(1, latency_col::median_met));
    QCOMPARE(background(11, latency_col::p90_met), background(1, latency_col::median_met));
    QCOMPARE(background(2, latency_col::p90_met), background(1, latency_col::p90_met));
    QVERIFY2(w.check_header_text().contains(
                 QString("missed in 2 of %1 rows with steps").arg(j["latency"].size() - 1)),
             qPrintable(w.check_header_text()));
    // Memory: the difference, signed, in bytes.
    const NumberTable* m = w.fidelity_memory_table();
    QCOMPARE(m->value(2, memory_col::difference), -4096.0);
    QCOMPARE(table_text(m, 2, memory_col::difference), QString("-4,096 B"));
    QCOMPARE(table_text(m, 1, memory_col::difference), QString("equal"));
  }

  void anyFileOfTheFolderOpensTheFolder() {
    QTemporaryDir tmp;
    const QString dir = tmp.filePath("check");
    copy_check(dir);
    const std::string folder = QFileInfo(dir).absoluteFilePath().toStdString();
    for (const char* name : {"check.json", "steps.csv", "steps.jsonl"}) {
      const QString path = QDir(dir).filePath(name);
      QCOMPARE(classify_file(path, nullptr), FileKind::check_result);
      MainWindow w(kvscope::gui::testing::no_replay());
      QVERIFY2(w.open_file(path), qPrintable(w.error_text()));
      QCOMPARE(w.session().check_path, folder);
      QCOMPARE(w.check_output()->files.summary, QDir(dir).filePath("check_summary.json"));
      QCOMPARE(w.check_output()->steps.size(),
               check::read_steps_csv((kCheckDir + "/steps.csv").toStdString()).size());
    }
    // The summary by itself is the result; a summary copied alone has no steps to draw.
    const QString alone = tmp.filePath("h100-summary.json");
    write(alone, read(QDir(kCheckDir).filePath("check_summary.json")));
    MainWindow w(kvscope::gui::testing::no_replay());
    QVERIFY2(w.open_check(alone), qPrintable(w.error_text()));
    QCOMPARE(w.session().check_path, alone.toStdString());
    QVERIFY(w.check_output()->steps.empty());
    QVERIFY(w.chart("pred_vs_meas")->chart()->series().isEmpty());
    QCOMPARE(w.fidelity_table()->rowCount(), 16);
    QVERIFY(w.check_header_text().contains("no steps.csv"));
    // A folder dropped on the window.
    w.show();
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(dir)});
    QDragEnterEvent enter(QPoint(50, 50), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&w, &enter);
    QVERIFY(enter.isAccepted());
    QDropEvent drop(QPointF(50, 50), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&w, &drop);
    QVERIFY2(w.error_text().isEmpty(), qPrintable(w.error_text()));
    QCOMPARE(w.session().check_path, folder);
    QCOMPARE(w.check_output()->steps.size(),
             check::read_steps_csv((kCheckDir + "/steps.csv").toStdString()).size());
    // Content decides: a trace .csv stays a trace, a check summary is no profile (it has a
    // "device"), and a folder without a check summary is not a check result.
    write(tmp.filePath("azure.csv"), "TIMESTAMP,ContextTokens,GeneratedTokens\n");
    QCOMPARE(classify_file(tmp.filePath("azure.csv"), nullptr), FileKind::trace);
    QCOMPARE(classify_file(alone, nullptr), FileKind::check_result);
    QString why;
    QCOMPARE(classify_file(tmp.path(), &why), FileKind::unknown);
    QVERIFY2(why.contains("check_summary.json"), qPrintable(why));
  }

  void badCheckFilesAreReportedAndChangeNothing() {
    QTemporaryDir tmp;
    MainWindow w(kvscope::gui::testing::no_replay());
    QVERIFY(w.open_check(kCheckDir));
    const QString before = shown(w);
    const Session session_before = w.session();
    const auto check_before = w.check_output();

    const QByteArray summary = read(QDir(kCheckDir).filePath("check_summary.json"));
    auto json = [&] { return nlohmann::json::parse(summary.toStdString()); };
    auto dumped = [](const nlohmann::json& j) { return QByteArray::fromStdString(j.dump(2)); };
    nlohmann::json missing = json();
    missing["latency"][1].erase("p90_rel_error");
    nlohmann::json version = json();
    version["kvscope_check"] = 2;
    QByteArray steps = read(QDir(kCheckDir).filePath("steps.csv"));
    QList<QByteArray> lines = steps.split('\n');
    // Line 5: measured_ms (column 12) is not a number.
    QList<QByteArray> cells = lines[4].split(',');
    cells[11] = "fast";
    lines[4] = cells.join(',');

    const QByteArray truncated = summary.left(summary.indexOf("\"memory\""));
    const QString truncated_line = QString("line %1").arg(truncated.count('\n') + 1);

    struct Case {
      QString name;
      QByteArray summary, steps;
      QStringList expected;  // in the message
    };
    const QList<Case> cases = {
        {"truncated", truncated, {}, {"check_summary.json", truncated_line, "not valid JSON"}},
        {"missing", dumped(missing), {}, {"check_summary.json", "latency[1].p90_rel_error"}},
        {"version", dumped(version), {}, {"check_summary.json", "kvscope_check", "version"}},
        {"badrow", summary, lines.join('\n'), {"steps.csv:5", "measured_ms", "fast"}},
    };
    for (const Case& c : cases) {
      const QString dir = tmp.filePath(c.name);
      QVERIFY(QDir().mkpath(dir));
      write(QDir(dir).filePath("check_summary.json"), c.summary);
      if (!c.steps.isEmpty()) write(QDir(dir).filePath("steps.csv"), c.steps);
      // Both ways in: the folder (dropped, or named on the command line) and the summary
      // (File > Open check result).
      for (const QString& path : {dir, QDir(dir).filePath("check_summary.json")}) {
        QVERIFY2(!w.open_file(path), qPrintable(c.name));
        const QString error = w.error_text();
        for (const QString& e : c.expected)
          QVERIFY2(error.contains(e), qPrintable(c.name + ": " + error));
        QVERIFY2(error.contains(dir), qPrintable(error));
        QCOMPARE(shown(w), before);
        QCOMPARE(w.session(), session_before);
        QVERIFY(w.check_output() == check_before);
      }
    }
    // A check result that is not there, and a file that is no check result.
    QVERIFY(!w.open_check(tmp.filePath("nowhere")));
    QVERIFY(w.error_text().contains("no such file"));
    QVERIFY(!w.open_check(QStringLiteral(KVSCOPE_SOURCE_DIR "/traces/mooncake")));
    QVERIFY2(w.error_text().contains("not a kvscope check result"), qPrintable(w.error_text()));
    QCOMPARE(shown(w), before);
  }

  void sessionsKeepTheCheckResult() {
    QTemporaryDir tmp;
    const QString dir = tmp.filePath("runs/h100");
    copy_check(dir);
    const QString path = tmp.filePath("session.json");
    QString before;
    {
      MainWindow w(kvscope::gui::testing::no_replay());
      QVERIFY(w.open_check(dir));
      before = shown(w);
      QVERIFY(w.save_session(path));
    }
    const auto j = nlohmann::json::parse(read(path).toStdString());
    QCOMPARE(QString::fromStdString(j.at("check").get<std::string>()), dir);
    QCOMPARE(QString::fromStdString(j.at("view").get<std::string>()), QString("fidelity"));
    {
      MainWindow w(kvscope::gui::testing::no_replay());
      QVERIFY2(w.open_session(path), qPrintable(w.error_text()));
      QCOMPARE(w.session().check_path, dir.toStdString());
      QCOMPARE(w.session().view, View::fidelity);
      QCOMPARE(shown(w), before);
      // A session without a check result clears the view.
      Session s = w.session();
      s.check_path.clear();
      w.set_session(s);
      QVERIFY(w.check_output() == nullptr);
      QCOMPARE(w.fidelity_table()->rowCount(), 0);
    }
    // A relative path is relative to the session file.
    nlohmann::json rel = j;
    rel["check"] = "runs/h100";
    write(path, QByteArray::fromStdString(rel.dump()));
    QCOMPARE(load_session(path.toStdString()).check_path, dir.toStdString());
    {
      MainWindow w(kvscope::gui::testing::no_replay());
      QVERIFY2(w.open_session(path), qPrintable(w.error_text()));
      QCOMPARE(shown(w), before);
    }
    // A session naming a check result that is gone says so and opens without it.
    rel["check"] = "runs/gone";
    write(path, QByteArray::fromStdString(rel.dump()));
    MainWindow w(kvscope::gui::testing::no_replay());
    QVERIFY(!w.open_session(path));
    QVERIFY2(w.error_text().contains(tmp.filePath("runs/gone")), qPrintable(w.error_text()));
    QVERIFY(w.session().check_path.empty());
    QVERIFY(w.check_output() == nullptr);
  }

  void exportsTheFidelityView() {
    QTemporaryDir tmp;
    MainWindow w(kvscope::gui::testing::no_replay());
    w.resize(1400, 900);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QVERIFY(w.open_check(kCheckDir));
    QVERIFY(w.export_all(tmp.path()));
    const QImage png(tmp.filePath("pred_vs_meas.png"));
    QVERIFY(!png.isNull() && png.width() > 100 && png.height() > 100);
    QVERIFY(QSvgRenderer(tmp.filePath("pred_vs_meas.svg")).isValid());
    // The chart's CSV: every step, full precision.
    const QStringList chart =
        QString::fromUtf8(read(tmp.filePath("pred_vs_meas.csv"))).split('\n', Qt::SkipEmptyParts);
    QCOMPARE(chart.front(), QString("series,measured step time (ms),predicted step time (ms)"));
    const auto steps = check::read_steps_csv((kCheckDir + "/steps.csv").toStdString());
    QCOMPARE(chart.filter(QRegularExpression("^baseline,")).front(),
             QString("baseline,%1,%2")
                 .arg(QString::number(steps.front().measured_ms, 'g', 17),
                      QString::number(steps.front().predicted_ms, 'g', 17)));
    // The tables' CSVs: the summary's fractions and bytes at full precision.
    const CheckSummary lib = load_check_summary((kCheckDir + "/check_summary.json").toStdString());
    const QStringList latency =
        QString::fromUtf8(read(tmp.filePath("fidelity.csv"))).split('\n', Qt::SkipEmptyParts);
    QCOMPARE(latency.size(), static_cast<qsizetype>(lib.latency.size()) + 1);
    QVERIFY2(
        latency[2].startsWith(QString("\"baseline, decode\",%1,%2,%3,%4,%5,%6")
                                  .arg(QString::number(lib.latency[1].steps),
                                       QString::number(lib.latency[1].median_rel_error, 'g', 17),
                                       QString::number(lib.latency[1].p90_rel_error, 'g', 17),
                                       QString::number(lib.latency[1].max_rel_error, 'g', 17),
                                       meets_median_target(lib.latency[1]) ? "1" : "0",
                                       meets_p90_target(lib.latency[1]) ? "1" : "0")),
        qPrintable(latency[2]));
    const QStringList memory = QString::fromUtf8(read(tmp.filePath("fidelity_memory.csv")))
                                   .split('\n', Qt::SkipEmptyParts);
    QCOMPARE(memory[1], QString("baseline,%1,%2,%3")
                            .arg(lib.memory[0].predicted_bytes)
                            .arg(lib.memory[0].allocated_bytes)
                            .arg(lib.memory[0].allocated_bytes - lib.memory[0].predicted_bytes));
  }
};

QTEST_MAIN(TestGuiFidelity)
#include "test_gui_fidelity.moc"
