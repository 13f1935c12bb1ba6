// End to end with the real engine: the window replays the bundled Mooncake trace off the UI
// thread, and its charts and summary hold what kvscope::run_replay returns for the same inputs
// (called here directly, with a configuration written by hand), and what `kvscope replay` prints
// for the copied command line.
#include <algorithm>
#include <cmath>

#include <QAbstractBarSeries>
#include <QBarSet>
#include <QComboBox>
#include <QFile>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "gui/main_window.h"
#include "gui/number_table.h"
#include "gui_test_util.h"
#include "model/hardware.h"
#include "sim/replay/replay.h"

using namespace kvscope;
using namespace kvscope::gui;
using kvscope::gui::testing::points;

namespace {

const QString kTrace = KVSCOPE_SOURCE_DIR "/traces/mooncake/conversation_trace.jsonl";
constexpr int64_t kRequests = 500;  // enough for queueing, CCV hits and preemptions; fast

ReplayConfig config_by_hand() {
  ReplayConfig c;
  c.model = load_model("llama-2-7b");
  c.methods = all_methods();
  c.gpu_memory_bytes = hardware_preset("h100-sxm").memory_bytes;
  c.max_requests = kRequests;
  // MethodConfig's defaults are the CLI's and the panel's: M 256 on half the dims, sink 4,
  // window 64, L_eff 8, threshold 0.8, d2 = d1/2, 4 GiB LRU cache.
  return c;
}

QList<qreal> bar_values(const ChartView* v, const QString& label) {
  QList<qreal> out;
  for (QAbstractSeries* series : v->chart()->series())
    if (auto* b = qobject_cast<QAbstractBarSeries*>(series))
      for (QBarSet* set : b->barSets())
        if (set->label() == label)
          for (int i = 0; i < set->count(); ++i) out << set->at(i);
  return out;
}

int row_of(const NumberTable* t, const QString& name) {
  for (int i = 0; i < t->rowCount(); ++i)
    if (t->headerData(i, Qt::Vertical, Qt::DisplayRole).toString() == name) return i;
  return -1;
}

bool same(double a, double b) { return std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(b)); }

}  // namespace

class TestGuiReplay : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() { kvscope::gui::testing::isolate_settings(); }

  void chartsHoldTheEnginesResult() {
    MainWindow w(kvscope::run_replay);
    w.show();
    QVERIFY(w.open_file(kTrace));
    Session s = w.session();
    s.max_requests = kRequests;
    w.set_session(s);
    QSignalSpy done(&w, &MainWindow::replay_done);
    QVERIFY(w.start_replay());
    QVERIFY(done.wait(120000));
    QVERIFY2(w.error_text().isEmpty(), qPrintable(w.error_text()));
    const auto shown = w.replay_result();
    QVERIFY(shown && !shown->cancelled);

    const ReplayResult r = kvscope::run_replay(kTrace.toStdString(), config_by_hand(),
                                               RooflineCostModel(hardware_preset("h100-sxm")));
    QCOMPARE(r.trace.requests, kRequests);
    QCOMPARE(static_cast<int>(r.methods.size()), 4);

    // Memory over time: every point is a step of the engine's timeline (found by its end time)
    // with that step's KV bytes, and the peak is there.
    const ChartView* mem = w.chart("memory_over_time");
    QCOMPARE(mem->y_axis().unit, QString("GiB"));
    for (const MethodResult& m : r.methods) {
      const QString name = method_label(m.summary.method) + " KV";
      const auto pts = points(mem, name);
      QVERIFY2(!pts.isEmpty(), qPrintable(name));
      QVERIFY(pts.size() <= static_cast<qsizetype>(kMaxTimelinePoints) + 2);
      const auto& steps = m.steps;
      double peak = 0;
      for (const QPointF& p : pts) {
        const auto it = std::lower_bound(
            steps.begin(), steps.end(), p.x(),
            [](const StepRecord& st, double x) { return (st.start_ms + st.full_ms) / 1e3 < x; });
        QVERIFY2(it != steps.end() && (it->start_ms + it->full_ms) / 1e3 == p.x(),
                 qPrintable(name + " has a point at no step's end"));
        // Steps ending at the same instant (zero-time steps) may differ; any of them will do.
        bool found = false;
        for (auto j = it; j != steps.end() && (j->start_ms + j->full_ms) / 1e3 == p.x(); ++j)
          found |= static_cast<double>(j->kv_bytes) / 1073741824.0 == p.y();
        QVERIFY2(found, qPrintable(name + ": a point's value is no step's KV bytes"));
        peak = std::max(peak, p.y());
      }
      QCOMPARE(peak, static_cast<double>(m.summary.peak_kv_bytes) / 1073741824.0);
    }

    // Hit rate: p per window exactly as the engine counted it; the final p is the summary's.
    for (const MethodResult& m : r.methods) {
      if (!uses_ccv(m.summary.method)) continue;
      const auto win =
          points(w.chart("hit_rate_over_time"), method_label(m.summary.method) + " per 60 s");
      QList<QPointF> want;
      for (const HitWindow& hw : m.hit_windows)
        if (hw.lookups > 0)
          want << QPointF(hw.start_s + 30.0,
                          static_cast<double>(hw.hits) / static_cast<double>(hw.lookups));
      QCOMPARE(win, want);
      const auto so_far =
          points(w.chart("hit_rate_over_time"), method_label(m.summary.method) + " so far");
      QVERIFY(!so_far.isEmpty());
      QCOMPARE(so_far.back().y(), m.steps.back().hit_rate);
    }

    // Latency percentiles, in the unit the axis names.
    for (int metric = 0; metric < 3; ++metric) {
      w.latency_metric_combo()->setCurrentIndex(metric);
      const ChartView* lat = w.chart("latency");
      const double scale = lat->y_axis().unit == "s" ? 1e-3 : 1.0;
      for (const MethodResult& m : r.methods) {
        const MethodSummary& ms = m.summary;
        const Percentiles& p = metric == 0 ? ms.ttft_ms : metric == 1 ? ms.tbt_ms : ms.e2e_ms;
        const auto bars = bar_values(lat, method_label(ms.method));
        QCOMPARE(bars.size(), qsizetype{4});
        QVERIFY(same(bars[0], p.p50 * scale) && same(bars[1], p.p90 * scale) &&
                same(bars[2], p.p99 * scale) && same(bars[3], p.mean * scale));
      }
    }

    // Step time by kernel: the steps' parts summed (here, independently), in seconds; the
    // stack's height is the method's busy time under the full-layer model.
    const ChartView* br = w.chart("step_breakdown");
    for (std::size_t k = 0; k < r.methods.size(); ++k) {
      double att = 0, dense = 0, ccv = 0, norms = 0;
      for (const StepRecord& st : r.methods[k].steps) {
        att += st.attention_ms;
        dense += st.dense_ms;
        ccv += st.ccv_ms;
        norms += st.other_ms;
      }
      const auto i = static_cast<qsizetype>(k);
      QVERIFY(same(bar_values(br, "attention")[i], att / 1e3));
      QVERIFY(same(bar_values(br, "QKV, O, MLP")[i], dense / 1e3));
      QVERIFY(same(bar_values(br, "CCV linear + cosine")[i], ccv / 1e3));
      QVERIFY(same(bar_values(br, "norms")[i], norms / 1e3));
      QVERIFY(std::abs((att + dense + ccv + norms) - r.methods[k].summary.busy_full_ms) <=
              1e-6 * r.methods[k].summary.busy_full_ms);
    }

    // The summary table holds the summaries.
    const NumberTable* t = w.summary_table();
    for (int k = 0; k < 4; ++k) {
      const MethodSummary& ms = r.methods[static_cast<std::size_t>(k)].summary;
      QCOMPARE(t->value(row_of(t, "requests served"), k), static_cast<double>(ms.requests));
      QCOMPARE(t->value(row_of(t, "TTFT p99 (ms)"), k), ms.ttft_ms.p99);
      QCOMPARE(t->value(row_of(t, "peak KV (bytes)"), k), static_cast<double>(ms.peak_kv_bytes));
      QCOMPARE(t->value(row_of(t, "CCV hit rate p"), k), ms.hit_rate);
      QCOMPARE(t->value(row_of(t, "preemptions"), k), static_cast<double>(ms.preemptions));
      QCOMPARE(t->value(row_of(t, "busy time, full-layer model (ms)"), k), ms.busy_full_ms);
    }
    QVERIFY(r.methods[2].summary.ccv_lookups > 0);

    // The copied command line reproduces the summary headless.
    w.set_view(View::summary);
    const QString cmd = w.command_line();
    QVERIFY2(cmd.startsWith("kvscope replay "), qPrintable(cmd));
    const auto cli = kvscope::testing::run_cli(cmd.mid(8).toStdString() + " --json --quiet");
    QVERIFY2(cli.exit_code == 0, cli.err.c_str());
    const auto j = nlohmann::json::parse(cli.out);
    QCOMPARE(j.at("methods").size(), std::size_t{4});
    for (int k = 0; k < 4; ++k) {
      const auto& m = j.at("methods")[static_cast<std::size_t>(k)];
      QVERIFY(same(t->value(row_of(t, "TTFT p50 (ms)"), k), m.at("ttft_ms").at("p50")));
      QVERIFY(same(t->value(row_of(t, "E2E p99 (ms)"), k), m.at("e2e_ms").at("p99")));
      QVERIFY(same(t->value(row_of(t, "CCV hit rate p"), k), m.at("ccv").at("hit_rate")));
      QCOMPARE(t->value(row_of(t, "peak KV (bytes)"), k),
               m.at("memory").at("peak_kv_bytes").get<double>());
    }

    // Export: the engine's own output files beside the charts.
    QTemporaryDir dir;
    QVERIFY(w.export_all(dir.path()));
    for (const char* f :
         {"memory_over_time.png", "latency.svg", "step_breakdown.csv", "summary.csv",
          "replay/summary.json", "replay/steps.csv", "replay/hit_rate.csv"})
      QVERIFY2(QFile::exists(dir.filePath(f)), f);
  }

  void aBadTraceIsAMessage() {
    QTemporaryDir dir;
    const QString bad = dir.filePath("bad.jsonl");
    QFile f(bad);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(
        "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 2, \"hash_ids\": [1]}\n"
        "{\"timestamp\": 5, \"input_length\": -3, \"output_length\": 2, \"hash_ids\": [1]}\n");
    f.close();
    MainWindow w(kvscope::run_replay);
    QVERIFY(w.open_file(bad));
    QSignalSpy done(&w, &MainWindow::replay_done);
    QVERIFY(w.start_replay());
    QVERIFY(done.wait(30000));
    QVERIFY2(w.error_text().contains(bad + ":2:"), qPrintable(w.error_text()));
    QVERIFY2(w.error_text().contains("input_length"), qPrintable(w.error_text()));
    QVERIFY(!w.replay_result());
  }
};

QTEST_MAIN(TestGuiReplay)
#include "test_gui_replay.moc"
