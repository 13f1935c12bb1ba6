#include "gui/session.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "model/error.h"
#include "model/hardware.h"
#include "sim/cli/options.h"
#include "sim/io/atomic_file.h"
#include "sim/io/number_text.h"
#include "sim/trace/trace.h"

namespace kvscope::gui {

namespace {

// Shortest text that reads back as the same double, so a command line reproduces the view exactly.
std::string num(double v) { return exact_number(v); }
std::string num(int64_t v) { return std::to_string(v); }

std::string join_lengths(const std::vector<int64_t>& ns) {
  std::string out;
  for (int64_t n : ns) out += (out.empty() ? "" : ",") + std::to_string(n);
  return out;
}

std::string join_methods(const std::vector<Method>& ms) {
  std::string out;
  for (Method m : ms) out += (out.empty() ? "" : ",") + std::string(method_name(m));
  return out;
}

constexpr int kSessionVersion = 1;

}  // namespace

std::string_view view_name(View v) {
  switch (v) {
    case View::analytic:
      return "analytic";
    case View::replay:
      return "replay";
    case View::summary:
      return "summary";
    case View::fidelity:
      return "fidelity";
  }
  return "analytic";
}

std::vector<int64_t> context_lengths(const Session& s) {
  std::vector<int64_t> ns;
  const int64_t steps = std::max<int64_t>(1, s.points_per_doubling);
  for (int64_t k = 0;; ++k) {
    const double n = static_cast<double>(s.n_min_tokens) *
                     std::exp2(static_cast<double>(k) / static_cast<double>(steps));
    const auto rounded = static_cast<int64_t>(std::llround(n));
    if (rounded >= s.n_max_tokens) break;
    if (ns.empty() || rounded > ns.back()) ns.push_back(rounded);
  }
  if (ns.empty() || ns.back() < s.n_max_tokens) ns.push_back(s.n_max_tokens);
  return ns;
}

Args method_args(const Session& s) {
  Args a = {"--gpu", s.gpu};
  if (!s.profile_path.empty()) a.insert(a.end(), {"--profile", s.profile_path});
  a.insert(a.end(), {"--fourier-m", num(s.fourier_m)});
  if (!s.fourier_dims.empty()) a.insert(a.end(), {"--fourier-dims", s.fourier_dims});
  a.insert(a.end(), {"--fourier-sink", num(s.fourier_sink_tokens), "--fourier-window",
                     num(s.fourier_window_tokens)});
  if (s.d2 > 0) a.insert(a.end(), {"--d2", num(s.d2)});
  a.insert(a.end(), {"--l-eff", num(s.l_eff), "--threshold", num(s.threshold), "--ccv-budget",
                     num(s.ccv_budget_gib) + "GiB", "--ccv-eviction",
                     std::string(eviction_name(s.ccv_eviction))});
  if (s.ccv_eviction == Eviction::ttl) a.insert(a.end(), {"--ccv-ttl", num(s.ccv_ttl_s)});
  return a;
}

Args model_command_args(const Session& s) {
  Args a = {"--model", s.model, "--n", join_lengths(context_lengths(s)), "--p", num(s.p)};
  const Args m = method_args(s);
  a.insert(a.end(), m.begin(), m.end());
  return a;
}

Args replay_command_args(const Session& s) {
  Args a = {s.trace_path.empty() ? std::string("TRACE") : s.trace_path, "--model", s.model};
  if (s.trace_format != "auto") a.insert(a.end(), {"--format", s.trace_format});
  a.insert(a.end(), {"--method", join_methods(s.methods)});
  if (s.gpu_memory_gib > 0) a.insert(a.end(), {"--gpu-mem", num(s.gpu_memory_gib) + "GiB"});
  a.insert(a.end(),
           {"--max-batch", num(s.max_batch), "--token-budget", num(s.token_budget_tokens)});
  if (!s.chunked_prefill) a.push_back("--no-chunked-prefill");
  if (s.rate_scale != 1.0) a.insert(a.end(), {"--rate-scale", num(s.rate_scale)});
  if (s.max_requests >= 0) a.insert(a.end(), {"--max-requests", num(s.max_requests)});
  if (s.skip_bad_records) a.insert(a.end(), {"--on-bad-record", "skip"});
  const Args m = method_args(s);
  a.insert(a.end(), m.begin(), m.end());
  return a;
}

std::string shell_quote(const std::string& arg) {
  const bool plain = !arg.empty() && std::all_of(arg.begin(), arg.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("-_./,:=+@%").find(c) != std::string_view::npos;
  });
  if (plain) return arg;
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string command_line(const Session& s, const std::string& program) {
  const bool replay = s.view == View::replay || s.view == View::summary;
  std::string out = shell_quote(program) + (replay ? " replay" : " model");
  for (const std::string& a : replay ? replay_command_args(s) : model_command_args(s))
    out += " " + shell_quote(a);
  return out;
}

Resolved resolve(const Session& s) {
  Resolved r;
  r.shape = load_model(s.model);
  cli::po::options_description desc;
  cli::add_method_options(desc);
  cli::add_cost_options(desc);
  cli::po::variables_map vm;
  cli::parse_or_help(method_args(s), desc, vm, "");
  r.config = cli::method_config_from(vm, r.shape);
  r.ops = cli::cost_model_from(vm);
  return r;
}

ReplayConfig replay_config(const Session& s, const Resolved& r) {
  ReplayConfig c;
  c.model = r.shape;
  c.method_config = r.config;
  c.methods = s.methods;
  c.scheduler.max_batch = s.max_batch;
  c.scheduler.token_budget = s.token_budget_tokens;
  c.scheduler.chunked_prefill = s.chunked_prefill;
  // As `kvscope replay` reads --gpu-mem, the profile's device and the --gpu preset.
  const std::string gpu_mem = num(s.gpu_memory_gib) + "GiB";
  c.gpu_memory_bytes =
      cli::gpu_memory_from(s.gpu_memory_gib > 0 ? &gpu_mem : nullptr, s.gpu, *r.ops);
  c.rate_scale = s.rate_scale;
  const auto format = parse_trace_format(s.trace_format);
  if (!format) throw cli::UsageError("--format: expected " + trace_format_choices());
  c.format = *format;
  c.bad_records = s.skip_bad_records ? BadRecordPolicy::skip : BadRecordPolicy::stop;
  c.max_requests = s.max_requests;
  c.keep_requests = false;  // no view shows them; steps feed the timelines
  return c;
}

// ---- Session files ----------------------------------------------------------------------------

nlohmann::json session_to_json(const Session& s) {
  nlohmann::json methods = nlohmann::json::array();
  for (Method m : s.methods) methods.push_back(std::string(method_name(m)));
  return {
      {"kvscope_session", kSessionVersion},
      {"trace", s.trace_path},
      {"trace_format", s.trace_format},
      {"model", s.model},
      {"profile", s.profile_path},
      {"gpu", s.gpu},
      {"check", s.check_path},
      {"analytic",
       {{"n_min_tokens", s.n_min_tokens},
        {"n_max_tokens", s.n_max_tokens},
        {"points_per_doubling", s.points_per_doubling},
        {"p", s.p}}},
      {"methods", methods},
      {"fourier",
       {{"m", s.fourier_m},
        {"dims", s.fourier_dims},
        {"sink_tokens", s.fourier_sink_tokens},
        {"window_tokens", s.fourier_window_tokens}}},
      {"ccv",
       {{"d2", s.d2},
        {"l_eff", s.l_eff},
        {"threshold", s.threshold},
        {"budget_gib", s.ccv_budget_gib},
        {"eviction", std::string(eviction_name(s.ccv_eviction))},
        {"ttl_s", s.ccv_ttl_s}}},
      {"replay",
       {{"gpu_memory_gib", s.gpu_memory_gib},
        {"max_batch", s.max_batch},
        {"token_budget_tokens", s.token_budget_tokens},
        {"chunked_prefill", s.chunked_prefill},
        {"rate_scale", s.rate_scale},
        {"max_requests", s.max_requests},
        {"skip_bad_records", s.skip_bad_records}}},
      {"view", std::string(view_name(s.view))},
  };
}

namespace {

// Reads optional members of one JSON object with type checks that name the offending key.
class Reader {
 public:
  Reader(const nlohmann::json& obj, std::string source, std::string prefix)
      : obj_(obj), source_(std::move(source)), prefix_(std::move(prefix)) {
    if (!obj_.is_object()) fail("", "expected an object");
  }
  [[noreturn]] void fail(const std::string& key, const std::string& reason) const {
    throw InputError(source_, prefix_ + key, reason);
  }
  const nlohmann::json* find(const std::string& key) const {
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  void str(const std::string& key, std::string& out) const {
    if (auto* v = find(key)) {
      if (!v->is_string()) fail(key, "expected a string");
      out = v->get<std::string>();
    }
  }
  void integer(const std::string& key, int64_t& out, int64_t min) const {
    if (auto* v = find(key)) {
      if (!v->is_number_integer()) fail(key, "expected a whole number");
      const auto x = v->get<int64_t>();
      if (x < min) fail(key, "must be at least " + std::to_string(min));
      out = x;
    }
  }
  void real(const std::string& key, double& out, double min, double max) const {
    if (auto* v = find(key)) {
      if (!v->is_number()) fail(key, "expected a number");
      const auto x = v->get<double>();
      if (!(x >= min && x <= max)) fail(key, "must lie in [" + num(min) + ", " + num(max) + "]");
      out = x;
    }
  }
  void boolean(const std::string& key, bool& out) const {
    if (auto* v = find(key)) {
      if (!v->is_boolean()) fail(key, "expected true or false");
      out = v->get<bool>();
    }
  }
  Reader child(const std::string& key) const {
    static const nlohmann::json empty = nlohmann::json::object();
    auto* v = find(key);
    return Reader(v ? *v : empty, source_, prefix_ + key + ".");
  }

 private:
  const nlohmann::json& obj_;
  std::string source_, prefix_;
};

std::string resolve_path(const std::string& p, const std::string& base_dir) {
  if (p.empty() || base_dir.empty() || std::filesystem::path(p).is_absolute()) return p;
  return (std::filesystem::path(base_dir) / p).lexically_normal().string();
}

}  // namespace

Session session_from_json(const nlohmann::json& j, const std::string& source,
                          const std::string& base_dir) {
  Session s;
  const Reader top(j, source, "");
  const auto* version = top.find("kvscope_session");
  if (!version) top.fail("kvscope_session", "missing: this is not a kvscope-gui session file");
  if (!version->is_number_integer() || version->get<int64_t>() != kSessionVersion)
    top.fail("kvscope_session", "unsupported version (this kvscope-gui reads version " +
                                    std::to_string(kSessionVersion) + ")");
  top.str("trace", s.trace_path);
  top.str("trace_format", s.trace_format);
  if (!parse_trace_format(s.trace_format) || s.trace_format == "automatic")
    top.fail("trace_format", "expected " + trace_format_choices());
  top.str("model", s.model);
  if (s.model.empty()) top.fail("model", "must not be empty");
  top.str("profile", s.profile_path);
  top.str("gpu", s.gpu);
  top.str("check", s.check_path);
  // A model that is not a preset is a config.json path, relative to the session file.
  const auto presets = model_preset_names();
  if (std::find(presets.begin(), presets.end(), s.model) == presets.end())
    s.model = resolve_path(s.model, base_dir);
  s.trace_path = resolve_path(s.trace_path, base_dir);
  s.profile_path = resolve_path(s.profile_path, base_dir);
  s.check_path = resolve_path(s.check_path, base_dir);

  const Reader an = top.child("analytic");
  an.integer("n_min_tokens", s.n_min_tokens, 1);
  an.integer("n_max_tokens", s.n_max_tokens, 1);
  if (s.n_max_tokens < s.n_min_tokens) an.fail("n_max_tokens", "must not be below n_min_tokens");
  an.integer("points_per_doubling", s.points_per_doubling, 1);
  if (s.points_per_doubling > 16) an.fail("points_per_doubling", "must be at most 16");
  an.real("p", s.p, 0.0, 1.0);

  if (const auto* ms = top.find("methods")) {
    if (!ms->is_array()) top.fail("methods", "expected an array of method names");
    s.methods.clear();
    for (const auto& m : *ms) {
      const auto parsed = m.is_string() ? parse_method(m.get<std::string>()) : std::nullopt;
      if (!parsed)
        top.fail("methods", "expected baseline, fourier, ccv or fourier_ccv, got " + m.dump());
      if (std::find(s.methods.begin(), s.methods.end(), *parsed) == s.methods.end())
        s.methods.push_back(*parsed);
    }
  }

  const Reader f = top.child("fourier");
  f.integer("m", s.fourier_m, 1);
  f.str("dims", s.fourier_dims);
  f.integer("sink_tokens", s.fourier_sink_tokens, 0);
  f.integer("window_tokens", s.fourier_window_tokens, 0);

  const Reader c = top.child("ccv");
  c.integer("d2", s.d2, -1);
  c.integer("l_eff", s.l_eff, 0);
  c.real("threshold", s.threshold, 1e-9, 1.0);
  c.real("budget_gib", s.ccv_budget_gib, 0.0, 1e6);
  std::string ev(eviction_name(s.ccv_eviction));
  c.str("eviction", ev);
  const auto e = parse_eviction(ev);
  if (!e) c.fail("eviction", "expected lru, lfu or ttl");
  s.ccv_eviction = *e;
  c.real("ttl_s", s.ccv_ttl_s, 0.0, 1e12);

  const Reader r = top.child("replay");
  r.real("gpu_memory_gib", s.gpu_memory_gib, 0.0, 1e6);
  r.integer("max_batch", s.max_batch, 1);
  r.integer("token_budget_tokens", s.token_budget_tokens, 1);
  r.boolean("chunked_prefill", s.chunked_prefill);
  r.real("rate_scale", s.rate_scale, 1e-9, 1e9);
  r.integer("max_requests", s.max_requests, -1);
  r.boolean("skip_bad_records", s.skip_bad_records);

  std::string view(view_name(s.view));
  top.str("view", view);
  if (view == "analytic")
    s.view = View::analytic;
  else if (view == "replay")
    s.view = View::replay;
  else if (view == "summary")
    s.view = View::summary;
  else if (view == "fidelity")
    s.view = View::fidelity;
  else
    top.fail("view", "expected analytic, replay, summary or fidelity");
  return s;
}

void save_session(const Session& s, const std::string& path) {
  const std::string text = session_to_json(s).dump(2) + "\n";
  write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

Session load_session(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path, "", "cannot open the session file");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(path, "", std::string("not valid JSON: ") + e.what());
  }
  return session_from_json(j, path, std::filesystem::path(path).parent_path().string());
}

}  // namespace kvscope::gui
