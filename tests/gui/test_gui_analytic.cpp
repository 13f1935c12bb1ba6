// The analytic view: its charts and table hold exactly what model/ computes for the parameters
// shown, they follow the panel live, and the copied command line reproduces them headless.
#include <chrono>
#include <cmath>
#include <filesystem>

#include <QAbstractAxis>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileInfo>
#include <QLineEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QSlider>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QTest>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "gui/main_window.h"
#include "gui/number_table.h"
#include "gui/parameter_panel.h"
#include "gui/profile_cache.h"
#include "gui_test_util.h"
#include "model/calibration.h"
#include "model/cost.h"
#include "model/error.h"
#include "model/hardware.h"
#include "model/memory.h"

using namespace kvscope;
using namespace kvscope::gui;
using kvscope::gui::testing::points;

namespace {

// The session the tests drive, and the same parameters written as a MethodConfig by hand (not
// through the CLI parser the app uses), so a wrong mapping in the app shows up as a mismatch.
Session test_session() {
  Session s;
  s.model = "llama-3.1-8b";
  s.gpu = "h200";
  s.p = 0.3;
  s.n_min_tokens = 1024;
  s.n_max_tokens = 65536;
  s.points_per_doubling = 2;
  s.l_eff = 6;
  s.fourier_m = 128;
  s.fourier_dims = "48";
  s.fourier_sink_tokens = 8;
  s.fourier_window_tokens = 32;
  s.d2 = 1024;
  return s;
}

MethodConfig test_config(int64_t l_eff) {
  MethodConfig c;
  c.fourier.m = 128;
  c.fourier.compressed_count = 48;
  c.fourier.sink_tokens = 8;
  c.fourier.window_tokens = 32;
  c.ccv.d2 = 1024;
  c.ccv.l_eff = l_eff;
  return c;
}

std::vector<int64_t> expected_lengths() {
  std::vector<int64_t> ns;
  for (int k = 0; k <= 12; ++k) ns.push_back(std::lround(1024.0 * std::pow(2.0, k / 2.0)));
  return ns;
}

void expect_near(double got, double want, const char* what, int64_t n) {
  if (!(std::abs(got - want) <= 1e-12 * std::max(1.0, std::abs(want))))
    QFAIL(qPrintable(QStringLiteral("%1 at N=%2: chart %3, library %4")
                         .arg(what)
                         .arg(n)
                         .arg(got, 0, 'g', 17)
                         .arg(want, 0, 'g', 17)));
}

// Checks every point of both analytic charts against model/ at the given L_eff and p.
void check_charts_hold_library_values(const MainWindow& w, int64_t l_eff, double p,
                                      const OpCostModel& ops) {
  const ModelShape shape = load_model("llama-3.1-8b");
  const MethodConfig cfg = test_config(l_eff);
  const auto ns = expected_lengths();

  const ChartView* cost = w.chart("cost_vs_n");
  const ChartView* kv = w.chart("kv_vs_n");
  QCOMPARE(cost->y_axis().unit, QString("ms"));
  QCOMPARE(kv->y_axis().unit, QString("GiB"));  // 64k tokens of Llama-3.1-8B: 8 GiB baseline
  QCOMPARE(kv->x_axis().unit, QString("tokens"));
  for (const char* name :
       {"T_tran (paper)", "T_ccv (paper)", "T_tran (full layer)", "T_ccv (full layer)"})
    QCOMPARE(points(cost, name).size(), static_cast<qsizetype>(ns.size()));
  for (std::size_t i = 0; i < ns.size(); ++i) {
    const int64_t n = ns[i];
    const auto idx = static_cast<qsizetype>(i);
    const PaperTerms t = paper_terms(ops, shape, 1024, n);
    const PassCost paper = paper_cost(t, shape.layers, l_eff, p);
    const PassCost full = full_layer_cost(ops, shape, cfg.ccv, n, p);
    QCOMPARE(points(cost, "T_tran (paper)")[idx].x(), static_cast<double>(n));
    expect_near(points(cost, "T_tran (paper)")[idx].y(), paper.t_tran_ms, "T_tran", n);
    expect_near(points(cost, "T_ccv (paper)")[idx].y(), paper.t_ccv_ms, "T_ccv", n);
    expect_near(points(cost, "T_tran (full layer)")[idx].y(), full.t_tran_ms, "full T_tran", n);
    expect_near(points(cost, "T_ccv (full layer)")[idx].y(), full.t_ccv_ms, "full T_ccv", n);

    const double gib = 1024.0 * 1024.0 * 1024.0;
    expect_near(points(kv, "baseline")[idx].y(),
                static_cast<double>(sequence_kv_bytes(shape, Method::baseline, cfg, n)) / gib,
                "KV baseline", n);
    expect_near(points(kv, "Fourier")[idx].y(),
                static_cast<double>(sequence_kv_bytes(shape, Method::fourier, cfg, n)) / gib,
                "KV fourier", n);
    expect_near(points(kv, "CCV")[idx].y(),
                expected_sequence_kv_bytes(shape, Method::ccv, cfg, n, p) / gib, "KV ccv", n);
    expect_near(points(kv, "Fourier+CCV")[idx].y(),
                expected_sequence_kv_bytes(shape, Method::fourier_ccv, cfg, n, p) / gib,
                "KV fourier+ccv", n);

    // The table beside the charts: raw values, full precision.
    const NumberTable* table = w.analytic_table();
    expect_near(table->value(static_cast<int>(i), 0), paper.t_tran_ms, "table T_tran", n);
    expect_near(table->value(static_cast<int>(i), 7), t.t_l_ms, "table T_l", n);
    expect_near(table->value(static_cast<int>(i), 13),
                static_cast<double>(ccv_entry_bytes(shape, cfg.ccv, n)), "table CCV entry", n);
  }
}

}  // namespace

class TestGuiAnalytic : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() { kvscope::gui::testing::isolate_settings(); }

  void chartsHoldTheLibraryValues() {
    MainWindow w(kvscope::gui::testing::no_replay());
    w.set_session(test_session());
    QVERIFY2(w.error_text().isEmpty(), qPrintable(w.error_text()));
    check_charts_hold_library_values(w, 6, 0.3, RooflineCostModel(hardware_preset("h200")));
  }

  void panelChangesUpdateTheChartsLive() {
    MainWindow w(kvscope::gui::testing::no_replay());
    w.set_session(test_session());
    const double before = points(w.chart("cost_vs_n"), "T_ccv (paper)").back().y();
    w.panel()->l_eff_spin()->setValue(10);
    w.panel()->p_spin()->setValue(0.75);
    // One recomputation per burst of changes, on the next turn of the event loop.
    QTRY_COMPARE(w.session().l_eff, int64_t{10});
    QTRY_VERIFY(points(w.chart("cost_vs_n"), "T_ccv (paper)").back().y() != before);
    check_charts_hold_library_values(w, 10, 0.75, RooflineCostModel(hardware_preset("h200")));
  }

  void thresholdPresetsSliderAndSpinAgree() {
    MainWindow w(kvscope::gui::testing::no_replay());
    ParameterPanel* p = w.panel();
    QTest::mouseClick(p->threshold_preset(0), Qt::LeftButton);
    QCOMPARE(p->threshold_spin()->value(), 0.7);
    QCOMPARE(p->threshold_slider()->value(), 70);
    QVERIFY(p->threshold_preset(0)->isChecked());
    QVERIFY(!p->threshold_preset(1)->isChecked());
    QTRY_COMPARE(w.session().threshold, 0.7);
    p->threshold_slider()->setValue(85);
    QCOMPARE(p->threshold_spin()->value(), 0.85);
    for (int i = 0; i < 3; ++i) QVERIFY(!p->threshold_preset(i)->isChecked());
    QTRY_COMPARE(w.session().threshold, 0.85);
    QVERIFY(w.command_line().contains("--threshold 0.85"));
  }

  void copiedCommandLineReproducesTheView() {
    MainWindow w(kvscope::gui::testing::no_replay());
    w.set_session(test_session());
    const QString cmd = w.command_line();
    QVERIFY2(cmd.startsWith("kvscope model "), qPrintable(cmd));
    const auto r = kvscope::testing::run_cli(cmd.mid(8).toStdString() + " --json");
    QVERIFY2(r.exit_code == 0, r.err.c_str());
    const auto rows = nlohmann::json::parse(r.out).at("rows");
    const ChartView* cost = w.chart("cost_vs_n");
    const ChartView* kv = w.chart("kv_vs_n");
    QCOMPARE(rows.size(), expected_lengths().size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& row = rows[i];
      const auto idx = static_cast<qsizetype>(i);
      const int64_t n = row.at("n").get<int64_t>();
      QCOMPARE(n, expected_lengths()[i]);
      expect_near(points(cost, "T_tran (paper)")[idx].y(), row.at("t_tran_ms"), "T_tran", n);
      expect_near(points(cost, "T_ccv (paper)")[idx].y(), row.at("t_ccv_ms"), "T_ccv", n);
      expect_near(points(cost, "T_ccv (full layer)")[idx].y(), row.at("full_layer").at("t_ccv_ms"),
                  "full T_ccv", n);
      expect_near(points(kv, "Fourier+CCV")[idx].y() * 1073741824.0,
                  row.at("kv_bytes").at("fourier_ccv"), "KV fourier+ccv", n);
    }
  }

  void aCalibrationProfilePricesTheCharts() {
    const QString profile = KVSCOPE_SOURCE_DIR "/results/profiles/cpu-2core.json";
    MainWindow w(kvscope::gui::testing::no_replay());
    w.set_session(test_session());
    QVERIFY2(w.open_file(profile), qPrintable(w.error_text()));
    // The GPU preset follows the device the profile was measured on.
    QCOMPARE(w.session().gpu, std::string("cpu-2core"));
    QCOMPARE(QString::fromStdString(w.session().profile_path),
             QFileInfo(profile).absoluteFilePath());
    check_charts_hold_library_values(w, 6, 0.3,
                                     CalibratedCostModel(load_profile(profile.toStdString())));
    // The calibrated prices differ from the roofline's: the charts really changed.
    const RooflineCostModel roof(hardware_preset("cpu-2core"));
    const PaperTerms t = paper_terms(roof, load_model("llama-3.1-8b"), 1024, 65536);
    QVERIFY(points(w.chart("cost_vs_n"), "T_tran (paper)").back().y() != 32 * t.t_sa_ms);
    // Headless, the same numbers.
    const QString cmd = w.command_line();
    QVERIFY2(cmd.contains("--profile "), qPrintable(cmd));
    const auto r = kvscope::testing::run_cli(cmd.mid(8).toStdString() + " --json");
    QVERIFY2(r.exit_code == 0, r.err.c_str());
    const auto rows = nlohmann::json::parse(r.out).at("rows");
    const auto last = points(w.chart("cost_vs_n"), "T_ccv (full layer)").back().y();
    expect_near(last, rows.back().at("full_layer").at("t_ccv_ms"), "full T_ccv", 65536);
    // A preset that is not the profile's device: the library's message, in the window.
    Session s = w.session();
    s.gpu = "h100-sxm";
    w.set_session(s);
    QVERIFY2(w.error_text().contains("--gpu") && w.error_text().contains("cpu backend"),
             qPrintable(w.error_text()));
  }

  void aProfileIsFittedOncePerFileVersion() {
    // The analytic view resolves its session on every change: the same file, unchanged, must
    // give the same fitted model; a rewritten file a new fit; a missing one the library's error.
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const std::string path = dir.filePath("profile.json").toStdString();
    const std::string source = KVSCOPE_SOURCE_DIR "/results/profiles/";
    std::filesystem::copy_file(source + "cpu-2core.json", path);
    ProfileCache cache;
    const auto first = cache.get(path).model;
    QCOMPARE(cache.get(path).model.get(), first.get());
    Session s = test_session();
    s.gpu = "cpu-2core";
    s.profile_path = path;
    QCOMPARE(resolve(s, cache).ops.get(), static_cast<const OpCostModel*>(first.get()));

    std::filesystem::copy_file(source + "cpu-2core-kvscope-tiny.json", path,
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::last_write_time(
        path, std::filesystem::last_write_time(path) + std::chrono::seconds(2));
    const auto second = cache.get(path).model;
    QVERIFY(second.get() != first.get());
    QCOMPARE(second->fit_report(), CalibratedCostModel(load_profile(path)).fit_report());

    std::filesystem::remove(path);
    QVERIFY_THROWS_EXCEPTION(InputError, cache.get(path));
  }

  void badParametersAreShownNotThrown() {
    MainWindow w(kvscope::gui::testing::no_replay());
    w.set_session(test_session());
    const auto before = points(w.chart("cost_vs_n"), "T_ccv (paper)");
    w.panel()->fourier_dims_edit()->setText("0-7,x");
    emit w.panel()->fourier_dims_edit()->editingFinished();
    QTRY_VERIFY(w.error_text().contains("--fourier-dims"));
    QCOMPARE(points(w.chart("cost_vs_n"), "T_ccv (paper)"), before);  // the last good view stays
    // L_eff above the model's 32 layers: the library's own validation message.
    w.panel()->fourier_dims_edit()->setText("");
    emit w.panel()->fourier_dims_edit()->editingFinished();
    QTRY_VERIFY(w.error_text().isEmpty());
    w.panel()->l_eff_spin()->setValue(40);
    QTRY_VERIFY(!w.error_text().isEmpty());
    QVERIFY2(w.error_text().contains("--l-eff"), qPrintable(w.error_text()));
    w.panel()->l_eff_spin()->setValue(8);
    QTRY_VERIFY(w.error_text().isEmpty());
  }

  void badModelConfigNamesTheFileAndField() {
    MainWindow w(kvscope::gui::testing::no_replay());
    const QString path = QDir::temp().filePath("kvscope-gui-bad-config.json");
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(R"({"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32})");
    f.close();
    QVERIFY(!w.open_file(path));
    QVERIFY2(w.error_text().contains(path), qPrintable(w.error_text()));
    QVERIFY2(w.error_text().contains("num_hidden_layers"), qPrintable(w.error_text()));
    QCOMPARE(w.session().model, std::string("llama-2-7b"));  // unchanged
    QVERIFY(!w.open_file("/nonexistent/trace.jsonl"));
    QVERIFY(w.error_text().contains("/nonexistent/trace.jsonl"));
    QFile::remove(path);
  }

  void hoverShowsTheNearestValueWithUnits() {
    MainWindow w(kvscope::gui::testing::no_replay());
    w.set_session(test_session());
    ChartView* cost = w.chart("cost_vs_n");
    QXYSeries* series = nullptr;
    for (QAbstractSeries* s : cost->chart()->series())
      if (s->name() == "T_ccv (paper)") series = qobject_cast<QXYSeries*>(s);
    QVERIFY(series);
    const QPointF p = series->at(4);  // N = 4096
    // The pointer between two data points reports the nearer one.
    const QString text = cost->hover_text_for(series, QPointF(p.x() * 1.01, p.y() * 1.3));
    QVERIFY2(text.contains("T_ccv (paper)"), qPrintable(text));
    QVERIFY2(text.contains("N = 4096 tokens"), qPrintable(text));
    QVERIFY2(text.contains(format_value(p.y()) + " ms"), qPrintable(text));
    // And the signal path: a hover sets the text, leaving clears it.
    emit series->hovered(p, true);
    QCOMPARE(cost->hover_text(), cost->hover_text_for(series, p));
    emit series->hovered(p, false);
    QVERIFY(cost->hover_text().isEmpty());
  }
};

QTEST_MAIN(TestGuiAnalytic)
#include "test_gui_analytic.moc"
