// What kvscope check writes: a per-step CSV, a summary table with the worst steps, the small
// JSON summary `kvscope plan --check` reads (schema: "kvscope check summary" in README.md,
// version 1), a fuller JSON and a predicted-vs-measured figure (SVG).
#pragma once

#include <cstdint>
#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/check/check.h"

namespace kvscope::check {

// `run` holds model, backend, device, date, command, trace, requests (strings/integers) and
// whatever else the caller wants recorded (configuration).
void write_steps_csv(std::ostream& out, const CheckResult& r);

// One step of a steps.csv as written above: what a reader comparing predictions with
// measurements needs (the other columns are kept in the file for people and scripts).
struct StepsCsvRow {
  Method method = Method::baseline;
  int64_t step = 0;  // the step's number in the method's replay
  StepKind kind = StepKind::decode;
  double predicted_ms = 0, measured_ms = 0;
  double rel_error = 0;  // |predicted - measured| / measured, as check computed it
  std::string shape;     // the step's sequences, in words
};

// Reads a steps.csv back, rows in file order. Columns are found by their header names, so
// columns added later do not break it. Throws InputError naming `source`, the line and the
// column of a missing column, a row with the wrong number of fields, or a bad value.
std::vector<StepsCsvRow> read_steps_csv(std::istream& in, const std::string& source);
std::vector<StepsCsvRow> read_steps_csv(const std::string& path);
void print_check_summary(std::ostream& out, const CheckResult& r, const nlohmann::json& run,
                         int worst = 10);
nlohmann::json check_summary_json(const CheckResult& r, const nlohmann::json& run);  // plan's
nlohmann::json check_json(const CheckResult& r, const nlohmann::json& run, int worst = 20);
// Predicted against measured step time, log-log, one marker per step, the y = x line and the
// +-10% band.
void write_check_svg(std::ostream& out, const CheckResult& r, const std::string& title);

// One JSON line per step run with its sequences as scheduled and what was measured, after a
// header line: what `kvscope check --reprice` prices again with another cost model.
void write_steps_jsonl(std::ostream& out, const CheckResult& r, const nlohmann::json& run);

// steps.csv, steps.jsonl, summary.txt, check_summary.json, check.json, pred_vs_meas.svg in
// `dir` (created), each written atomically.
void write_check_outputs(const std::string& dir, const CheckResult& r, const nlohmann::json& run);

}  // namespace kvscope::check
