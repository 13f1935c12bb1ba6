// The replay views without the engine: a ReplayFn written here hands the window a known result
// (or blocks until cancelled, or throws), so these tests pin down what the views show for a
// result, that the replay runs off the UI thread with progress and cancel, and that failures are
// messages. test_gui_replay.cpp runs the real engine on the bundled trace.
#include <chrono>
#include <cmath>
#include <thread>

#include <QAbstractBarSeries>
#include <QBarSet>
#include <QComboBox>
#include <QProgressBar>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "gui/main_window.h"
#include "gui/number_table.h"
#include "gui_test_util.h"
#include "model/error.h"

using namespace kvscope;
using namespace kvscope::gui;
using kvscope::gui::testing::points;

namespace {

// A result with `steps` steps per method whose values follow simple formulas, and a spike in
// the middle of the KV timeline that decimation must keep.
ReplayResult made_up_result(const std::vector<Method>& methods, std::size_t steps) {
  ReplayResult r;
  r.trace = {"made-up.jsonl", "mooncake", 42, 1, 12345, 678, 9.5};
  for (std::size_t k = 0; k < methods.size(); ++k) {
    MethodResult m;
    m.summary.method = methods[k];
    m.summary.requests = 42;
    m.summary.ttft_ms = {10.0 + k, 20.0 + k, 30.0 + k, 15.0 + k};
    m.summary.tbt_ms = {1.0 + k, 2.0 + k, 3.0 + k, 1.5 + k};
    m.summary.e2e_ms = {100.0 + k, 200.0 + k, 300.0 + k, 150.0 + k};
    m.summary.peak_kv_bytes = int64_t{3} << 30;
    m.summary.hit_rate = uses_ccv(methods[k]) ? 0.25 : 0.0;
    m.summary.busy_full_ms = 0;
    for (std::size_t i = 0; i < steps; ++i) {
      StepRecord s;
      s.start_ms = 2.0 * static_cast<double>(i);
      s.full_ms = 1.5;
      s.kv_bytes = (int64_t{1} << 30) + static_cast<int64_t>(i % 97) * (int64_t{1} << 20) +
                   static_cast<int64_t>(k) * (int64_t{1} << 28);
      if (i == steps / 2 + 3) s.kv_bytes = int64_t{3} << 30;  // the peak
      s.ccv_cache_bytes = uses_ccv(methods[k]) ? static_cast<int64_t>(i) * 1024 : 0;
      s.hit_rate = uses_ccv(methods[k]) ? static_cast<double>(i % 10) / 40.0 : 0.0;
      s.attention_ms = 0.5 + 0.001 * static_cast<double>(k);
      s.dense_ms = 0.7;
      s.ccv_ms = uses_ccv(methods[k]) ? 0.1 : 0.0;
      s.other_ms = 0.2;
      m.summary.busy_full_ms += s.attention_ms + s.dense_ms + s.ccv_ms + s.other_ms;
      m.steps.push_back(s);
    }
    if (uses_ccv(methods[k])) m.hit_windows = {{0, 4, 2}, {60, 0, 0}, {120, 10, 1}};
    m.summary.peak_ccv_cache_bytes =
        uses_ccv(methods[k]) ? static_cast<int64_t>(steps - 1) * 1024 : 0;
    r.methods.push_back(std::move(m));
  }
  return r;
}

QString write_trace(const QTemporaryDir& dir) {
  const QString p = dir.filePath("t.jsonl");
  QFile f(p);
  f.open(QIODevice::WriteOnly);
  f.write("{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 2, \"hash_ids\": [1]}\n");
  return p;
}

}  // namespace

class TestGuiReplayViews : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() { kvscope::gui::testing::isolate_settings(); }

  void chartsAndTableHoldTheResult() {
    QTemporaryDir dir;
    const std::vector<Method> methods = {Method::baseline, Method::ccv};
    const ReplayResult made = made_up_result(methods, 300);
    ReplayConfig seen;
    MainWindow w([&](const std::string&, const ReplayConfig& c, const OpCostModel&,
                     const ProgressFn& progress, const std::atomic<bool>*) {
      seen = c;
      progress(0.5, "half");
      return made;
    });
    Session s = w.session();
    s.methods = methods;
    s.gpu_memory_gib = 141;
    s.max_batch = 32;
    s.token_budget_tokens = 2048;
    s.chunked_prefill = false;
    s.threshold = 0.9;
    s.l_eff = 5;
    s.max_requests = 100;
    s.skip_bad_records = true;
    w.set_session(s);
    QVERIFY(w.open_trace(write_trace(dir)));
    QSignalSpy done(&w, &MainWindow::replay_done);
    QVERIFY(w.start_replay());
    QVERIFY(done.wait(10000));
    QVERIFY2(w.error_text().isEmpty(), qPrintable(w.error_text()));

    // The configuration handed to the engine is the panel's.
    QCOMPARE(seen.methods, methods);
    QCOMPARE(seen.gpu_memory_bytes, int64_t{141} << 30);
    QCOMPARE(seen.scheduler.max_batch, int64_t{32});
    QCOMPARE(seen.scheduler.token_budget, int64_t{2048});
    QCOMPARE(seen.scheduler.chunked_prefill, false);
    QCOMPARE(seen.method_config.ccv.threshold, 0.9);
    QCOMPARE(seen.method_config.ccv.l_eff, int64_t{5});
    QCOMPARE(seen.max_requests, int64_t{100});
    QCOMPARE(seen.bad_records, BadRecordPolicy::skip);
    QCOMPARE(seen.model.name, std::string("llama-2-7b"));

    // Memory over time: every step, in GiB at the step's end.
    const ChartView* mem = w.chart("memory_over_time");
    QCOMPARE(mem->y_axis().unit, QString("GiB"));
    QCOMPARE(mem->x_axis().unit, QString("s"));
    for (std::size_t k = 0; k < methods.size(); ++k) {
      const auto pts = points(mem, method_label(methods[k]) + " KV");
      const auto& steps = made.methods[k].steps;
      QCOMPARE(pts.size(), static_cast<qsizetype>(steps.size()));
      for (std::size_t i = 0; i < steps.size(); ++i) {
        QCOMPARE(pts[static_cast<qsizetype>(i)].x(), (steps[i].start_ms + steps[i].full_ms) / 1e3);
        QCOMPARE(pts[static_cast<qsizetype>(i)].y(),
                 static_cast<double>(steps[i].kv_bytes) / 1073741824.0);
      }
    }
    QCOMPARE(points(mem, "CCV cache").size(), qsizetype{300});
    QVERIFY(points(mem, "baseline cache").isEmpty());
    // Hit rate: only the CCV method, every step.
    const auto hit = points(w.chart("hit_rate_over_time"), "CCV so far");
    QCOMPARE(hit.size(), qsizetype{300});
    QCOMPARE(hit[7].y(), made.methods[1].steps[7].hit_rate);
    QCOMPARE(hit[7].x(), (made.methods[1].steps[7].start_ms + 1.5) / 1e3);
    QCOMPARE(kvscope::gui::testing::series_names(w.chart("hit_rate_over_time")),
             QStringList({"CCV so far", "CCV per 60 s"}));
    // Per window: hits / lookups at the window's middle; a window without lookups is left out.
    const auto win = points(w.chart("hit_rate_over_time"), "CCV per 60 s");
    QCOMPARE(win, QList<QPointF>({QPointF(30, 0.5), QPointF(150, 0.1)}));

    // Latency percentiles, per metric chosen above the chart.
    auto bar_values = [](const ChartView* v, const QString& set_label) {
      QList<qreal> out;
      for (QAbstractSeries* series : v->chart()->series())
        if (auto* b = qobject_cast<QAbstractBarSeries*>(series))
          for (QBarSet* set : b->barSets())
            if (set->label() == set_label)
              for (int i = 0; i < set->count(); ++i) out << set->at(i);
      return out;
    };
    QCOMPARE(bar_values(w.chart("latency"), "CCV"), QList<qreal>({11, 21, 31, 16}));
    w.latency_metric_combo()->setCurrentIndex(2);  // end-to-end
    QCOMPARE(bar_values(w.chart("latency"), "baseline"), QList<qreal>({100, 200, 300, 150}));
    QCOMPARE(w.chart("latency")->categories(), QStringList({"p50", "p90", "p99", "mean"}));

    // Step time by kernel: the steps' parts summed, in seconds; together the busy time.
    const auto attention = bar_values(w.chart("step_breakdown"), "attention");
    QCOMPARE(attention.size(), qsizetype{2});
    QCOMPARE(attention[1], 300 * 0.501 / 1e3);
    double total = 0;
    for (QAbstractSeries* series : w.chart("step_breakdown")->chart()->series())
      for (QBarSet* set : qobject_cast<QAbstractBarSeries*>(series)->barSets()) total += set->at(1);
    QCOMPARE(total, made.methods[1].summary.busy_full_ms / 1e3);

    // The summary table: metrics down, methods across, raw numbers.
    const NumberTable* t = w.summary_table();
    auto row = [t](const QString& name) {
      for (int i = 0; i < t->rowCount(); ++i)
        if (t->headerData(i, Qt::Vertical, Qt::DisplayRole).toString() == name) return i;
      return -1;
    };
    QCOMPARE(t->columnCount(), 2);
    QCOMPARE(t->headerData(1, Qt::Horizontal, Qt::DisplayRole).toString(), QString("CCV"));
    QCOMPARE(t->value(row("TTFT p99 (ms)"), 1), 31.0);
    QCOMPARE(t->value(row("CCV hit rate p"), 1), 0.25);
    QCOMPARE(t->data(t->index(row("peak KV (bytes)"), 0), Qt::DisplayRole).toString(),
             QString("3.00 GiB"));
    // No baseline in the result's summary flags: no difference from it is shown.
    const int saved = row("time saved vs baseline, full-layer model (ms)");
    QVERIFY(std::isnan(t->value(saved, 1)));
    QCOMPARE(t->data(t->index(saved, 1), Qt::DisplayRole).toString(), QString("n/a (no baseline)"));

    // The replay's command line names the engine's configuration.
    w.set_view(View::replay);
    const QString cmd = w.command_line();
    QVERIFY2(cmd.startsWith("kvscope replay " + dir.filePath("t.jsonl")), qPrintable(cmd));
    for (const char* part : {"--method baseline,ccv", "--gpu-mem 141GiB", "--max-batch 32",
                             "--token-budget 2048", "--no-chunked-prefill", "--threshold 0.9",
                             "--l-eff 5", "--max-requests 100", "--on-bad-record skip"})
      QVERIFY2(cmd.contains(part), qPrintable(cmd + " lacks " + part));
  }

  void longTimelinesKeepTheirPeaksAndOnlyRealSteps() {
    QTemporaryDir dir;
    const ReplayResult made = made_up_result({Method::baseline}, 50000);
    MainWindow w([&](const std::string&, const ReplayConfig&, const OpCostModel&, const ProgressFn&,
                     const std::atomic<bool>*) { return made; });
    QVERIFY(w.open_trace(write_trace(dir)));
    QSignalSpy done(&w, &MainWindow::replay_done);
    QVERIFY(w.start_replay());
    QVERIFY(done.wait(10000));
    const auto pts = points(w.chart("memory_over_time"), "baseline KV");
    QVERIFY(pts.size() <= static_cast<qsizetype>(kMaxTimelinePoints) + 2);
    QVERIFY(pts.size() > 1000);
    double peak = 0;
    const auto& steps = made.methods[0].steps;
    for (const QPointF& p : pts) {
      peak = std::max(peak, p.y());
      // Every point is a real step: its time names the step, its value is that step's.
      const auto i = static_cast<std::size_t>(std::llround((p.x() * 1e3 - 1.5) / 2.0));
      QVERIFY(i < steps.size());
      QCOMPARE(p.y(), static_cast<double>(steps[i].kv_bytes) / 1073741824.0);
    }
    QCOMPARE(peak, 3.0);
    QCOMPARE(pts.front().x(), (steps.front().start_ms + 1.5) / 1e3);
    QCOMPARE(pts.back().x(), (steps.back().start_ms + 1.5) / 1e3);
  }

  void replayRunsOffTheUiThreadAndCancels() {
    QTemporaryDir dir;
    std::atomic<bool> on_ui_thread{true};
    const auto ui_thread = std::this_thread::get_id();
    MainWindow w([&](const std::string&, const ReplayConfig& c, const OpCostModel&,
                     const ProgressFn& progress, const std::atomic<bool>* cancel) {
      on_ui_thread = std::this_thread::get_id() == ui_thread;
      ReplayResult r = made_up_result(c.methods, 10);
      for (int i = 0; !cancel->load(); ++i) {
        progress(std::min(0.99, i / 1000.0), "working");
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      r.cancelled = true;
      return r;
    });
    w.show();
    QVERIFY(w.open_trace(write_trace(dir)));
    QSignalSpy done(&w, &MainWindow::replay_done);
    QVERIFY(w.start_replay());
    QVERIFY(!w.start_replay());  // one at a time
    // While the worker runs, the UI thread keeps handling events: progress reaches the bar.
    QTRY_VERIFY_WITH_TIMEOUT(w.progress_bar()->value() > 0, 5000);
    QVERIFY(w.progress_bar()->isVisible());
    QVERIFY(!on_ui_thread);
    QCOMPARE(done.count(), 0);
    w.cancel_replay();
    QVERIFY(done.wait(5000));
    QVERIFY(w.replay_result() && w.replay_result()->cancelled);
    QVERIFY2(w.error_text().contains("cancelled"), qPrintable(w.error_text()));
    QVERIFY(!w.progress_bar()->isVisible());
    QVERIFY(!w.runner()->running());
  }

  void closingDuringAReplayCancelsIt() {
    QTemporaryDir dir;
    std::atomic<bool> saw_cancel{false};
    auto w = std::make_unique<MainWindow>([&](const std::string&, const ReplayConfig&,
                                              const OpCostModel&, const ProgressFn&,
                                              const std::atomic<bool>* cancel) {
      while (!cancel->load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      saw_cancel = true;
      ReplayResult r;
      r.cancelled = true;
      return r;
    });
    QVERIFY(w->open_trace(write_trace(dir)));
    QVERIFY(w->start_replay());
    w.reset();  // must not hang nor leave the worker touching a dead window
    QVERIFY(saw_cancel);
  }

  void engineErrorsBecomeMessages() {
    QTemporaryDir dir;
    MainWindow w([](const std::string&, const ReplayConfig&, const OpCostModel&, const ProgressFn&,
                    const std::atomic<bool>*) -> ReplayResult {
      throw InputError("t.jsonl", 3, "input_length", "must not be negative, got -5");
    });
    // Nothing to replay yet: a message, no start.
    QVERIFY(!w.start_replay());
    QVERIFY(w.error_text().contains("Open a trace"));
    QVERIFY(w.open_trace(write_trace(dir)));
    QSignalSpy done(&w, &MainWindow::replay_done);
    QVERIFY(w.start_replay());
    QVERIFY(done.wait(5000));
    QVERIFY2(w.error_text().contains("t.jsonl:3: input_length: must not be negative"),
             qPrintable(w.error_text()));
    QVERIFY(!w.replay_result());
    QVERIFY(!w.runner()->running());
    // No methods chosen: refused before it starts.
    Session s = w.session();
    s.methods.clear();
    w.set_session(s);
    QVERIFY(!w.start_replay());
    QVERIFY(w.error_text().contains("at least one method"));
  }
};

QTEST_MAIN(TestGuiReplayViews)
#include "test_gui_replay_views.moc"
