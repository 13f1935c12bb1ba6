#include "gui/replay_runner.h"

#include <exception>

#include <QtConcurrent/QtConcurrentRun>

namespace kvscope::gui {

ReplayRunner::ReplayRunner(ReplayFn fn, QObject* parent) : QObject(parent), fn_(std::move(fn)) {
  poll_.setInterval(100);
  connect(&poll_, &QTimer::timeout, this, &ReplayRunner::poll_progress);
  connect(&watcher_, &QFutureWatcher<Outcome>::finished, this, &ReplayRunner::on_done);
}

ReplayRunner::~ReplayRunner() {
  cancel();
  // The worker reads cancel_ and writes fraction_/note_: it must be gone before they are.
  watcher_.waitForFinished();
}

bool ReplayRunner::start(std::string trace_path, ReplayConfig config,
                         std::shared_ptr<const OpCostModel> costs) {
  if (running_) return false;
  running_ = true;
  cancel_ = false;
  fraction_ = 0.0;
  {
    std::lock_guard lock(note_mutex_);
    note_ = "starting";
  }
  auto work = [this, trace = std::move(trace_path), cfg = std::move(config),
               ops = std::move(costs)]() -> Outcome {
    const ProgressFn progress = [this](double f, const std::string& note) {
      fraction_ = f;
      std::lock_guard lock(note_mutex_);
      note_ = note;
    };
    try {
      auto result = std::make_shared<const ReplayResult>(fn_(trace, cfg, *ops, progress, &cancel_));
      progress(1.0, "preparing the charts");
      auto views =
          std::make_shared<const ReplayViews>(prepare_replay_views(*result, cfg.hit_window_s));
      return {std::move(result), std::move(views), QString()};
    } catch (const std::exception& e) {
      return {nullptr, nullptr, QString::fromStdString(e.what())};
    } catch (...) {
      return {nullptr, nullptr, tr("the replay failed with an unknown error")};
    }
  };
  watcher_.setFuture(QtConcurrent::run(std::move(work)));
  poll_.start();
  emit progressed(0.0, tr("starting"));
  return true;
}

void ReplayRunner::cancel() { cancel_ = true; }

void ReplayRunner::wait() { watcher_.waitForFinished(); }

void ReplayRunner::poll_progress() {
  QString note;
  {
    std::lock_guard lock(note_mutex_);
    note = QString::fromStdString(note_);
  }
  emit progressed(fraction_.load(), note);
}

void ReplayRunner::on_done() {
  poll_.stop();
  running_ = false;
  const Outcome out = watcher_.result();
  if (!out.result) {
    emit failed(out.error);
    return;
  }
  result_ = out.result;
  views_ = out.views;
  emit progressed(1.0, result_->cancelled ? tr("cancelled") : tr("done"));
  emit finished();
}

}  // namespace kvscope::gui
