#include "sim/cli/commands.h"

namespace kvscope::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> all = {
      {"model", "analytic cost and memory of each method over context lengths", run_model},
      {"calibrate", "measure the kernels on cpu or cuda and write a calibration profile",
       run_calibrate},
      {"replay", "replay a serving trace: latency, memory and CCV hit rate of each method",
       run_replay},
      {"plan", "capacity plan: requests/s, context and batch per GPU for each method (report)",
       run_plan},
      {"check", "run the replay's steps on the real kernels and report each prediction's error",
       run_check},
  };
  return all;
}

}  // namespace kvscope::cli
