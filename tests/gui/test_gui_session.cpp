// Sessions, files and exports: a session saved and reopened shows the same view; files are
// recognised by kind (also when dropped); bad files give a message naming file and field; chart
// and table exports are valid PNG, SVG and CSV holding the charts' numbers.
#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QImage>
#include <QMimeData>
#include <QSpinBox>
#include <QSvgRenderer>
#include <QTemporaryDir>
#include <QTest>
#include <QUrl>

#include <nlohmann/json.hpp>

#include "gui/file_kind.h"
#include "gui/main_window.h"
#include "gui/number_table.h"
#include "gui/parameter_panel.h"
#include "gui_test_util.h"
#include "model/error.h"

using namespace kvscope;
using namespace kvscope::gui;
using kvscope::gui::testing::points;

namespace {

void write(const QString& path, const QByteArray& text) {
  QFile f(path);
  QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
  f.write(text);
}

Session unusual_session(const QString& dir) {
  Session s;
  s.trace_path = QDir(dir).filePath("trace.jsonl").toStdString();
  s.trace_format = "mooncake";
  s.model = "qwen2.5-7b";
  s.gpu = "h200";
  s.n_min_tokens = 512;
  s.n_max_tokens = 8192;
  s.points_per_doubling = 3;
  s.p = 0.625;
  s.methods = {Method::baseline, Method::fourier_ccv};
  s.fourier_m = 64;
  s.fourier_dims = "0-15,48-63";
  s.fourier_sink_tokens = 2;
  s.fourier_window_tokens = 128;
  s.d2 = 1536;
  s.l_eff = 5;
  s.threshold = 0.9;
  s.ccv_budget_gib = 1.5;
  s.ccv_eviction = Eviction::ttl;
  s.ccv_ttl_s = 120;
  s.gpu_memory_gib = 141;
  s.max_batch = 64;
  s.token_budget_tokens = 4096;
  s.chunked_prefill = false;
  s.rate_scale = 2.5;
  s.max_requests = 300;
  s.skip_bad_records = true;
  s.view = View::summary;
  return s;
}

}  // namespace

class TestGuiSession : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() { kvscope::gui::testing::isolate_settings(); }

  void sessionFileRoundTrips() {
    QTemporaryDir dir;
    const Session s = unusual_session(dir.path());
    const QString path = dir.filePath("s.json");
    save_session(s, path.toStdString());
    QCOMPARE(load_session(path.toStdString()), s);
    // Relative paths in a session file are relative to the file.
    auto j = session_to_json(s);
    j["trace"] = "traces/t.jsonl";
    write(path, QByteArray::fromStdString(j.dump()));
    QCOMPARE(load_session(path.toStdString()).trace_path,
             QDir(dir.path()).filePath("traces/t.jsonl").toStdString());
  }

  void badSessionFilesNameTheKey() {
    QTemporaryDir dir;
    const QString path = dir.filePath("bad.json");
    auto j = session_to_json(Session{});
    j["ccv"]["l_eff"] = "eight";
    write(path, QByteArray::fromStdString(j.dump()));
    try {
      load_session(path.toStdString());
      QFAIL("a string l_eff was accepted");
    } catch (const InputError& e) {
      QCOMPARE(e.field(), std::string("ccv.l_eff"));
      QCOMPARE(e.source(), path.toStdString());
    }
    j = session_to_json(Session{});
    j["analytic"]["p"] = 1.5;
    write(path, QByteArray::fromStdString(j.dump()));
    MainWindow w(kvscope::gui::testing::no_replay());
    QVERIFY(!w.open_session(path));
    QVERIFY2(w.error_text().contains("analytic.p") && w.error_text().contains(path),
             qPrintable(w.error_text()));
    write(path, "{\"kvscope_session\": 1, \"methods\": [\"fourier\", \"nope\"]");
    QVERIFY(!w.open_session(path));
    QVERIFY2(w.error_text().contains("not valid JSON"), qPrintable(w.error_text()));
  }

  void windowSavesAndReopensASession() {
    QTemporaryDir dir;
    write(dir.filePath("trace.jsonl"),
          "{\"timestamp\": 0, \"input_length\": 10, "
          "\"output_length\": 2, \"hash_ids\": [1]}\n");
    const Session s = unusual_session(dir.path());
    const QString path = dir.filePath("saved.json");
    {
      MainWindow w(kvscope::gui::testing::no_replay());
      w.set_session(s);
      QVERIFY2(w.error_text().isEmpty(), qPrintable(w.error_text()));
      QVERIFY(w.save_session(path));
    }
    MainWindow w(kvscope::gui::testing::no_replay());
    QVERIFY(w.open_session(path));
    QCOMPARE(w.session(), s);
    // The widgets show it, and the charts were computed from it.
    QCOMPARE(w.panel()->model_combo()->currentText(), QString("qwen2.5-7b"));
    QVERIFY(!w.panel()->method_box(Method::ccv)->isChecked());
    QVERIFY(w.panel()->method_box(Method::fourier_ccv)->isChecked());
    QCOMPARE(w.panel()->l_eff_spin()->value(), 5);
    QCOMPARE(kvscope::gui::testing::series_names(w.chart("kv_vs_n")),
             QStringList({"baseline", "Fourier+CCV"}));
    QCOMPARE(points(w.chart("kv_vs_n"), "baseline").front().x(), 512.0);
    QCOMPARE(points(w.chart("kv_vs_n"), "baseline").back().x(), 8192.0);
    QVERIFY(w.recent_files().contains(QFileInfo(path).absoluteFilePath()));
  }

  void filesAreRecognisedByKind() {
    QTemporaryDir dir;
    const QString trace = dir.filePath("t.jsonl"), csv = dir.filePath("azure.csv"),
                  config = dir.filePath("config.json"), profile = dir.filePath("p.json"),
                  session = dir.filePath("s.json"), other = dir.filePath("o.json"),
                  text = dir.filePath("notes.txt");
    write(trace, "{}\n");
    write(csv, "TIMESTAMP,ContextTokens,GeneratedTokens\n");
    write(config, R"({"model_type": "llama", "num_hidden_layers": 2})");
    write(profile, R"({"context": {}, "benchmarks": []})");
    write(session, R"({"kvscope_session": 1})");
    write(other, R"({"hello": 1})");
    write(text, "hi");
    QString why;
    QCOMPARE(classify_file(trace, &why), FileKind::trace);
    QCOMPARE(classify_file(csv, &why), FileKind::trace);
    QCOMPARE(classify_file(config, &why), FileKind::model_config);
    QCOMPARE(classify_file(profile, &why), FileKind::profile);
    QCOMPARE(classify_file(session, &why), FileKind::session);
    QCOMPARE(classify_file(other, &why), FileKind::unknown);
    QVERIFY(why.contains(other));
    QCOMPARE(classify_file(text, &why), FileKind::unknown);
    QCOMPARE(classify_file(dir.filePath("missing.json"), &why), FileKind::unknown);
    QVERIFY(why.contains("no such file"));
  }

  void droppedFilesGoWhereTheyBelong() {
    QTemporaryDir dir;
    const QString trace = dir.filePath("dropped.jsonl");
    write(trace, "{}\n");
    const QString config = dir.filePath("config.json");
    write(config, R"({"model_type": "mistral", "hidden_size": 1024, "intermediate_size": 2816,
                      "num_attention_heads": 16, "num_hidden_layers": 16,
                      "num_key_value_heads": 4, "vocab_size": 32000})");
    MainWindow w(kvscope::gui::testing::no_replay());
    w.show();
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(trace), QUrl::fromLocalFile(config)});
    QDragEnterEvent enter(QPoint(50, 50), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&w, &enter);
    QVERIFY(enter.isAccepted());
    QDropEvent drop(QPointF(50, 50), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&w, &drop);
    QCOMPARE(w.session().trace_path, trace.toStdString());
    QCOMPARE(w.session().model, config.toStdString());
    QVERIFY2(w.error_text().isEmpty(), qPrintable(w.error_text()));
    QVERIFY(w.recent_files().contains(trace));
    // The charts were recomputed for that model: 16 layers, 4 KV heads of 1024/16 dims, bf16.
    const auto kv = points(w.chart("kv_vs_n"), "baseline");
    QVERIFY(!kv.isEmpty());
    QCOMPARE(w.chart("kv_vs_n")->y_axis().unit, QString("GiB"));
    QCOMPARE(kv.front().x(), 1024.0);
    QCOMPARE(kv.front().y() * 1073741824.0, 1024.0 * 16 * 2 * 4 * 64 * 2);
  }

  void exportsAreValidFilesWithTheChartsNumbers() {
    QTemporaryDir dir;
    MainWindow w(kvscope::gui::testing::no_replay());
    w.resize(1200, 800);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QVERIFY(w.export_all(dir.path()));
    for (const char* id : {"cost_vs_n", "kv_vs_n"}) {
      const QImage png(dir.filePath(QString(id) + ".png"));
      QVERIFY2(!png.isNull() && png.width() > 100 && png.height() > 100, id);
      QSvgRenderer svg(dir.filePath(QString(id) + ".svg"));
      QVERIFY2(svg.isValid(), id);
    }
    // No replay yet: the replay charts are not exported.
    QVERIFY(!QFile::exists(dir.filePath("memory_over_time.png")));
    QVERIFY(!QFile::exists(dir.filePath("summary.csv")));

    // The chart CSV holds the chart's points at full precision.
    QFile csv(dir.filePath("cost_vs_n.csv"));
    QVERIFY(csv.open(QIODevice::ReadOnly | QIODevice::Text));
    const QStringList lines = QString::fromUtf8(csv.readAll()).split('\n', Qt::SkipEmptyParts);
    QCOMPARE(lines.front(), QString("series,context length N (tokens),prefill time (ms)"));
    const auto pts = points(w.chart("cost_vs_n"), "T_ccv (paper)");
    QStringList rows = lines.filter(QRegularExpression("^T_ccv \\(paper\\),"));
    QCOMPARE(rows.size(), pts.size());
    for (qsizetype i = 0; i < pts.size(); ++i) {
      const QStringList cells = rows[i].split(',');
      QCOMPARE(cells[1].toDouble(), pts[i].x());
      QCOMPARE(cells[2].toDouble(), pts[i].y());
    }
    // The analytic table CSV: raw numbers, one row per N.
    QFile table(dir.filePath("analytic.csv"));
    QVERIFY(table.open(QIODevice::ReadOnly | QIODevice::Text));
    const QStringList t = QString::fromUtf8(table.readAll()).split('\n', Qt::SkipEmptyParts);
    QCOMPARE(t.size(), w.analytic_table()->rowCount() + 1);
    QCOMPARE(t[1].split(',')[10].toDouble(), w.analytic_table()->value(0, 9));
    // An unwritable place is a message, not a crash.
    QString error;
    QVERIFY(!w.chart("cost_vs_n")->save_png("/nonexistent/dir/x.png", &error));
    QVERIFY(error.contains("/nonexistent/dir/x.png"));
  }

  void aBadProfileIsRefusedWithItsFile() {
    QTemporaryDir dir;
    const QString profile = dir.filePath("h100.json");
    write(profile, R"({"context": {}, "device": {"backend": "cuda"}, "benchmarks": []})");
    MainWindow w(kvscope::gui::testing::no_replay());
    QVERIFY(!w.open_file(profile));
    QVERIFY2(w.error_text().contains(profile), qPrintable(w.error_text()));
    QVERIFY(w.session().profile_path.empty());
    QCOMPARE(w.session().gpu, std::string("h100-sxm"));
  }
};

QTEST_MAIN(TestGuiSession)
#include "test_gui_session.moc"
