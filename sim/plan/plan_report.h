// A capacity plan as a report (sim/report/document.h) and as CSV tables beside it. The CSV holds
// every number the report shows, in full precision (shortest text that reads back to the same
// double), so a reader can recompute or compare anything.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "sim/plan/check_summary.h"
#include "sim/plan/plan.h"
#include "sim/report/document.h"

namespace kvscope {

struct ReportContext {
  std::string command_line;
  std::string generated_at;  // local date and time
  std::string kvscope_version;
  // How latencies were priced: GPU, profile and its date, or the datasheet figures used.
  std::vector<std::pair<std::string, std::string>> cost_details;
  std::optional<CheckSummary> check;
};

struct CsvTable {
  std::string name;  // file name suffix: "<stem>.<name>.csv"
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

// methods, memory, runs, sweep (and fidelity with a check summary).
std::vector<CsvTable> plan_csv_tables(const PlanResult& plan,
                                      const std::optional<CheckSummary>& check);

// RFC 4180: fields with a comma, quote or newline are quoted.
void write_csv(const CsvTable& table, std::ostream& out);

// `csv_files` are the names the report lists as its data.
report::Document plan_document(const PlanResult& plan, const ReportContext& ctx,
                               const std::vector<std::string>& csv_files);

}  // namespace kvscope
