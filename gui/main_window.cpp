#include "gui/main_window.h"

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenuBar>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QTimer>
#include <QToolBar>
#include <QVBoxLayout>

#include "gui/analytic_view.h"
#include "gui/chart_view.h"
#include "gui/fidelity_view.h"
#include "gui/file_kind.h"
#include "gui/number_table.h"
#include "gui/parameter_panel.h"
#include "gui/replay_view.h"
#include "gui/summary_view.h"
#include "model/calibration.h"
#include "model/error.h"
#include "model/hardware.h"
#include "model/shape.h"
#include "sim/report/replay_report.h"

namespace kvscope::gui {

namespace {

constexpr int kMaxRecent = 10;

QString qs(const std::string& s) { return QString::fromStdString(s); }

// Error text for the banner: InputError and UsageError already say where the problem is.
QString describe(const std::exception& e) { return QString::fromUtf8(e.what()); }

}  // namespace

MainWindow::MainWindow(ReplayFn replay, QWidget* parent) : QMainWindow(parent) {
  setWindowTitle(tr("kvscope"));
  setAcceptDrops(true);
  runner_ = new ReplayRunner(std::move(replay), this);

  // ---- Central: error banner over the four views ----
  auto* central = new QWidget();
  auto* v = new QVBoxLayout(central);
  v->setContentsMargins(4, 4, 4, 4);
  error_ = new QLabel();
  error_->setWordWrap(true);
  error_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  error_->setStyleSheet(
      "QLabel { background: #fdecea; color: #611a15; border: 1px solid #f5c2c0; padding: 6px; }");
  error_->hide();
  v->addWidget(error_);
  analytic_ = new AnalyticView();
  replay_ = new ReplayView();
  summary_ = new SummaryView();
  fidelity_ = new FidelityView();
  tabs_ = new QTabWidget();
  tabs_->addTab(analytic_, tr("Analytic"));
  tabs_->addTab(replay_, tr("Replay"));
  tabs_->addTab(summary_, tr("Summary"));
  tabs_->addTab(fidelity_, tr("Fidelity"));
  charts_ = analytic_->charts() + replay_->charts() + fidelity_->charts();
  for (ChartView* c : charts_) {
    connect(c, &ChartView::activated, this, [this](ChartView* view) { current_chart_ = view; });
    connect(c, &ChartView::export_requested, this, &MainWindow::export_chart);
  }
  connect(summary_, &SummaryView::use_hit_rate_requested, this, [this](double p) {
    Session s = session_;
    s.p = p;
    set_session(s);
    set_view(View::analytic);
  });
  // File > Export > Table acts on the table last clicked.
  connect(fidelity_, &FidelityView::table_activated, this,
          [this](NumberTable* t) { current_table_ = t; });
  connect(tabs_, &QTabWidget::currentChanged, this, [this](int i) {
    session_.view = static_cast<View>(i);
    current_chart_ = nullptr;
    current_table_ = nullptr;
  });
  v->addWidget(tabs_, 1);
  setCentralWidget(central);

  // ---- Parameter panel ----
  panel_ = new ParameterPanel();
  auto* scroll = new QScrollArea();
  scroll->setWidget(panel_);
  scroll->setWidgetResizable(true);
  scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  scroll->setMinimumWidth(panel_->sizeHint().width() + 24);
  auto* dock = new QDockWidget(tr("Parameters"));
  dock->setObjectName("parameters");
  dock->setWidget(scroll);
  dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
  addDockWidget(Qt::LeftDockWidgetArea, dock);
  connect(panel_, &ParameterPanel::changed, this, &MainWindow::on_panel_changed);
  connect(panel_, &ParameterPanel::open_trace_requested, this, [this] {
    const QString p = QFileDialog::getOpenFileName(
        this, tr("Open trace"), QString(), tr("Traces (*.jsonl *.csv *.ndjson);;All files (*)"));
    if (!p.isEmpty()) open_trace(p);
  });
  connect(panel_, &ParameterPanel::open_model_requested, this, [this] {
    const QString p = QFileDialog::getOpenFileName(this, tr("Open model config.json"), QString(),
                                                   tr("Hugging Face config (*.json)"));
    if (!p.isEmpty()) open_model(p);
  });
  connect(panel_, &ParameterPanel::open_profile_requested, this, [this] {
    const QString p = QFileDialog::getOpenFileName(this, tr("Open calibration profile"), QString(),
                                                   tr("Calibration profile (*.json)"));
    if (!p.isEmpty()) open_profile(p);
  });
  connect(panel_, &ParameterPanel::clear_profile_requested, this, [this] {
    Session s = session_;
    s.profile_path.clear();
    set_session(s);
  });

  // ---- Status bar: progress and cancel ----
  status_note_ = new QLabel();
  progress_ = new QProgressBar();
  progress_->setRange(0, 1000);
  progress_->setMaximumWidth(260);
  progress_->setTextVisible(true);
  progress_->setFormat("%p%");
  progress_->hide();
  cancel_button_ = new QPushButton(tr("Cancel"));
  cancel_button_->hide();
  connect(cancel_button_, &QPushButton::clicked, this, &MainWindow::cancel_replay);
  statusBar()->addWidget(status_note_, 1);
  statusBar()->addPermanentWidget(progress_);
  statusBar()->addPermanentWidget(cancel_button_);

  connect(runner_, &ReplayRunner::progressed, this, [this](double f, const QString& n) {
    progress_->setValue(static_cast<int>(f * 1000.0));
    status_note_->setText(tr("Replaying: %1").arg(n));
  });
  connect(runner_, &ReplayRunner::finished, this, [this] {
    result_ = runner_->result();
    views_ = runner_->views();
    show_replay_result();
    mark_stale_replay();
    update_run_state();
    if (result_->cancelled) {
      show_error(tr("The replay was cancelled; the views show what it had done by then."));
    } else {
      note(tr("Replay done: %1 requests, %2 methods")
               .arg(result_->trace.requests)
               .arg(result_->methods.size()));
      set_view(View::replay);
    }
    emit replay_done();
  });
  connect(runner_, &ReplayRunner::failed, this, [this](const QString& message) {
    update_run_state();
    show_error(tr("Replay failed: %1").arg(message));
    note(tr("Replay failed"));
    emit replay_done();
  });

  build_menus();
  resize(1500, 940);
  panel_->set_session(session_);
  update_run_state();
  recompute_now();
}

MainWindow::~MainWindow() {
  runner_->cancel();
  runner_->wait();
}

void MainWindow::build_menus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("Open &trace..."), QKeySequence::Open, this, [this] {
    const QString p = QFileDialog::getOpenFileName(
        this, tr("Open trace"), QString(), tr("Traces (*.jsonl *.csv *.ndjson);;All files (*)"));
    if (!p.isEmpty()) open_trace(p);
  });
  file->addAction(tr("Open &model config.json..."), this,
                  [this] { emit panel_->open_model_requested(); });
  file->addAction(tr("Open &calibration profile..."), this,
                  [this] { emit panel_->open_profile_requested(); });
  file->addAction(tr("Open check res&ult..."), this, [this] {
    // Any file of a `kvscope check --out` folder stands for the folder.
    const QString p = QFileDialog::getOpenFileName(
        this, tr("Open check result (any file of a kvscope check --out folder)"), QString(),
        tr("kvscope check output (check_summary.json check.json steps.csv);;All files (*)"));
    if (!p.isEmpty()) open_check(p);
  });
  recent_menu_ = file->addMenu(tr("Open &recent"));
  rebuild_recent_menu();
  file->addSeparator();
  file->addAction(tr("Open &session..."), this, [this] {
    const QString p = QFileDialog::getOpenFileName(this, tr("Open session"), QString(),
                                                   tr("kvscope session (*.json)"));
    if (!p.isEmpty()) open_session(p);
  });
  file->addAction(tr("&Save session..."), QKeySequence::Save, this, [this] {
    const QString p = QFileDialog::getSaveFileName(this, tr("Save session"), "session.json",
                                                   tr("kvscope session (*.json)"));
    if (!p.isEmpty()) save_session(p);
  });
  file->addSeparator();
  QMenu* exp = file->addMenu(tr("&Export"));
  exp->addAction(tr("Chart as &PNG..."), this, [this] { export_chart(current_chart(), "png"); });
  exp->addAction(tr("Chart as &SVG..."), this, [this] { export_chart(current_chart(), "svg"); });
  exp->addAction(tr("Chart data as &CSV..."), this,
                 [this] { export_chart(current_chart(), "csv"); });
  exp->addAction(tr("&Table as CSV..."), this, [this] { export_table(current_table()); });
  exp->addAction(tr("&Everything to a folder..."), this, [this] {
    const QString d = QFileDialog::getExistingDirectory(this, tr("Export into folder"));
    if (!d.isEmpty() && export_all(d)) note(tr("Exported into %1").arg(d));
  });
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

  QMenu* edit = menuBar()->addMenu(tr("&Edit"));
  edit->addAction(tr("&Copy command line"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_C), this,
                  [this] {
                    const QString c = command_line();
                    QApplication::clipboard()->setText(c);
                    note(tr("Copied: %1").arg(c));
                  });

  QMenu* replay = menuBar()->addMenu(tr("&Replay"));
  run_action_ = replay->addAction(tr("&Run replay"), QKeySequence(Qt::CTRL | Qt::Key_R), this,
                                  [this] { start_replay(); });
  cancel_action_ = replay->addAction(tr("&Cancel"), QKeySequence(Qt::Key_Escape), this,
                                     &MainWindow::cancel_replay);

  QMenu* view = menuBar()->addMenu(tr("&View"));
  view->addAction(tr("&Analytic"), QKeySequence(Qt::CTRL | Qt::Key_1), this,
                  [this] { set_view(View::analytic); });
  view->addAction(tr("&Replay"), QKeySequence(Qt::CTRL | Qt::Key_2), this,
                  [this] { set_view(View::replay); });
  view->addAction(tr("&Summary"), QKeySequence(Qt::CTRL | Qt::Key_3), this,
                  [this] { set_view(View::summary); });
  view->addAction(tr("&Fidelity"), QKeySequence(Qt::CTRL | Qt::Key_4), this,
                  [this] { set_view(View::fidelity); });

  auto* tools = addToolBar(tr("Replay"));
  tools->setObjectName("replay_toolbar");
  tools->addAction(run_action_);
  tools->addAction(cancel_action_);
  tools->addSeparator();
  tools->addAction(tr("Copy command line"), this, [this] {
    const QString c = command_line();
    QApplication::clipboard()->setText(c);
    note(tr("Copied: %1").arg(c));
  });
}

// ---- State and the analytic view ----------------------------------------------------------

void MainWindow::set_session(const Session& s) {
  const std::string shown_check = check_ ? check_->files.opened.toStdString() : std::string();
  session_ = s;
  panel_->set_session(session_);
  // The widgets round to their precision; what they show is what the views use.
  session_ = panel_->session(session_);
  tabs_->setCurrentIndex(static_cast<int>(session_.view));
  recompute_now();
  mark_stale_replay();
  // After the analytic view, whose success clears the banner: a check that does not load is
  // reported, and the one shown before stays.
  if (session_.check_path != shown_check) {
    if (session_.check_path.empty()) {
      check_.reset();
      fidelity_->show_check(check_.get());
    } else if (load_check(QString::fromStdString(session_.check_path))) {
      session_.check_path = check_->files.opened.toStdString();
    } else {
      session_.check_path = shown_check;
    }
  }
}

void MainWindow::on_panel_changed() {
  session_ = panel_->session(session_);
  schedule_recompute();
  mark_stale_replay();
}

void MainWindow::mark_stale_replay() {
  // The replay views keep showing the last result; say so when the inputs have moved on.
  Session now = session_, then = replay_session_;
  now.view = then.view = View::analytic;
  now.p = then.p;  // the analytic view's own parameters do not change a replay
  now.n_min_tokens = then.n_min_tokens;
  now.n_max_tokens = then.n_max_tokens;
  now.points_per_doubling = then.points_per_doubling;
  now.check_path = then.check_path;  // only shown, in its own view
  const bool stale = result_ && now != then;
  tabs_->setTabText(1, stale ? tr("Replay (older inputs)") : tr("Replay"));
  tabs_->setTabText(2, stale ? tr("Summary (older inputs)") : tr("Summary"));
}

void MainWindow::schedule_recompute() {
  // Coalesces a burst of changes (a dragged slider) into one recomputation.
  if (recompute_pending_) return;
  recompute_pending_ = true;
  QTimer::singleShot(0, this, [this] {
    recompute_pending_ = false;
    recompute_now();
  });
}

void MainWindow::recompute_now() {
  QString pricing;
  try {
    const Resolved r = resolve(session_, profiles_);
    rows_ =
        kvscope::analytic_rows(r.shape, r.config, *r.ops, session_.p, context_lengths(session_));
    pricing = tr("%1: %2 layers, d1 %3, d2 %4.  Operations priced by %5.")
                  .arg(qs(r.shape.name))
                  .arg(r.shape.layers)
                  .arg(r.shape.d1())
                  .arg(r.config.ccv.resolved_d2(r.shape))
                  .arg(qs(r.ops->describe()));
  } catch (const std::exception& e) {
    show_error(tr("Analytic view not updated: %1").arg(describe(e)));
    return;
  }
  clear_error();
  analytic_->show_rows(rows_, pricing, session_.methods.empty() ? all_methods() : session_.methods);
  setWindowTitle(tr("kvscope - %1").arg(QFileInfo(qs(session_.model)).fileName()));
}

void MainWindow::set_view(View v) {
  session_.view = v;
  tabs_->setCurrentIndex(static_cast<int>(v));
}

ChartView* MainWindow::chart(const QString& id) const {
  for (ChartView* c : charts_)
    if (c->id() == id) return c;
  return nullptr;
}

// ---- Files ----------------------------------------------------------------------------------

bool MainWindow::open_file(const QString& path) {
  QString why;
  switch (classify_file(path, &why)) {
    case FileKind::trace:
      return open_trace(path);
    case FileKind::model_config:
      return open_model(path);
    case FileKind::profile:
      return open_profile(path);
    case FileKind::session:
      return open_session(path);
    case FileKind::check_result:
      return open_check(path);
    case FileKind::unknown:
      break;
  }
  show_error(tr("Cannot open %1").arg(why));
  return false;
}

bool MainWindow::open_trace(const QString& path) {
  const QFileInfo info(path);
  if (!info.isFile() || !info.isReadable()) {
    show_error(tr("%1: no readable trace file there").arg(path));
    return false;
  }
  Session s = session_;
  s.trace_path = info.absoluteFilePath().toStdString();
  set_session(s);
  remember(info.absoluteFilePath());
  note(tr("Trace %1: run a replay (Ctrl+R) to see it").arg(info.fileName()));
  update_run_state();
  return true;
}

bool MainWindow::open_model(const QString& preset_or_path) {
  const QFileInfo info(preset_or_path);
  const std::string model =
      info.isFile() ? info.absoluteFilePath().toStdString() : preset_or_path.toStdString();
  try {
    (void)load_model(model);  // reject a bad config here, with its file and field
  } catch (const std::exception& e) {
    show_error(tr("Model not loaded: %1").arg(describe(e)));
    return false;
  }
  Session s = session_;
  s.model = model;
  set_session(s);
  if (info.isFile()) remember(info.absoluteFilePath());
  return true;
}

bool MainWindow::open_profile(const QString& path) {
  const QFileInfo info(path);
  const std::string file = info.absoluteFilePath().toStdString();
  Session s = session_;
  try {
    // Fit it now so a bad profile is refused with its file and field, before it is used.
    const CalibrationProfile& profile = profiles_.get(file).profile;
    // An explicit --gpu must name the profile's device: follow the profile when the current
    // preset does not, so its replay gets that device's memory too.
    auto matches = [&](const std::string& preset) {
      try {
        check_profile_matches(profile, preset);
        return true;
      } catch (const InputError&) {
        return false;
      }
    };
    if (!matches(s.gpu))
      for (const std::string& preset : hardware_preset_names())
        if (matches(preset)) {
          note(tr("GPU preset set to %1, the device the profile was measured on").arg(qs(preset)));
          s.gpu = preset;
          break;
        }
  } catch (const std::exception& e) {
    show_error(tr("Calibration profile not loaded: %1").arg(describe(e)));
    return false;
  }
  s.profile_path = file;
  set_session(s);
  remember(info.absoluteFilePath());
  return error_text().isEmpty();
}

bool MainWindow::open_session(const QString& path) {
  Session s;
  try {
    s = load_session(path.toStdString());
  } catch (const std::exception& e) {
    show_error(tr("Session not opened: %1").arg(describe(e)));
    return false;
  }
  set_session(s);
  remember(QFileInfo(path).absoluteFilePath());
  note(tr("Session %1 opened").arg(QFileInfo(path).fileName()));
  update_run_state();
  return error_text().isEmpty();
}

bool MainWindow::save_session(const QString& path) {
  try {
    gui::save_session(session_, path.toStdString());
  } catch (const std::exception& e) {
    show_error(tr("Session not saved: %1").arg(describe(e)));
    return false;
  }
  remember(QFileInfo(path).absoluteFilePath());
  note(tr("Session saved to %1").arg(path));
  return true;
}

bool MainWindow::open_check(const QString& path) {
  if (!load_check(path)) return false;
  session_.check_path = check_->files.opened.toStdString();
  remember(check_->files.opened);
  clear_error();
  set_view(View::fidelity);
  note(tr("Check result %1 opened").arg(check_->files.opened));
  return true;
}

bool MainWindow::load_check(const QString& path) {
  QString why;
  const auto files = locate_check_files(path, &why);
  if (!files) {
    show_error(tr("Check result not opened: %1").arg(why));
    return false;
  }
  try {
    check_ = std::make_shared<const CheckOutput>(load_check_output(*files));
  } catch (const std::exception& e) {
    show_error(tr("Check result not opened: %1").arg(describe(e)));
    return false;
  }
  fidelity_->show_check(check_.get());
  return true;
}

NumberTable* MainWindow::analytic_table() const { return analytic_->table(); }
NumberTable* MainWindow::summary_table() const { return summary_->table(); }
NumberTable* MainWindow::fidelity_table() const { return fidelity_->latency_table(); }
NumberTable* MainWindow::fidelity_memory_table() const { return fidelity_->memory_table(); }
QString MainWindow::check_header_text() const { return fidelity_->header_text(); }
QComboBox* MainWindow::latency_metric_combo() const { return replay_->latency_metric_combo(); }

QStringList MainWindow::recent_files() const {
  return QSettings().value("recent_files").toStringList();
}

void MainWindow::remember(const QString& path) {
  QStringList r = recent_files();
  r.removeAll(path);
  r.prepend(path);
  while (r.size() > kMaxRecent) r.removeLast();
  QSettings().setValue("recent_files", r);
  rebuild_recent_menu();
}

void MainWindow::rebuild_recent_menu() {
  recent_menu_->clear();
  const QStringList r = recent_files();
  for (const QString& p : r) {
    QString why;
    const FileKind k = classify_file(p, &why);
    QAction* a = recent_menu_->addAction(
        QStringLiteral("%1  (%2)").arg(QFileInfo(p).fileName(), file_kind_name(k)), this,
        [this, p] { open_file(p); });
    a->setToolTip(p);
  }
  recent_menu_->setEnabled(!r.isEmpty());
  if (!r.isEmpty()) {
    recent_menu_->addSeparator();
    recent_menu_->addAction(tr("Clear list"), this, [this] {
      QSettings().remove("recent_files");
      rebuild_recent_menu();
    });
  }
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
  if (!e->mimeData()->hasUrls()) return;
  for (const QUrl& u : e->mimeData()->urls())
    if (!u.isLocalFile()) return;
  e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
  // Sessions first, so the files dropped with one apply on top of it.
  QStringList sessions, others;
  for (const QUrl& u : e->mimeData()->urls()) {
    const QString p = u.toLocalFile();
    (classify_file(p, nullptr) == FileKind::session ? sessions : others) << p;
  }
  for (const QString& p : sessions + others) open_file(p);
  e->acceptProposedAction();
}

// ---- Replay --------------------------------------------------------------------------------

bool MainWindow::start_replay() {
  if (runner_->running()) return false;
  if (session_.trace_path.empty()) {
    show_error(tr("Open a trace first (File > Open trace, or drop one on the window)."));
    return false;
  }
  if (session_.methods.empty()) {
    show_error(tr("Choose at least one method to replay."));
    return false;
  }
  try {
    const Resolved r = resolve(session_, profiles_);
    ReplayConfig cfg = replay_config(session_, r);
    replay_session_ = session_;
    replay_config_ = cfg;
    replay_cost_model_ = r.ops->describe();
    runner_->start(session_.trace_path, std::move(cfg), r.ops);
  } catch (const std::exception& e) {
    show_error(tr("Replay not started: %1").arg(describe(e)));
    return false;
  }
  clear_error();
  update_run_state();
  return true;
}

void MainWindow::cancel_replay() {
  if (!runner_->running()) return;
  runner_->cancel();
  note(tr("Cancelling..."));
}

void MainWindow::update_run_state() {
  const bool running = runner_->running();
  run_action_->setEnabled(!running);
  cancel_action_->setEnabled(running);
  cancel_button_->setVisible(running);
  progress_->setVisible(running);
  if (running) progress_->setValue(0);
}

void MainWindow::show_replay_result() {
  if (!result_) return;
  replay_->show_result(result_, views_);
  summary_->show_result(*result_, replay_cost_model_);
}

// ---- Output -------------------------------------------------------------------------------

QString MainWindow::command_line() const {
  // The check ran on a GPU the app does not drive: the command it recorded reproduces it.
  if (session_.view == View::fidelity && check_) return qs(check_->summary.command);
  const bool replay_view = session_.view == View::replay || session_.view == View::summary;
  Session s = replay_view && result_ ? replay_session_ : session_;
  s.view = session_.view;
  return qs(gui::command_line(s));
}

ChartView* MainWindow::current_chart() const {
  if (current_chart_) return current_chart_;
  switch (session_.view) {
    case View::analytic:
      return chart("cost_vs_n");
    case View::replay:
      return chart("memory_over_time");
    case View::summary:
      return chart("memory_over_time");
    case View::fidelity:
      return chart("pred_vs_meas");
  }
  return charts_.front();
}

NumberTable* MainWindow::current_table() const {
  switch (session_.view) {
    case View::summary:
      return summary_->table();
    case View::fidelity:
      return current_table_ ? current_table_ : fidelity_->latency_table();
    default:
      return analytic_->table();
  }
}

QString MainWindow::table_name(const NumberTable* t) const {
  if (t == summary_->table()) return "summary";
  if (t == fidelity_->latency_table()) return "fidelity";
  if (t == fidelity_->memory_table()) return "fidelity_memory";
  return "analytic";
}

QString MainWindow::table_corner(const NumberTable* t) const {
  if (t == summary_->table()) return tr("metric");
  if (t == fidelity_->latency_table()) return tr("method, step kind");
  if (t == fidelity_->memory_table()) return tr("method");
  return tr("context length");
}

void MainWindow::export_chart(ChartView* v, const QString& format) {
  const QString filter = format == "png"   ? tr("PNG image (*.png)")
                         : format == "svg" ? tr("SVG image (*.svg)")
                                           : tr("CSV (*.csv)");
  const QString path =
      QFileDialog::getSaveFileName(this, tr("Export chart"), v->id() + "." + format, filter);
  if (path.isEmpty()) return;
  QString error;
  const bool ok = format == "png"   ? v->save_png(path, &error)
                  : format == "svg" ? v->save_svg(path, &error)
                                    : v->save_csv(path, &error);
  if (ok)
    note(tr("Saved %1").arg(path));
  else
    show_error(error);
}

void MainWindow::export_table(NumberTable* t) {
  const QString path = QFileDialog::getSaveFileName(this, tr("Export table"),
                                                    table_name(t) + ".csv", tr("CSV (*.csv)"));
  if (path.isEmpty()) return;
  QString error;
  if (t->save_csv(path, table_corner(t), &error))
    note(tr("Saved %1").arg(path));
  else
    show_error(error);
}

bool MainWindow::export_all(const QString& dir) {
  if (!QDir().mkpath(dir)) {
    show_error(tr("%1: cannot create the folder").arg(dir));
    return false;
  }
  const QDir d(dir);
  QString error;
  for (ChartView* c : charts_) {
    if (c->chart()->series().isEmpty()) continue;  // a replay chart before any replay
    if (!c->save_png(d.filePath(c->id() + ".png"), &error) ||
        !c->save_svg(d.filePath(c->id() + ".svg"), &error) ||
        !c->save_csv(d.filePath(c->id() + ".csv"), &error)) {
      show_error(error);
      return false;
    }
  }
  std::vector<NumberTable*> tables{analytic_->table()};
  if (result_) tables.push_back(summary_->table());
  if (check_) tables.insert(tables.end(), {fidelity_->latency_table(), fidelity_->memory_table()});
  for (NumberTable* t : tables)
    if (!t->save_csv(d.filePath(table_name(t) + ".csv"), table_corner(t), &error)) {
      show_error(error);
      return false;
    }
  if (result_) {
    try {
      write_replay_outputs(d.filePath("replay").toStdString(), *result_,
                           replay_run_info(replay_config_, replay_cost_model_));
    } catch (const std::exception& e) {
      show_error(tr("Replay outputs not written: %1").arg(describe(e)));
      return false;
    }
  }
  return true;
}

void MainWindow::show_error(const QString& message) {
  error_->setText(message);
  error_->show();
  statusBar()->showMessage(message.section('\n', 0, 0), 8000);
}

void MainWindow::clear_error() {
  error_->clear();
  error_->hide();
}

QString MainWindow::error_text() const { return error_->isHidden() ? QString() : error_->text(); }

void MainWindow::note(const QString& message) { status_note_->setText(message); }

void MainWindow::closeEvent(QCloseEvent* e) {
  if (runner_->running()) {
    runner_->cancel();
    runner_->wait();
  }
  e->accept();
}

}  // namespace kvscope::gui
