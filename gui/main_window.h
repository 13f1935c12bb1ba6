// kvscope-gui's main window: the parameter panel (a dock), the tabs holding the four views
// (AnalyticView, ReplayView, SummaryView and FidelityView: a kvscope check result), menus for
// files, exports, sessions and the replay, drag and drop, and an error banner.
// It holds a Session and hands each view what model/ and sim/ compute from it; a replay runs
// through a ReplayRunner so the window stays responsive.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include <QMainWindow>
#include <QStringList>

#include "gui/charts.h"
#include "gui/fidelity.h"
#include "gui/profile_cache.h"
#include "gui/replay_runner.h"
#include "gui/session.h"
#include "model/analytic.h"

class QComboBox;
class QLabel;
class QMenu;
class QProgressBar;
class QPushButton;
class QTabWidget;

namespace kvscope::gui {

class AnalyticView;
class ChartView;
class FidelityView;
class NumberTable;
class ParameterPanel;
class ReplayView;
class SummaryView;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  explicit MainWindow(ReplayFn replay, QWidget* parent = nullptr);
  ~MainWindow() override;

  // ---- State ----
  const Session& session() const { return session_; }
  void set_session(const Session& s);  // shows it and recomputes the analytic view
  ParameterPanel* panel() const { return panel_; }

  // ---- Files (each reports problems in the error banner and returns false) ----
  bool open_file(const QString& path);  // any kind: decided by classify_file
  bool open_trace(const QString& path);
  bool open_model(const QString& preset_or_path);
  bool open_profile(const QString& path);
  bool open_session(const QString& path);
  // A kvscope check result: its --out folder, its check_summary.json, or another file of the
  // folder (check.json, steps.csv). Shown in the Fidelity view; a failed open changes nothing.
  bool open_check(const QString& path);
  bool save_session(const QString& path);
  QStringList recent_files() const;

  // ---- Views ----
  void set_view(View v);
  ChartView* chart(const QString& id) const;  // cost_vs_n, kv_vs_n, ..., pred_vs_meas
  QList<ChartView*> charts() const { return charts_; }
  NumberTable* analytic_table() const;
  NumberTable* summary_table() const;
  NumberTable* fidelity_table() const;  // latency per method and kind
  NumberTable* fidelity_memory_table() const;
  QString check_header_text() const;  // the Fidelity view's lines above its tables
  QComboBox* latency_metric_combo() const;
  const std::vector<AnalyticRow>& analytic_rows() const { return rows_; }
  // Recomputes the analytic view now (it is otherwise recomputed right after a change).
  void recompute_now();

  // ---- Replay ----
  bool start_replay();
  void cancel_replay();
  ReplayRunner* runner() const { return runner_; }
  std::shared_ptr<const ReplayResult> replay_result() const { return result_; }
  QProgressBar* progress_bar() const { return progress_; }

  // ---- Check result ----
  std::shared_ptr<const CheckOutput> check_output() const { return check_; }

  // ---- Output ----
  // The kvscope call reproducing the current view (also what Edit > Copy command line copies);
  // for the Fidelity view, the `kvscope check` command the result records.
  QString command_line() const;
  // Every chart (PNG, SVG, CSV) and table (CSV) into `dir`; after a replay also the engine's own
  // outputs in dir/replay/, the files `kvscope replay --out` writes.
  bool export_all(const QString& dir);
  QString error_text() const;  // the banner's message; empty when there is none

 signals:
  void replay_done();  // results shown (also after a cancel) or the failure reported

 protected:
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;
  void closeEvent(QCloseEvent* e) override;

 private:
  void build_menus();
  void on_panel_changed();
  void mark_stale_replay();
  void schedule_recompute();
  void show_replay_result();
  bool load_check(const QString& path);  // reads and shows it; on failure reports and keeps all
  void update_run_state();
  void show_error(const QString& message);
  void clear_error();
  void note(const QString& message);
  void remember(const QString& path);
  void rebuild_recent_menu();
  void export_chart(ChartView* v, const QString& format);
  void export_table(NumberTable* t);
  QString table_name(const NumberTable* t) const;    // file name stem: "analytic", ...
  QString table_corner(const NumberTable* t) const;  // the CSV's first header cell
  ChartView* current_chart() const;
  NumberTable* current_table() const;

  Session session_;
  Session replay_session_;      // the session the shown replay result was computed from
  ReplayConfig replay_config_;  // and the engine's configuration and cost model for it
  std::string replay_cost_model_;
  std::vector<AnalyticRow> rows_;
  std::shared_ptr<const ReplayResult> result_;
  std::shared_ptr<const ReplayViews> views_;
  std::shared_ptr<const CheckOutput> check_;  // what the Fidelity view shows
  bool recompute_pending_ = false;

  ProfileCache profiles_;  // the session's calibration profile, fitted once

  ParameterPanel* panel_ = nullptr;
  QTabWidget* tabs_ = nullptr;
  AnalyticView* analytic_ = nullptr;
  ReplayView* replay_ = nullptr;
  SummaryView* summary_ = nullptr;
  FidelityView* fidelity_ = nullptr;
  QList<ChartView*> charts_;  // every view's, in the order of the tabs
  ChartView* current_chart_ = nullptr;
  NumberTable* current_table_ = nullptr;  // the table last clicked in the Fidelity view

  QLabel* error_ = nullptr;
  QLabel* status_note_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QPushButton* cancel_button_ = nullptr;
  QAction* run_action_ = nullptr;
  QAction* cancel_action_ = nullptr;
  QMenu* recent_menu_ = nullptr;
  ReplayRunner* runner_ = nullptr;
};

}  // namespace kvscope::gui
