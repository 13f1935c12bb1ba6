#include "gui/main_window.h"

#include <cmath>

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QComboBox>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMenuBar>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableView>
#include <QTimer>
#include <QToolBar>
#include <QVBoxLayout>

#include "gui/chart_view.h"
#include "gui/file_kind.h"
#include "gui/number_table.h"
#include "gui/parameter_panel.h"
#include "model/calibration.h"
#include "model/error.h"
#include "model/hardware.h"
#include "sim/cli/options.h"
#include "sim/report/replay_report.h"

namespace kvscope::gui {

namespace {

constexpr int kMaxRecent = 10;

QString qs(const std::string& s) { return QString::fromStdString(s); }
QString bytes_text(double b) { return qs(cli::human_bytes(b)); }

// Error text for the banner: InputError and UsageError already say where the problem is.
QString describe(const std::exception& e) { return QString::fromUtf8(e.what()); }

}  // namespace

MainWindow::MainWindow(ReplayFn replay, QWidget* parent) : QMainWindow(parent) {
  setWindowTitle(tr("kvscope"));
  setAcceptDrops(true);
  runner_ = new ReplayRunner(std::move(replay), this);

  // ---- Central: error banner over the three views ----
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
  tabs_ = new QTabWidget();
  tabs_->addTab(build_analytic_tab(), tr("Analytic"));
  tabs_->addTab(build_replay_tab(), tr("Replay"));
  tabs_->addTab(build_summary_tab(), tr("Summary"));
  tabs_->addTab(build_fidelity_tab(), tr("Fidelity"));
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

// ---- Building the views --------------------------------------------------------------------

ChartView* MainWindow::add_chart(const QString& id, const QString& title) {
  auto* c = new ChartView(id, title);
  charts_.push_back(c);
  connect(c, &ChartView::activated, this, [this](ChartView* view) { current_chart_ = view; });
  connect(c, &ChartView::export_requested, this, &MainWindow::export_chart);
  return c;
}

QWidget* MainWindow::build_analytic_tab() {
  auto* outer = new QWidget();
  auto* ov = new QVBoxLayout(outer);
  ov->setContentsMargins(0, 0, 0, 0);
  pricing_ = new QLabel();
  pricing_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  ov->addWidget(pricing_);
  auto* w = new QSplitter(Qt::Vertical);
  ov->addWidget(w, 1);
  auto* charts = new QSplitter(Qt::Horizontal);
  charts->addWidget(add_chart("cost_vs_n", tr("Prefill time over N: T_tran vs T_ccv")));
  charts->addWidget(add_chart("kv_vs_n", tr("KV cache per sequence over N")));
  w->addWidget(charts);
  analytic_table_ = new NumberTable(this);
  analytic_view_ = new QTableView();
  analytic_view_->setModel(analytic_table_);
  analytic_view_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  w->addWidget(analytic_view_);
  w->setStretchFactor(0, 3);
  w->setStretchFactor(1, 1);
  w->setSizes({560, 240});  // the charts first; the table scrolls
  return outer;
}

QWidget* MainWindow::build_replay_tab() {
  auto* w = new QWidget();
  auto* grid = new QVBoxLayout(w);
  auto* top = new QSplitter(Qt::Horizontal);
  top->addWidget(add_chart("memory_over_time", tr("Memory over time")));
  top->addWidget(add_chart("hit_rate_over_time", tr("CCV hit rate p over time")));
  auto* bottom = new QSplitter(Qt::Horizontal);
  auto* latency = new QWidget();
  auto* lv = new QVBoxLayout(latency);
  lv->setContentsMargins(0, 0, 0, 0);
  lv->setSpacing(2);
  auto* metric_row = new QHBoxLayout();
  metric_row->addWidget(new QLabel(tr("Latency:")));
  latency_metric_ = new QComboBox();
  for (LatencyMetric m : {LatencyMetric::ttft, LatencyMetric::tbt, LatencyMetric::e2e})
    latency_metric_->addItem(latency_metric_label(m), static_cast<int>(m));
  connect(latency_metric_, &QComboBox::currentIndexChanged, this, [this] {
    if (result_)
      show_latency_chart(chart("latency"), *result_,
                         static_cast<LatencyMetric>(latency_metric_->currentData().toInt()));
  });
  metric_row->addWidget(latency_metric_);
  metric_row->addStretch(1);
  lv->addLayout(metric_row);
  lv->addWidget(add_chart("latency", tr("Latency percentiles")), 1);
  bottom->addWidget(latency);
  bottom->addWidget(add_chart("step_breakdown", tr("Step time by kernel (full-layer model)")));
  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(top);
  split->addWidget(bottom);
  split->setSizes({420, 420});
  grid->addWidget(split);
  for (const char* id : {"memory_over_time", "hit_rate_over_time", "latency", "step_breakdown"})
    chart(id)->set_placeholder(tr("Open a trace and run a replay (Replay > Run)"));
  return w;
}

QWidget* MainWindow::build_summary_tab() {
  auto* w = new QWidget();
  auto* v = new QVBoxLayout(w);
  trace_stats_ = new QLabel(tr("No replay yet."));
  trace_stats_->setWordWrap(true);
  trace_stats_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  v->addWidget(trace_stats_);
  summary_table_ = new NumberTable(this);
  summary_view_ = new QTableView();
  summary_view_->setModel(summary_table_);
  summary_view_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  summary_view_->verticalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  v->addWidget(summary_view_, 1);
  use_measured_p_ = new QPushButton(tr("Use the measured hit rate as p in the analytic view"));
  use_measured_p_->setEnabled(false);
  connect(use_measured_p_, &QPushButton::clicked, this, [this] {
    if (!result_) return;
    for (const MethodResult& m : result_->methods)
      if (uses_ccv(m.summary.method)) {
        Session s = session_;
        s.p = m.summary.hit_rate;
        set_session(s);
        set_view(View::analytic);
        return;
      }
  });
  v->addWidget(use_measured_p_, 0, Qt::AlignLeft);
  return w;
}

QWidget* MainWindow::build_fidelity_tab() {
  auto* w = new QWidget();
  auto* v = new QVBoxLayout(w);
  check_header_ = new QLabel();
  check_header_->setWordWrap(true);
  check_header_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  v->addWidget(check_header_);
  auto table_view = [&](NumberTable*& table) {
    table = new NumberTable(this);
    auto* view = new QTableView();
    view->setModel(table);
    view->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    // File > Export > Table acts on the table last clicked.
    connect(view, &QTableView::pressed, this, [this, table] { current_table_ = table; });
    return view;
  };
  // The latency table beside the chart, the short memory table under both: the chart keeps
  // enough width for its legend.
  auto* top = new QSplitter(Qt::Horizontal);
  top->addWidget(table_view(fidelity_table_));
  top->addWidget(add_chart("pred_vs_meas", tr("Predicted vs measured step time")));
  top->setSizes({560, 480});
  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(top);
  split->addWidget(table_view(fidelity_memory_table_));
  split->setSizes({600, 150});
  v->addWidget(split, 1);
  show_fidelity();
  return w;
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
      show_fidelity();
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
  try {
    const Resolved r = resolve(session_);
    rows_ = gui::analytic_rows(r, session_.p, context_lengths(session_));
    pricing_->setText(tr("%1: %2 layers, d1 %3, d2 %4.  Operations priced by %5.")
                          .arg(qs(r.shape.name))
                          .arg(r.shape.layers)
                          .arg(r.shape.d1())
                          .arg(r.config.ccv.resolved_d2(r.shape))
                          .arg(qs(r.ops->describe())));
  } catch (const std::exception& e) {
    show_error(tr("Analytic view not updated: %1").arg(describe(e)));
    return;
  }
  clear_error();
  show_cost_chart(chart("cost_vs_n"), rows_);
  show_memory_chart(chart("kv_vs_n"), rows_,
                    session_.methods.empty() ? all_methods() : session_.methods);

  const QStringList cols{tr("T_tran paper (ms)"),
                         tr("T_ccv paper (ms)"),
                         tr("speedup paper"),
                         tr("T_tran full (ms)"),
                         tr("T_ccv full (ms)"),
                         tr("speedup full"),
                         tr("T_sa (ms)"),
                         tr("T_l (ms)"),
                         tr("T_cos (ms)"),
                         tr("KV baseline (bytes)"),
                         tr("KV fourier (bytes)"),
                         tr("KV ccv at p (bytes)"),
                         tr("KV fourier+ccv at p (bytes)"),
                         tr("CCV entry (bytes)")};
  QStringList row_names;
  std::vector<std::vector<double>> values;
  std::vector<std::vector<QString>> shown;
  for (const AnalyticRow& r : rows_) {
    row_names << tr("N = %1").arg(r.n_tokens);
    const std::vector<double> ms = {r.paper.t_tran_ms, r.paper.t_ccv_ms, r.paper.speedup(),
                                    r.full.t_tran_ms,  r.full.t_ccv_ms,  r.full.speedup(),
                                    r.terms.t_sa_ms,   r.terms.t_l_ms,   r.terms.t_cos_ms};
    const std::vector<double> bytes = {
        static_cast<double>(r.kv_baseline_bytes), static_cast<double>(r.kv_fourier_bytes),
        r.kv_ccv_bytes, r.kv_fourier_ccv_bytes, static_cast<double>(r.ccv_entry_bytes)};
    std::vector<double> row = ms;
    row.insert(row.end(), bytes.begin(), bytes.end());
    std::vector<QString> text;
    for (double x : ms) text.push_back(format_value(x));
    for (double b : bytes) text.push_back(bytes_text(b));
    values.push_back(std::move(row));
    shown.push_back(std::move(text));
  }
  analytic_table_->set(row_names, cols, std::move(values), std::move(shown));
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
    const CalibrationProfile profile = load_profile(file);
    (void)CalibratedCostModel(profile);
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
  show_fidelity();
  return true;
}

void MainWindow::show_fidelity() {
  ChartView* scatter = chart("pred_vs_meas");
  if (!check_) {
    check_header_->setText(
        tr("No check result. Open one with File > Open check result, or drop a kvscope check "
           "--out folder (or its check_summary.json) on the window."));
    fidelity_table_->reset();
    fidelity_memory_table_->reset();
    scatter->clear();
    scatter->set_placeholder(tr("Open a check result (File > Open check result)"));
    return;
  }
  show_latency_fidelity(fidelity_table_, check_->summary);
  show_memory_fidelity(fidelity_memory_table_, check_->summary);
  const std::size_t left_out = show_pred_vs_meas(scatter, check_->steps);
  QString header = gui::check_header_text(*check_);
  if (left_out > 0)
    header += '\n' + tr("%1 steps with a predicted or measured time of 0 are not in the chart "
                        "(log axes).")
                         .arg(left_out);
  check_header_->setText(header);
}

QString MainWindow::check_header_text() const { return check_header_->text(); }

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
    const Resolved r = resolve(session_);
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
  show_memory_timeline(chart("memory_over_time"), *views_);
  show_hit_rate_timeline(chart("hit_rate_over_time"), *views_);
  show_latency_chart(chart("latency"), *result_,
                     static_cast<LatencyMetric>(latency_metric_->currentData().toInt()));
  show_step_breakdown(chart("step_breakdown"), *result_, *views_);
  show_summary();
}

void MainWindow::show_summary() {
  const ReplayResult& r = *result_;
  const TraceStats& t = r.trace;
  trace_stats_->setText(
      tr("%1Trace %2 (%3): %4 requests, %5 skipped records, %6 input and %7 output tokens over "
         "%8 s. Steps priced by %9.")
          .arg(r.cancelled ? tr("[cancelled, partial] ") : QString(), qs(t.path), qs(t.format))
          .arg(t.requests)
          .arg(t.skipped_records)
          .arg(t.input_tokens)
          .arg(t.output_tokens)
          .arg(format_value(t.duration_s))
          .arg(qs(replay_cost_model_)));

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
          srow.push_back(bytes_text(x));
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
  summary_table_->set(rows, cols, std::move(values), std::move(shown));
  bool any_ccv = false;
  for (const MethodResult& m : r.methods) any_ccv |= uses_ccv(m.summary.method);
  use_measured_p_->setEnabled(any_ccv);
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
      return summary_table_;
    case View::fidelity:
      return current_table_ ? current_table_ : fidelity_table_;
    default:
      return analytic_table_;
  }
}

QString MainWindow::table_name(const NumberTable* t) const {
  if (t == summary_table_) return "summary";
  if (t == fidelity_table_) return "fidelity";
  if (t == fidelity_memory_table_) return "fidelity_memory";
  return "analytic";
}

QString MainWindow::table_corner(const NumberTable* t) const {
  if (t == summary_table_) return tr("metric");
  if (t == fidelity_table_) return tr("method, step kind");
  if (t == fidelity_memory_table_) return tr("method");
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
  std::vector<NumberTable*> tables{analytic_table_};
  if (result_) tables.push_back(summary_table_);
  if (check_) tables.insert(tables.end(), {fidelity_table_, fidelity_memory_table_});
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
