// kvscope-gui: the desktop app. Files named on the command line are opened as if dropped on the
// window; --run starts a replay once they are, and --screenshot saves the window as a PNG when
// the replay is done (or at once without --run) and quits: that is how CI and the README's
// screenshot are made.
#include <algorithm>
#include <cstdio>
#include <optional>

#include <QApplication>
#include <QCommandLineParser>
#include <QElapsedTimer>
#include <QTimer>

#include "gui/main_window.h"
#include "kernels/backend.h"
#include "sim/replay/replay.h"

int main(int argc, char** argv) {
  kvscope::kernels::prepare_process_for_backends(argv);
  QApplication app(argc, argv);
  QApplication::setOrganizationName("kvscope");
  QApplication::setApplicationName("kvscope-gui");
  QApplication::setApplicationVersion("0.1.0");

  QCommandLineParser cli;
  cli.setApplicationDescription(
      "kvscope-gui: explore the Fourier KV cache and CCV caching over context lengths and real "
      "serving traces.");
  cli.addHelpOption();
  cli.addVersionOption();
  cli.addPositionalArgument("files",
                            "traces, model config.json files, calibration profiles, session "
                            "files or kvscope check results (--out folders) to open",
                            "[files...]");
  const QCommandLineOption model({"m", "model"}, "model preset or config.json", "model");
  const QCommandLineOption view("view", "view to show: analytic, replay, summary or fidelity",
                                "view");
  const QCommandLineOption max_requests("max-requests", "replay only the first N requests", "N");
  const QCommandLineOption run("run", "start a replay once the files are open");
  const QCommandLineOption screenshot(
      "screenshot", "save the window as PNG when the replay is done (or at once) and quit", "png");
  cli.addOptions({model, view, max_requests, run, screenshot});
  cli.process(app);

  std::optional<kvscope::gui::View> start_view;
  if (cli.isSet(view)) {
    const QString v = cli.value(view);
    if (v == "analytic")
      start_view = kvscope::gui::View::analytic;
    else if (v == "replay")
      start_view = kvscope::gui::View::replay;
    else if (v == "summary")
      start_view = kvscope::gui::View::summary;
    else if (v == "fidelity")
      start_view = kvscope::gui::View::fidelity;
    else {
      std::fprintf(stderr, "kvscope-gui: --view: expected analytic, replay, summary or fidelity\n");
      return 2;
    }
  }

  kvscope::gui::MainWindow w(kvscope::run_replay);
  bool ok = true;
  auto opened = [&](bool done) {
    if (!done) std::fprintf(stderr, "kvscope-gui: %s\n", qPrintable(w.error_text()));
    ok = ok && done;
  };
  for (const QString& f : cli.positionalArguments()) opened(w.open_file(f));
  if (cli.isSet(model)) opened(w.open_model(cli.value(model)));
  if (cli.isSet(max_requests)) {
    bool is_num = false;
    const qlonglong n = cli.value(max_requests).toLongLong(&is_num);
    if (!is_num || n < 1) {
      std::fprintf(stderr, "kvscope-gui: --max-requests: expected a whole number >= 1\n");
      return 2;
    }
    kvscope::gui::Session s = w.session();
    s.max_requests = n;
    w.set_session(s);
  }
  w.show();

  const QString shot = cli.value(screenshot);
  // A file that did not open fails a screenshot run even if a later one cleared the banner.
  int exit_code = ok ? 0 : 1;
  auto apply_view = [&] {
    if (start_view) w.set_view(*start_view);
  };
  auto save_and_quit = [&] {
    apply_view();
    // Let the layout settle and the charts paint before grabbing.
    QTimer::singleShot(300, &w, [&] {
      if (!w.grab().save(shot, "PNG")) {
        std::fprintf(stderr, "kvscope-gui: cannot write the screenshot %s\n", qPrintable(shot));
        exit_code = 1;
      } else {
        std::printf("kvscope-gui: screenshot saved to %s\n", qPrintable(shot));
      }
      if (ok && !w.error_text().isEmpty()) {
        std::fprintf(stderr, "kvscope-gui: %s\n", qPrintable(w.error_text()));
        exit_code = 1;
      }
      app.exit(exit_code);
    });
  };

  // With --run, how responsive the window stayed: a 5 ms timer on the UI thread records the
  // longest gap between its ticks from the start of the replay until just after its results
  // were drawn into the views.
  QElapsedTimer clock, since_tick;
  QTimer probe;
  probe.setInterval(5);
  qint64 longest_gap_ms = 0;
  QObject::connect(&probe, &QTimer::timeout, &w,
                   [&] { longest_gap_ms = std::max(longest_gap_ms, since_tick.restart()); });
  if (cli.isSet(run)) {
    QObject::connect(&w, &kvscope::gui::MainWindow::replay_done, &w, [&] {
      apply_view();
      const double replay_s = static_cast<double>(clock.elapsed()) / 1e3;
      QTimer::singleShot(50, &w, [&, replay_s] {
        probe.stop();
        std::printf(
            "kvscope-gui: replay and views done in %.2f s; the UI thread's longest "
            "stall meanwhile: %lld ms\n",
            replay_s, static_cast<long long>(longest_gap_ms));
        std::fflush(stdout);
        if (!shot.isEmpty()) save_and_quit();
      });
    });
    // Started once the window has been shown and painted, so the probe sees the replay only.
    QTimer::singleShot(500, &w, [&] {
      clock.start();
      since_tick.start();
      probe.start();
      if (!w.start_replay()) {
        std::fprintf(stderr, "kvscope-gui: %s\n", qPrintable(w.error_text()));
        if (!shot.isEmpty()) app.exit(1);
      }
    });
  } else if (!shot.isEmpty()) {
    QTimer::singleShot(0, &w, save_and_quit);
  } else {
    apply_view();
  }
  const int rc = app.exec();
  return rc != 0 ? rc : exit_code;
}
