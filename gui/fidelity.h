// The Fidelity view's data: a kvscope check result, read by the library (load_check_summary for
// the summary, check::read_steps_csv for the steps beside it), and the tables that show it. The
// tables only place the library's numbers in cells and mark them against the targets the
// library states (kTargetMedianRelError, kTargetP90RelError).
#pragma once

#include <vector>

#include <QString>

#include "gui/file_kind.h"
#include "sim/check/check_report.h"
#include "sim/plan/check_summary.h"

namespace kvscope::gui {

class NumberTable;

struct CheckOutput {
  CheckFiles files;
  CheckSummary summary;
  std::vector<check::StepsCsvRow> steps;  // empty when no steps.csv lies beside the summary
};

// Reads what `files` names. Throws InputError naming the file, the line and the field of a bad
// summary or a bad steps.csv row.
CheckOutput load_check_output(const CheckFiles& files);

// What was checked, where, when and how; where it was read from; whether the targets were met.
QString check_header_text(const CheckOutput& c);

// Latency: one row per method and step kind (the summary's order): steps, median, p90 and max
// of |predicted - measured| / measured (raw values the summary's fractions, shown as %), and
// whether median and p90 meet the targets (shown "met" or "missed", coloured; raw 1 or 0; a row
// of 0 steps shows "no steps", raw NaN).
void show_latency_fidelity(NumberTable* t, const CheckSummary& s);
// Memory: one row per method: predicted and allocated KV bytes and their difference.
void show_memory_fidelity(NumberTable* t, const CheckSummary& s);

// Columns of the latency table.
namespace latency_col {
constexpr int steps = 0, median = 1, p90 = 2, max = 3, median_met = 4, p90_met = 5;
}
// Columns of the memory table.
namespace memory_col {
constexpr int predicted = 0, allocated = 1, difference = 2;
}

}  // namespace kvscope::gui
