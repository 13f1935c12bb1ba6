#include "sim/plan/check_summary.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "model/error.h"
#include "model/methods.h"

namespace kvscope {

namespace {

using nlohmann::json;

struct Reader {
  const std::string& path;

  const json& field(const json& obj, const std::string& name, const std::string& where) const {
    const std::string f = where.empty() ? name : where + "." + name;
    if (!obj.is_object())
      throw InputError(path, where.empty() ? "(top level)" : where, "expected an object");
    const auto it = obj.find(name);
    if (it == obj.end()) throw InputError(path, f, "missing");
    return *it;
  }
  std::string text(const json& obj, const std::string& name, const std::string& where) const {
    const json& v = field(obj, name, where);
    if (!v.is_string())
      throw InputError(path, where.empty() ? name : where + "." + name, "expected a string");
    return v.get<std::string>();
  }
  int64_t count(const json& obj, const std::string& name, const std::string& where) const {
    const json& v = field(obj, name, where);
    const std::string f = where.empty() ? name : where + "." + name;
    if (!v.is_number_integer()) throw InputError(path, f, "expected a whole number");
    const int64_t n = v.get<int64_t>();
    if (n < 0) throw InputError(path, f, "must not be negative, got " + std::to_string(n));
    return n;
  }
  double rel_error(const json& obj, const std::string& name, const std::string& where) const {
    const json& v = field(obj, name, where);
    const std::string f = where + "." + name;
    if (!v.is_number())
      throw InputError(path, f, "expected a number (a relative error, 0.05 = 5%)");
    const double d = v.get<double>();
    if (!std::isfinite(d) || d < 0) throw InputError(path, f, "must be a finite number >= 0");
    return d;
  }
  std::string method(const json& obj, const std::string& where) const {
    const std::string m = text(obj, "method", where);
    const auto parsed = parse_method(m);
    if (!parsed)
      throw InputError(path, where + ".method",
                       "unknown method '" + m + "' (baseline, fourier, ccv, fourier_ccv)");
    return std::string(method_name(*parsed));
  }
};

}  // namespace

CheckSummary load_check_summary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "", "cannot open the check summary");
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string textual = buf.str();
  json j;
  try {
    j = json::parse(textual);
  } catch (const json::parse_error& e) {
    const size_t upto = std::min(e.byte, textual.size());
    const int64_t line =
        1 + std::count(textual.begin(), textual.begin() + static_cast<long>(upto), '\n');
    throw InputError(path, line, "", std::string("not valid JSON: ") + e.what());
  }
  const Reader r{path};
  const json& version = r.field(j, "kvscope_check", "");
  if (!version.is_number_integer() || version.get<int64_t>() != kCheckSummaryVersion)
    throw InputError(path, "kvscope_check",
                     "unsupported version (this kvscope reads version " +
                         std::to_string(kCheckSummaryVersion) + ")");
  CheckSummary s;
  s.path = path;
  s.model = r.text(j, "model", "");
  s.backend = r.text(j, "backend", "");
  s.device = r.text(j, "device", "");
  s.date = r.text(j, "date", "");
  s.command = r.text(j, "command", "");
  s.trace = r.text(j, "trace", "");
  s.requests = r.count(j, "requests", "");

  const json& lat = r.field(j, "latency", "");
  if (!lat.is_array()) throw InputError(path, "latency", "expected an array");
  for (size_t i = 0; i < lat.size(); ++i) {
    const std::string w = "latency[" + std::to_string(i) + "]";
    LatencyFidelity f;
    f.method = r.method(lat[i], w);
    f.step_kind = r.text(lat[i], "step_kind", w);
    if (f.step_kind != "prefill" && f.step_kind != "decode" && f.step_kind != "mixed" &&
        f.step_kind != "all")
      throw InputError(path, w + ".step_kind",
                       "expected prefill, decode, mixed or all, got '" + f.step_kind + "'");
    f.steps = r.count(lat[i], "steps", w);
    f.median_rel_error = r.rel_error(lat[i], "median_rel_error", w);
    f.p90_rel_error = r.rel_error(lat[i], "p90_rel_error", w);
    f.max_rel_error = r.rel_error(lat[i], "max_rel_error", w);
    if (!(f.median_rel_error <= f.p90_rel_error && f.p90_rel_error <= f.max_rel_error))
      throw InputError(path, w, "errors must satisfy median <= p90 <= max");
    s.latency.push_back(f);
  }
  if (j.contains("memory")) {
    const json& mem = j["memory"];
    if (!mem.is_array()) throw InputError(path, "memory", "expected an array");
    for (size_t i = 0; i < mem.size(); ++i) {
      const std::string w = "memory[" + std::to_string(i) + "]";
      MemoryFidelity m;
      m.method = r.method(mem[i], w);
      m.predicted_bytes = r.count(mem[i], "predicted_bytes", w);
      m.allocated_bytes = r.count(mem[i], "allocated_bytes", w);
      s.memory.push_back(m);
    }
  }
  return s;
}

}  // namespace kvscope
