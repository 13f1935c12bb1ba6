#include "sim/cli/options.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iostream>
#include <sstream>

#include "model/calibration.h"
#include "model/error.h"
#include "sim/trace/trace.h"

namespace kvscope::cli {

bool parse_or_help(const Args& args, const po::options_description& desc, po::variables_map& vm,
                   const std::string& usage_line,
                   const po::positional_options_description* positional) {
  for (const auto& a : args) {
    if (a == "-h" || a == "--help") {
      std::cout << "usage: " << usage_line << "\n\n" << desc << "\n";
      return false;
    }
  }
  try {
    po::command_line_parser parser(args);
    parser.options(desc);
    if (positional != nullptr) parser.positional(*positional);
    po::store(parser.run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return true;
}

namespace {
// Parses a non-negative number with an optional binary suffix from `suffixes` (e.g. k, m, g).
double parse_scaled(const std::string& s, const std::string& option) {
  std::string num = s;
  double scale = 1;
  auto ends_with = [&](const std::string& suffix) {
    return num.size() > suffix.size() &&
           num.compare(num.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  const std::pair<const char*, double> suffixes[] = {{"GiB", 1073741824.0},
                                                     {"MiB", 1048576.0},
                                                     {"KiB", 1024.0},
                                                     {"GB", 1e9},
                                                     {"MB", 1e6},
                                                     {"KB", 1e3},
                                                     {"g", 1073741824.0},
                                                     {"m", 1048576.0},
                                                     {"k", 1024.0},
                                                     {"G", 1073741824.0},
                                                     {"M", 1048576.0},
                                                     {"K", 1024.0},
                                                     {"B", 1.0}};
  for (const auto& [suf, mult] : suffixes) {
    if (ends_with(suf)) {
      num.resize(num.size() - std::string(suf).size());
      scale = mult;
      break;
    }
  }
  double v = 0;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
  if (num.empty() || ec != std::errc() || p != num.data() + num.size() || !std::isfinite(v))
    throw UsageError(option + ": '" + s + "' is not a number");
  if (v < 0) throw UsageError(option + ": '" + s + "' must not be negative");
  return v * scale;
}
}  // namespace

int64_t parse_tokens(const std::string& s, const std::string& option) {
  const double v = parse_scaled(s, option);
  if (v < 1 || v != std::floor(v) || v > 1e12)
    throw UsageError(option + ": '" + s + "' must be a whole number of tokens >= 1");
  return static_cast<int64_t>(v);
}

std::vector<int64_t> parse_token_list(const std::string& s, const std::string& option) {
  std::vector<int64_t> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(parse_tokens(item, option));
  if (out.empty()) throw UsageError(option + ": expected a comma-separated list of lengths");
  return out;
}

int64_t parse_bytes(const std::string& s, const std::string& option) {
  const double v = parse_scaled(s, option);
  if (v > 9e18) throw UsageError(option + ": '" + s + "' is too large");
  return static_cast<int64_t>(std::llround(v));
}

std::vector<Method> parse_method_list(const std::string& s, const std::string& option) {
  if (s == "all") return all_methods();
  std::vector<Method> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto m = parse_method(item);
    if (!m)
      throw UsageError(option + ": '" + item +
                       "' is not a method (baseline, fourier, ccv, fourier_ccv, or all)");
    if (std::find(out.begin(), out.end(), *m) != out.end())
      throw UsageError(option + ": " + item + " is listed twice");
    out.push_back(*m);
  }
  if (out.empty()) throw UsageError(option + ": expected a comma-separated list of methods");
  return out;
}

void add_trace_and_scheduler_options(po::options_description& desc, bool bad_record_option) {
  std::string formats =
      "trace format: " + std::string(kAutomaticTraceFormatName) + " (from the content)";
  for (const auto& t : kTraceFormats) formats += ", " + std::string(t.name);
  desc.add_options()("format", po::value<std::string>()->default_value("auto"), formats.c_str());
  if (bad_record_option)
    desc.add_options()(
        "on-bad-record", po::value<std::string>()->default_value("stop"),
        "a bad trace record: stop (an error naming file, line and field) or skip (count it)");
  desc.add_options()("max-batch", po::value<int64_t>()->default_value(256),
                     "scheduler: sequences per step at most (count)")(
      "token-budget", po::value<int64_t>()->default_value(8192),
      "scheduler: prompt and decode tokens per step at most (tokens)")(
      "no-chunked-prefill",
      "scheduler: run each prompt whole in one step instead of in budget-sized chunks");
}

void trace_and_scheduler_from(const po::variables_map& vm, ReplayConfig& config) {
  const auto format = parse_trace_format(vm["format"].as<std::string>());
  if (!format) throw UsageError("--format: expected " + trace_format_choices());
  config.format = *format;
  if (vm.count("on-bad-record")) {
    const std::string bad = vm["on-bad-record"].as<std::string>();
    if (bad != "stop" && bad != "skip") throw UsageError("--on-bad-record: expected stop or skip");
    config.bad_records = bad == "stop" ? BadRecordPolicy::stop : BadRecordPolicy::skip;
  }
  config.scheduler.max_batch = vm["max-batch"].as<int64_t>();
  config.scheduler.token_budget = vm["token-budget"].as<int64_t>();
  config.scheduler.chunked_prefill = vm.count("no-chunked-prefill") == 0;
}

void add_method_options(po::options_description& desc) {
  desc.add_options()("fourier-m", po::value<int64_t>()->default_value(256),
                     "Fourier: spectral coefficients kept per compressed dim (count)")(
      "fourier-dims", po::value<std::string>(),
      "Fourier: compressed head dims, a count of the lowest dims (e.g. 64) or a list/range "
      "(e.g. 0-31,96-127) [default: half of head_dim, the lowest]")(
      "fourier-sink", po::value<int64_t>()->default_value(4),
      "Fourier: initial tokens kept exact (tokens)")(
      "fourier-window", po::value<int64_t>()->default_value(64),
      "Fourier: most recent tokens kept exact (tokens)")(
      "d2", po::value<int64_t>(), "CCV: compressed width d2 (elements) [default: d1/2]")(
      "l-eff", po::value<int64_t>()->default_value(8),
      "CCV: layers always computed before the cosine check (layers)")(
      "threshold", po::value<std::string>()->default_value("balanced"),
      "CCV: cosine threshold for a hit: aggressive (0.7), balanced (0.8), conservative (0.9) "
      "or a number in (0,1]")("ccv-budget", po::value<std::string>()->default_value("4GiB"),
                              "CCV: cache capacity (bytes; suffixes KiB, MiB, GiB, KB, MB, GB)")(
      "ccv-eviction", po::value<std::string>()->default_value("lru"),
      "CCV: eviction policy: lru, lfu or ttl")(
      "ccv-ttl", po::value<double>()->default_value(600.0),
      "CCV: entry lifetime for --ccv-eviction ttl (seconds)");
}

namespace {
std::vector<int64_t> parse_dim_list(const std::string& s) {
  std::vector<int64_t> dims;
  std::stringstream in(s);
  std::string item;
  auto to_int = [&](const std::string& t) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc() || p != t.data() + t.size())
      throw UsageError("--fourier-dims: '" + t + "' is not a dimension index");
    return v;
  };
  while (std::getline(in, item, ',')) {
    const auto dash = item.find('-');
    if (dash == std::string::npos) {
      dims.push_back(to_int(item));
    } else {
      const int64_t a = to_int(item.substr(0, dash)), b = to_int(item.substr(dash + 1));
      if (b < a) throw UsageError("--fourier-dims: range '" + item + "' runs backwards");
      for (int64_t d = a; d <= b; ++d) dims.push_back(d);
    }
  }
  return dims;
}
}  // namespace

MethodConfig method_config_from(const po::variables_map& vm, const ModelShape& shape) {
  MethodConfig c;
  c.fourier.m = vm["fourier-m"].as<int64_t>();
  c.fourier.sink_tokens = vm["fourier-sink"].as<int64_t>();
  c.fourier.window_tokens = vm["fourier-window"].as<int64_t>();
  if (vm.count("fourier-dims")) {
    const std::string d = vm["fourier-dims"].as<std::string>();
    if (d.find_first_of(",-") == std::string::npos) {
      c.fourier.compressed_count = parse_dim_list(d).front();
      if (c.fourier.compressed_count < 0) throw UsageError("--fourier-dims: must not be negative");
    } else {
      c.fourier.compressed_dims = parse_dim_list(d);
    }
  }
  if (vm.count("d2")) c.ccv.d2 = vm["d2"].as<int64_t>();
  c.ccv.l_eff = vm["l-eff"].as<int64_t>();
  const auto t = parse_threshold(vm["threshold"].as<std::string>());
  if (!t)
    throw UsageError(
        "--threshold: expected aggressive, balanced, conservative or a number in (0,1]");
  c.ccv.threshold = *t;
  c.ccv.budget_bytes = parse_bytes(vm["ccv-budget"].as<std::string>(), "--ccv-budget");
  const auto e = parse_eviction(vm["ccv-eviction"].as<std::string>());
  if (!e) throw UsageError("--ccv-eviction: expected lru, lfu or ttl");
  c.ccv.eviction = *e;
  c.ccv.ttl_s = vm["ccv-ttl"].as<double>();
  c.fourier.validate(shape.head_dim);
  c.ccv.validate(shape);
  return c;
}

void add_cost_options(po::options_description& desc) {
  desc.add_options()("gpu", po::value<std::string>()->default_value("h100-sxm"),
                     "hardware preset for the roofline cost model: h100-sxm, h200, cpu-2core")(
      "profile", po::value<std::string>(),
      "calibration profile from `kvscope calibrate` (e.g. results/profiles/h100.json): price "
      "operations with constants fitted to measured kernels instead of the roofline; an "
      "explicit --gpu must name the profile's device");
}

std::unique_ptr<OpCostModel> cost_model_from(const po::variables_map& vm) {
  if (vm.count("profile")) {
    const CalibrationProfile p = load_profile(vm["profile"].as<std::string>());
    if (!vm["gpu"].defaulted()) check_profile_matches(p, vm["gpu"].as<std::string>());
    return std::make_unique<CalibratedCostModel>(p);
  }
  return std::make_unique<RooflineCostModel>(hardware_preset(vm["gpu"].as<std::string>()));
}

int64_t gpu_memory_from(const std::string* gpu_mem, const std::string& gpu_preset,
                        const OpCostModel& costs) {
  if (gpu_mem) return parse_bytes(*gpu_mem, "--gpu-mem");
  if (const auto* cal = dynamic_cast<const CalibratedCostModel*>(&costs))
    if (cal->device().memory_bytes > 0) return cal->device().memory_bytes;
  return hardware_preset(gpu_preset).memory_bytes;
}

int guarded(const std::string& command, int (*body)(const Args&), const Args& args) {
  try {
    return body(args);
  } catch (const UsageError& e) {
    std::cerr << "kvscope " << command << ": " << e.what() << "\n"
              << "Run 'kvscope " << command << " --help' for the options.\n";
    return kUsage;
  } catch (const InputError& e) {
    std::cerr << "kvscope " << command << ": error: " << e.what() << "\n";
    // A bad option value is a usage error; a bad file is a failure of the run.
    return e.field().rfind("--", 0) == 0 ? kUsage : kFailure;
  } catch (const std::exception& e) {
    std::cerr << "kvscope " << command << ": error: " << e.what() << "\n";
    return kFailure;
  }
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::abs(bytes) >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(u == 0 ? 0 : 2);
  s << bytes << " " << units[u];
  return s.str();
}

}  // namespace kvscope::cli
