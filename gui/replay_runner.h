// Runs a replay off the UI thread: QtConcurrent::run on the global pool, a QFutureWatcher to
// hear it finish, progress handed over through atomics that a timer on the UI thread reads (so a
// chatty progress callback can never flood the event loop), and cancel through the atomic flag
// run_replay polls.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <QFutureWatcher>
#include <QObject>
#include <QTimer>

#include "gui/charts.h"
#include "sim/replay/replay.h"

namespace kvscope::gui {

// run_replay's signature; the app passes kvscope::run_replay itself.
using ReplayFn =
    std::function<ReplayResult(const std::string&, const ReplayConfig&, const OpCostModel&,
                               const ProgressFn&, const std::atomic<bool>*)>;

class ReplayRunner : public QObject {
  Q_OBJECT

 public:
  explicit ReplayRunner(ReplayFn fn, QObject* parent = nullptr);
  ~ReplayRunner() override;  // cancels a running replay and waits for it

  bool running() const { return running_; }
  // Starts a replay; false (and nothing started) if one is running already.
  bool start(std::string trace_path, ReplayConfig config, std::shared_ptr<const OpCostModel> costs);
  void cancel();
  // Blocks until the running replay (if any) has returned. For shutdown and tests.
  void wait();

  // The last finished replay (cancelled ones included); null before the first. views() is what
  // the replay charts draw of it, prepared on the worker thread.
  std::shared_ptr<const ReplayResult> result() const { return result_; }
  std::shared_ptr<const ReplayViews> views() const { return views_; }

 signals:
  void progressed(double fraction, const QString& note);
  void finished();                      // result() holds the outcome (maybe cancelled)
  void failed(const QString& message);  // the replay threw: bad trace, bad configuration

 private:
  struct Outcome {
    std::shared_ptr<const ReplayResult> result;
    std::shared_ptr<const ReplayViews> views;
    QString error;
  };
  void poll_progress();
  void on_done();

  ReplayFn fn_;
  bool running_ = false;
  std::atomic<bool> cancel_{false};
  std::atomic<double> fraction_{0.0};
  mutable std::mutex note_mutex_;
  std::string note_;
  QTimer poll_;
  QFutureWatcher<Outcome> watcher_;
  std::shared_ptr<const ReplayResult> result_;
  std::shared_ptr<const ReplayViews> views_;
};

}  // namespace kvscope::gui
