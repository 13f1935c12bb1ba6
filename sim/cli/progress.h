// Progress of a long subcommand on stderr, shown once it has run for a second: one line
// rewritten in place on a terminal, a line every few seconds otherwise (logs stay readable).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

namespace kvscope::cli {

class StderrProgress {
 public:
  // `label` starts each line ("kvscope replay"); with `show_eta` the time left is estimated
  // from the fraction done.
  StderrProgress(bool enabled, std::string label, bool show_eta)
      : enabled_(enabled), tty_(::isatty(2) != 0), show_eta_(show_eta), label_(std::move(label)) {}
  ~StderrProgress() {
    if (shown_ && tty_) std::cerr << "\n";
  }
  StderrProgress(const StderrProgress&) = delete;
  StderrProgress& operator=(const StderrProgress&) = delete;

  void operator()(double fraction, const std::string& note) {
    if (!enabled_) return;
    const double t = seconds();
    if (t < 1.0 || (shown_ && t - last_ < (tty_ ? 0.25 : 5.0))) return;
    last_ = t;
    shown_ = true;
    char eta[48] = "";
    if (show_eta_ && fraction > 0.03)
      std::snprintf(eta, sizeof eta, ", ~%.0f s left", t * (1.0 - fraction) / fraction);
    char line[320];
    std::snprintf(line, sizeof line, "%s: %3.0f%%  %s  (%.0f s%s)", label_.c_str(),
                  100.0 * fraction, note.c_str(), t, eta);
    std::cerr << (tty_ ? "\r\033[K" : "") << line << (tty_ ? "" : "\n") << std::flush;
  }

 private:
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  bool enabled_, tty_, show_eta_;
  std::string label_;
  bool shown_ = false;
  double last_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace kvscope::cli
