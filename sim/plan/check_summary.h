// The fidelity figures a capacity plan quotes from `kvscope check`: a small JSON file whose
// schema is documented in README.md ("kvscope check summary"). kvscope check writes it; any
// tool can, as long as it follows the schema.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kvscope {

// Relative error |predicted - measured| / measured of step latency, over one method's steps of
// one kind.
struct LatencyFidelity {
  std::string method;     // baseline | fourier | ccv | fourier_ccv
  std::string step_kind;  // prefill | decode | mixed | all
  int64_t steps = 0;
  double median_rel_error = 0, p90_rel_error = 0, max_rel_error = 0;
};

struct MemoryFidelity {
  std::string method;
  int64_t predicted_bytes = 0, allocated_bytes = 0;
};

struct CheckSummary {
  std::string path;  // where it was read from
  std::string model, backend, device, date, command, trace;
  int64_t requests = 0;
  std::vector<LatencyFidelity> latency;
  std::vector<MemoryFidelity> memory;
};

inline constexpr int kCheckSummaryVersion = 1;

// The step-time fidelity kvscope's predictions aim for (sim/FIDELITY.md, and the plan report's
// Fidelity section): per method and step kind, median error <= 5% and p90 error <= 10%.
inline constexpr double kTargetMedianRelError = 0.05;
inline constexpr double kTargetP90RelError = 0.10;
inline bool meets_median_target(const LatencyFidelity& f) {
  return f.median_rel_error <= kTargetMedianRelError;
}
inline bool meets_p90_target(const LatencyFidelity& f) {
  return f.p90_rel_error <= kTargetP90RelError;
}

// Reads and validates a check summary. Throws InputError naming the file, the line (for JSON
// syntax errors) and the field (e.g. "latency[2].p90_rel_error") of anything wrong.
CheckSummary load_check_summary(const std::string& path);

}  // namespace kvscope
