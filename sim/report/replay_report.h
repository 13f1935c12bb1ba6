// A replay's results as files and text: the summary (JSON, CSV, a printed table), the per-step
// timeline and the per-request table (CSV and JSON). The CLI writes them; the GUI may too.
#pragma once

#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "sim/replay/replay.h"

namespace kvscope {

// What the replay ran with, for the reader of its outputs (model, cost model, configuration).
nlohmann::json replay_run_info(const ReplayConfig& config, const std::string& cost_model);

nlohmann::json summary_json(const MethodResult& m);
// {"run": run_info, "trace": {...}, "cancelled": bool, "methods": [summary_json...]}
nlohmann::json replay_summary_json(const ReplayResult& r, const nlohmann::json& run_info);

void write_summary_csv(std::ostream& out, const ReplayResult& r);   // one row per method
void write_steps_csv(std::ostream& out, const ReplayResult& r);     // one row per step
void write_requests_csv(std::ostream& out, const ReplayResult& r);  // one row per request
// JSON tables: {"<method>": {"columns": [...], "rows": [[...], ...]}, ...}, the CSV's columns.
void write_steps_json(std::ostream& out, const ReplayResult& r);
void write_requests_json(std::ostream& out, const ReplayResult& r);
void write_hit_rate_csv(std::ostream& out, const ReplayResult& r);  // p per time window

// Writes summary.json, summary.csv, hit_rate.csv, and, when the result holds them,
// steps.csv/.json and requests.csv/.json into dir (created if missing), each atomically.
void write_replay_outputs(const std::string& dir, const ReplayResult& r,
                          const nlohmann::json& run_info);

// The summary as the CLI prints it.
void print_replay_summary(std::ostream& out, const ReplayResult& r, const nlohmann::json& run_info);

}  // namespace kvscope
