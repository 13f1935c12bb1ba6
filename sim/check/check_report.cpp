#include "sim/check/check_report.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iterator>

#include "model/error.h"
#include "sim/io/atomic_file.h"
#include "sim/report/svg_chart.h"

namespace kvscope::check {

namespace {

std::string csv_quote(const std::string& s) {
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string pct(double rel) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100.0 * rel);
  return b;
}

std::string mib(int64_t bytes) {
  char b[48];
  std::snprintf(b, sizeof b, "%.2f MiB", static_cast<double>(bytes) / 1048576.0);
  return b;
}

std::vector<const CheckStep*> worst_steps(const CheckResult& r, int n) {
  std::vector<const CheckStep*> w;
  for (const auto& s : r.steps) w.push_back(&s);
  std::sort(w.begin(), w.end(),
            [](const CheckStep* a, const CheckStep* b) { return a->rel_error() > b->rel_error(); });
  if (static_cast<int>(w.size()) > n) w.resize(static_cast<size_t>(n));
  return w;
}

nlohmann::json step_json(const CheckStep& s) {
  return {{"method", method_name(s.method)},
          {"step", s.index},
          {"kind", step_kind_name(s.kind)},
          {"prefill_seqs", s.prefill_seqs},
          {"decode_seqs", s.decode_seqs},
          {"prefill_tokens", s.prefill_tokens},
          {"max_kv", s.max_kv},
          {"predicted_ms", s.predicted_ms},
          {"measured_ms", s.measured_ms},
          {"rel_error", s.rel_error()},
          {"shape", s.shape}};
}

}  // namespace

void write_steps_csv(std::ostream& out, const CheckResult& r) {
  out << "method,step,kind,prefill_seqs,decode_seqs,prefill_tokens,decode_tokens,ccv_hits,max_kv,"
         "mean_decode_kv,predicted_ms,measured_ms,rel_error,pred_attention_ms,pred_dense_ms,"
         "pred_ccv_ms,pred_other_ms,predicted_kv_bytes,allocated_kv_bytes,device_used_bytes,"
         "reps,meas_attention_ms,meas_dense_ms,meas_ccv_ms,meas_other_ms,shape\n";
  out << std::setprecision(9);
  for (const auto& s : r.steps)
    out << method_name(s.method) << "," << s.index << "," << step_kind_name(s.kind) << ","
        << s.prefill_seqs << "," << s.decode_seqs << "," << s.prefill_tokens << ","
        << s.decode_tokens << "," << s.hits << "," << s.max_kv << "," << s.mean_decode_kv << ","
        << s.predicted_ms << "," << s.measured_ms << "," << s.rel_error() << ","
        << s.pred_attention_ms << "," << s.pred_dense_ms << "," << s.pred_ccv_ms << ","
        << s.pred_other_ms << "," << s.predicted_kv_bytes << "," << s.allocated_kv_bytes << ","
        << s.device_used_bytes << "," << s.reps << "," << s.meas_attention_ms << ","
        << s.meas_dense_ms << "," << s.meas_ccv_ms << "," << s.meas_other_ms << ","
        << csv_quote(s.shape) << "\n";
}

namespace {

// Splits one CSV line into fields: commas separate, double quotes enclose a field that may hold
// commas, "" inside quotes is one quote. Returns false for an unterminated quote.
bool split_csv_line(std::string_view line, std::vector<std::string>& fields) {
  fields.assign(1, std::string());
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c != '"') {
        fields.back() += c;
      } else if (i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return !quoted;
}

}  // namespace

std::vector<StepsCsvRow> read_steps_csv(std::istream& in, const std::string& source) {
  std::string line;
  int64_t line_no = 0;
  auto next_line = [&] {
    if (!std::getline(in, line)) return false;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
  };
  if (!next_line()) throw InputError(source, 1, "", "empty: expected the steps.csv header");
  std::vector<std::string> fields;
  if (!split_csv_line(line, fields)) throw InputError(source, 1, "", "unterminated quote");
  const std::vector<std::string> header = fields;
  auto column = [&](const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end())
      throw InputError(source, 1, name, "missing column: not a steps.csv written by kvscope check");
    return static_cast<size_t>(it - header.begin());
  };
  const size_t c_method = column("method"), c_step = column("step"), c_kind = column("kind"),
               c_pred = column("predicted_ms"), c_meas = column("measured_ms"),
               c_err = column("rel_error"), c_shape = column("shape");

  std::vector<StepsCsvRow> rows;
  while (next_line()) {
    if (line.empty()) continue;
    if (!split_csv_line(line, fields)) throw InputError(source, line_no, "", "unterminated quote");
    if (fields.size() != header.size())
      throw InputError(source, line_no, "",
                       "expected " + std::to_string(header.size()) + " fields, got " +
                           std::to_string(fields.size()));
    auto fail = [&](size_t col, const std::string& reason) {
      throw InputError(source, line_no, header[col], reason + ", got '" + fields[col] + "'");
    };
    StepsCsvRow r;
    const auto method = parse_method(fields[c_method]);
    if (!method) fail(c_method, "expected baseline, fourier, ccv or fourier_ccv");
    r.method = *method;
    {
      const std::string& f = fields[c_step];
      const auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), r.step);
      if (f.empty() || ec != std::errc() || end != f.data() + f.size() || r.step < 0)
        fail(c_step, "expected a step number (a whole number >= 0)");
    }
    const std::string& kind = fields[c_kind];
    if (kind == "prefill")
      r.kind = StepKind::prefill;
    else if (kind == "decode")
      r.kind = StepKind::decode;
    else if (kind == "mixed")
      r.kind = StepKind::mixed;
    else
      fail(c_kind, "expected prefill, decode or mixed");
    auto time = [&](size_t col) {
      const std::string& f = fields[col];
      double v = 0;
      const auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
      if (f.empty() || ec != std::errc() || end != f.data() + f.size() || !std::isfinite(v) ||
          v < 0)
        fail(col, "expected a finite number >= 0");
      return v;
    };
    r.predicted_ms = time(c_pred);
    r.measured_ms = time(c_meas);
    r.rel_error = time(c_err);
    r.shape = fields[c_shape];
    rows.push_back(std::move(r));
  }
  if (in.bad()) throw InputError(source, line_no, "", "read error");
  return rows;
}

std::vector<StepsCsvRow> read_steps_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "", "cannot open the steps file");
  return read_steps_csv(in, path);
}

void print_check_summary(std::ostream& out, const CheckResult& r, const nlohmann::json& run,
                         int worst) {
  out << "trace " << r.trace.path << ": first " << r.trace.requests << " requests\n";
  out << "model " << run.value("model", "") << " on " << r.device.name << " (" << r.device.backend
      << ", " << r.device.driver << ")\n";
  out << "predictions: " << r.cost_model << "\n";
  out << "replay GPU memory " << mib(r.gpu_memory_bytes) << "; steps scheduled:";
  for (size_t i = 0; i < r.replay_steps.size(); ++i) out << (i ? ", " : " ") << r.replay_steps[i];
  out << "; steps run: " << r.steps.size() << " in " << std::fixed << std::setprecision(1)
      << r.wall_s << " s\n";
  if (r.failed_steps > 0)
    out << "FAILED steps (left out): " << r.failed_steps << "; first: " << r.first_failure << "\n";
  out << "\n";

  out << "step latency, |predicted - measured| / measured\n";
  out << std::left << std::setw(13) << "method" << std::setw(9) << "kind" << std::right
      << std::setw(7) << "steps" << std::setw(13) << "pred sum ms" << std::setw(13) << "meas sum ms"
      << std::setw(9) << "bias" << std::setw(9) << "median" << std::setw(9) << "p90" << std::setw(9)
      << "max"
      << "\n";
  for (const auto& e : r.latency)
    out << std::left << std::setw(13) << method_name(e.method) << std::setw(9) << e.kind
        << std::right << std::setw(7) << e.steps << std::setw(13) << std::setprecision(1)
        << e.predicted_ms << std::setw(13) << e.measured_ms << std::setw(9) << pct(e.mean_signed)
        << std::setw(9) << pct(e.median) << std::setw(9) << pct(e.p90) << std::setw(9) << pct(e.max)
        << "\n";
  out << "(bias: mean of (predicted - measured) / measured; sums over the steps run)\n\n";

  out << "KV memory, predicted (model/memory.h, the replay's KV pool) vs allocated (backend "
         "allocated_bytes(), caches laid out as the kernels need them)\n";
  out << std::left << std::setw(13) << "method" << std::right << std::setw(7) << "steps"
      << std::setw(8) << "equal" << std::setw(14) << "max |diff| B" << std::setw(20)
      << "peak predicted" << std::setw(20) << "peak allocated" << std::setw(18) << "weights pred"
      << std::setw(18) << "weights alloc" << std::setw(18) << "device used"
      << "\n";
  for (const auto& m : r.memory)
    out << std::left << std::setw(13) << method_name(m.method) << std::right << std::setw(7)
        << m.steps << std::setw(8) << m.equal_steps << std::setw(14) << m.max_abs_diff_bytes
        << std::setw(20) << m.peak_predicted_bytes << std::setw(20) << m.peak_allocated_bytes
        << std::setw(18) << m.weights_predicted_bytes << std::setw(18) << m.weights_allocated_bytes
        << std::setw(18)
        << (m.device_peak_used_bytes >= 0 ? mib(m.device_peak_used_bytes) : std::string("-"))
        << "\n";
  out << "(device used: the device's total - free memory at the fullest step, all allocations "
         "and the backend's workspaces)\n\n";

  out << "worst steps\n";
  for (const CheckStep* s : worst_steps(r, worst))
    out << "  " << std::left << std::setw(12) << method_name(s->method) << std::right << " step "
        << std::setw(6) << s->index << "  " << std::left << std::setw(8) << step_kind_name(s->kind)
        << std::right << " pred " << std::setw(10) << std::setprecision(3) << s->predicted_ms
        << " ms  meas " << std::setw(10) << s->measured_ms << " ms  " << std::setw(7)
        << pct(s->rel_error()) << "  " << s->shape << "\n";
  out << std::defaultfloat;
}

nlohmann::json check_summary_json(const CheckResult& r, const nlohmann::json& run) {
  nlohmann::json j;
  j["kvscope_check"] = 1;
  for (const char* k : {"model", "backend", "device", "date", "command", "trace"})
    j[k] = run.value(k, std::string());
  j["requests"] = r.trace.requests;
  j["latency"] = nlohmann::json::array();
  for (const auto& e : r.latency)
    j["latency"].push_back({{"method", method_name(e.method)},
                            {"step_kind", e.kind},
                            {"steps", e.steps},
                            {"median_rel_error", e.median},
                            {"p90_rel_error", e.p90},
                            {"max_rel_error", e.max}});
  j["memory"] = nlohmann::json::array();
  for (const auto& m : r.memory)
    j["memory"].push_back({{"method", method_name(m.method)},
                           {"predicted_bytes", m.peak_predicted_bytes},
                           {"allocated_bytes", m.peak_allocated_bytes}});
  return j;
}

nlohmann::json check_json(const CheckResult& r, const nlohmann::json& run, int worst) {
  nlohmann::json j = check_summary_json(r, run);
  j["run"] = run;
  j["cost_model"] = r.cost_model;
  j["device_info"] = {{"backend", r.device.backend},
                      {"name", r.device.name},
                      {"multiprocessors", r.device.multiprocessors},
                      {"memory_bytes", r.device.memory_bytes},
                      {"driver", r.device.driver}};
  j["gpu_memory_bytes"] = r.gpu_memory_bytes;
  j["replay_steps"] = r.replay_steps;
  j["steps_run"] = r.steps.size();
  j["failed_steps"] = r.failed_steps;
  j["first_failure"] = r.first_failure;
  j["wall_s"] = r.wall_s;
  for (size_t i = 0; i < r.latency.size(); ++i) {
    j["latency"][i]["predicted_sum_ms"] = r.latency[i].predicted_ms;
    j["latency"][i]["measured_sum_ms"] = r.latency[i].measured_ms;
    j["latency"][i]["mean_signed_rel_error"] = r.latency[i].mean_signed;
  }
  for (size_t i = 0; i < r.memory.size(); ++i) {
    const MemoryStats& m = r.memory[i];
    j["memory"][i]["steps"] = m.steps;
    j["memory"][i]["equal_steps"] = m.equal_steps;
    j["memory"][i]["max_abs_diff_bytes"] = m.max_abs_diff_bytes;
    j["memory"][i]["weights_predicted_bytes"] = m.weights_predicted_bytes;
    j["memory"][i]["weights_allocated_bytes"] = m.weights_allocated_bytes;
    j["memory"][i]["device_peak_used_bytes"] = m.device_peak_used_bytes;
  }
  j["worst_steps"] = nlohmann::json::array();
  for (const CheckStep* s : worst_steps(r, worst)) j["worst_steps"].push_back(step_json(*s));
  return j;
}

void write_check_svg(std::ostream& out, const CheckResult& r, const std::string& title) {
  using report::LegendEntry;
  using report::Marker;
  constexpr StepKind kinds[] = {StepKind::prefill, StepKind::decode, StepKind::mixed};
  constexpr const char* kind_colour[] = {"#1f77b4", "#2ca02c", "#ff7f0e"};  // in kinds' order
  // One shape per method, in the order of all_methods().
  constexpr Marker method_marker[] = {Marker::circle, Marker::square, Marker::triangle,
                                      Marker::diamond};
  report::ScatterChart c;
  c.title = title;
  c.x_label = "measured step time (ms)";
  c.y_label = "predicted step time (ms)";
  c.log_x = c.log_y = c.same_range = true;
  // y = x and the +-10% band: |predicted - measured| / measured = 10% at 1.1x and 0.9x.
  c.lines = {{1.0, false}, {1.1, true}, {0.9, true}};
  // Colour by step kind, shape by method.
  for (size_t k = 0; k < std::size(kinds); ++k)
    c.legend.push_back({LegendEntry::Key::swatch, Marker::circle, kind_colour[k],
                        std::string(step_kind_name(kinds[k])), ""});
  const auto& methods = all_methods();
  for (size_t m = 0; m < methods.size(); ++m) {
    const Marker shape = method_marker[m % std::size(method_marker)];
    bool ran = false;
    for (size_t k = 0; k < std::size(kinds); ++k) {
      report::ScatterSeries s;
      s.colour = kind_colour[k];
      s.marker = shape;
      for (const auto& step : r.steps)
        if (step.method == methods[m] && step.kind == kinds[k]) {
          s.x.push_back(step.measured_ms);
          s.y.push_back(step.predicted_ms);
        }
      ran = ran || !s.x.empty();
      if (!s.x.empty()) c.series.push_back(std::move(s));
    }
    if (!ran) continue;
    std::string errors;
    for (const auto& e : r.latency)
      if (e.method == methods[m] && e.kind == "all")
        errors = "median " + pct(e.median) + ", p90 " + pct(e.p90);
    c.legend.push_back(
        {LegendEntry::Key::marker, shape, "", std::string(method_name(methods[m])), errors});
  }
  c.legend.push_back({LegendEntry::Key::line, Marker::circle, "", "predicted = measured", ""});
  c.legend.push_back({LegendEntry::Key::dashed_line, Marker::circle, "#888888", "+-10%", ""});
  out << report::svg_scatter_chart(c);
}

void write_steps_jsonl(std::ostream& out, const CheckResult& r, const nlohmann::json& run) {
  nlohmann::json weights = nlohmann::json::array();
  for (const auto& m : r.memory)
    weights.push_back({{"method", method_name(m.method)},
                       {"predicted_bytes", m.weights_predicted_bytes},
                       {"allocated_bytes", m.weights_allocated_bytes}});
  out << nlohmann::json{{"header",
                         {{"model", run.value("model", std::string())},
                          {"trace", r.trace.path},
                          {"requests", r.trace.requests},
                          {"device", r.device.name},
                          {"backend", r.device.backend},
                          {"driver", r.device.driver},
                          {"gpu_memory_bytes", r.gpu_memory_bytes},
                          {"replay_steps", r.replay_steps},
                          {"weights", weights},
                          {"run", run}}}}
             .dump()
      << "\n";
  for (const auto& s : r.steps) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& it : s.items)
      items.push_back({it.request, it.q_tokens, it.kv_len, it.cache_tokens, it.prefill ? 1 : 0,
                       it.ccv_hit ? 1 : 0, it.emits ? 1 : 0});
    out << nlohmann::json{{"method", method_name(s.method)},
                          {"step", s.index},
                          {"predicted_ms", s.predicted_ms},
                          {"measured_ms", s.measured_ms},
                          {"measured_parts_ms",
                           {s.meas_attention_ms, s.meas_dense_ms, s.meas_ccv_ms, s.meas_other_ms}},
                          {"reps", s.reps},
                          {"predicted_kv_bytes", s.predicted_kv_bytes},
                          {"allocated_kv_bytes", s.allocated_kv_bytes},
                          {"device_used_bytes", s.device_used_bytes},
                          {"items", items}}
               .dump()
        << "\n";
  }
}

void write_check_outputs(const std::string& dir, const CheckResult& r, const nlohmann::json& run) {
  std::filesystem::create_directories(dir);
  write_file_atomically(dir + "/steps.csv", [&](std::ostream& o) { write_steps_csv(o, r); });
  write_file_atomically(dir + "/steps.jsonl",
                        [&](std::ostream& o) { write_steps_jsonl(o, r, run); });
  write_file_atomically(dir + "/summary.txt",
                        [&](std::ostream& o) { print_check_summary(o, r, run, 20); });
  write_file_atomically(dir + "/check_summary.json",
                        [&](std::ostream& o) { o << check_summary_json(r, run).dump(2) << "\n"; });
  write_file_atomically(dir + "/check.json",
                        [&](std::ostream& o) { o << check_json(r, run).dump(2) << "\n"; });
  const std::string title = "kvscope check: " + run.value("model", std::string()) + " on " +
                            r.device.name + ", " + std::to_string(r.steps.size()) + " steps";
  write_file_atomically(dir + "/pred_vs_meas.svg",
                        [&](std::ostream& o) { write_check_svg(o, r, title); });
}

}  // namespace kvscope::check
