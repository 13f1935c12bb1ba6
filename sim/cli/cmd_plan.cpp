// kvscope plan: a capacity-planning report (HTML, Markdown or PDF, with CSV beside it) that
// answers how many requests per second, how long a context and how large a batch one GPU takes
// under each method, and how many GPUs a target rate needs.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "model/calibration.h"
#include "model/error.h"
#include "model/hardware.h"
#include "sim/cli/commands.h"
#include "sim/cli/options.h"
#include "sim/io/staged_files.h"
#include "sim/plan/check_summary.h"
#include "sim/plan/plan.h"
#include "sim/plan/plan_report.h"
#include "sim/replay/replay.h"
#include "sim/report/document.h"
#include "sim/trace/trace.h"

namespace kvscope::cli {

namespace {

namespace fs = std::filesystem;

// ---- Interrupts: SIGINT/SIGTERM set a flag that the replays poll; nothing is written then ----

std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" void on_interrupt(int) { g_interrupted.store(true); }

class InterruptGuard {
 public:
  InterruptGuard() {
    g_interrupted.store(false);
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptGuard() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

// Holds SIGINT and SIGTERM back while output files are staged and moved into place, so the
// decision "write or not" is taken once, before the first rename.
class SignalsHeld {
 public:
  SignalsHeld() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &s, &old_);
  }
  ~SignalsHeld() { ::sigprocmask(SIG_SETMASK, &old_, nullptr); }
  SignalsHeld(const SignalsHeld&) = delete;
  SignalsHeld& operator=(const SignalsHeld&) = delete;

 private:
  sigset_t old_{};
};

// ---- Option parsing ----

// "2s", "100ms", "1.5s" -> milliseconds. A bare number is refused: the unit must be explicit.
double parse_duration_ms(const std::string& s, const std::string& option) {
  double scale = 0;
  std::string num = s;
  if (s.size() > 2 && s.compare(s.size() - 2, 2, "ms") == 0) {
    scale = 1;
    num.resize(s.size() - 2);
  } else if (s.size() > 1 && s.back() == 's') {
    scale = 1000;
    num.resize(s.size() - 1);
  } else {
    throw UsageError(option + ": '" + s + "' needs a unit: ms or s (e.g. 2s, 100ms)");
  }
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(num, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != num.size() || !(v > 0) || !std::isfinite(v))
    throw UsageError(option + ": '" + s + "' is not a positive duration");
  return v * scale;
}

std::vector<double> parse_threshold_list(const std::string& s) {
  std::vector<double> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto t = parse_threshold(item);
    if (!t) throw UsageError("--sweep-thresholds: '" + item + "' is not a threshold in (0,1]");
    out.push_back(*t);
  }
  if (out.empty()) throw UsageError("--sweep-thresholds: expected a comma-separated list");
  return out;
}

std::vector<int64_t> parse_count_list(const std::string& s, const std::string& option) {
  std::vector<int64_t> out;
  for (int64_t v : parse_token_list(s, option)) out.push_back(v);
  return out;
}

enum class OutputKind { html, markdown, pdf };

OutputKind output_kind(const std::string& path) {
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".html" || ext == ".htm") return OutputKind::html;
  if (ext == ".md") return OutputKind::markdown;
  if (ext == ".pdf") return OutputKind::pdf;
  throw UsageError("--out: '" + path + "' must end in .html, .md or .pdf");
}

std::string shell_quoted(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_=.,/:+%@") == std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string now_text() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", &tm);
  return buf;
}

// Progress on stderr: one line rewritten in place on a terminal, a line every few seconds
// otherwise (logs). Called from the planner's worker threads.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool quiet) : quiet_(quiet), tty_(::isatty(2) != 0) {}
  void operator()(const PlanProgress& p) {
    if (quiet_) return;
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    const bool finished = p.searches_done == p.searches_total;
    if (!finished &&
        now - last_ < (tty_ ? std::chrono::milliseconds(100) : std::chrono::seconds(3)))
      return;
    last_ = now;
    const double s = std::chrono::duration<double>(now - start_).count();
    std::ostringstream line;
    line << "plan: " << p.searches_done << "/" << p.searches_total << " searches, "
         << p.replays_done << " replays, " << static_cast<int>(s) << " s";
    if (!p.note.empty()) line << " (" << p.note << ")";
    if (tty_) {
      std::cerr << "\r" << line.str() << "\033[K" << std::flush;
      open_line_ = true;
    } else {
      std::cerr << line.str() << "\n";
    }
  }
  void done() {
    std::lock_guard lock(mu_);
    if (open_line_) std::cerr << "\n";
    open_line_ = false;
  }

 private:
  bool quiet_, tty_;
  bool open_line_ = false;
  std::mutex mu_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
};

int plan_body(const Args& args) {
  // From the start, not only around the sweep: an interrupt while the inputs load (seconds on
  // a busy machine) ends the same way, exit 130 and nothing written, not by the default action.
  InterruptGuard interrupts;
  po::options_description desc("kvscope plan options");
  desc.add_options()(
      "model", po::value<std::string>()->required(),
      "model preset (llama-2-7b, llama-3.1-8b, llama-3.1-70b, mistral-7b, qwen2.5-7b, "
      "kvscope-tiny) or a Hugging Face config.json")(
      "trace", po::value<std::string>()->required(),
      ("serving trace: " + trace_format_descriptions()).c_str())(
      "out", po::value<std::string>()->required(),
      "the report: .html (charts inline as SVG), .md (charts as .svg files beside it) or .pdf; "
      "CSV files with every number are written beside it as <stem>.<table>.csv")(
      "gpu-mem", po::value<std::string>(),
      "memory of one GPU (bytes; suffixes KiB, MiB, GiB, KB, MB, GB) [default: the --profile "
      "device's, else the --gpu preset's: 80GiB for h100-sxm]")(
      "slo-ttft", po::value<std::string>()->default_value("2s"),
      "SLO on time to first token (duration with unit, ms or s)")(
      "slo-tbt", po::value<std::string>()->default_value("100ms"),
      "SLO on time between tokens (duration with unit, ms or s)")(
      "slo-percentile", po::value<std::string>()->default_value("p90"),
      "percentile both SLOs apply to: p50, p90 or p99")(
      "methods", po::value<std::string>()->default_value("baseline,fourier,ccv,fourier_ccv"),
      "methods to plan for, comma-separated")("target-rate", po::value<double>(),
                                              "target load (requests/s): report the GPUs it needs")(
      "check", po::value<std::string>(),
      "a kvscope check summary (JSON, schema in README) whose fidelity figures the report quotes")(
      "max-requests", po::value<int64_t>(),
      "replay only the first N requests of the trace (count) [default: all]")(
      "contexts",
      po::value<std::string>()->default_value("1k,2k,4k,8k,16k,32k,64k,128k,256k,512k,1m"),
      "context lengths at which to report the largest batch (tokens; k = 1024)")(
      "sweep-thresholds", po::value<std::string>()->default_value("0.7,0.8,0.9"),
      "sensitivity sweep: CCV thresholds (presets or numbers in (0,1])")(
      "sweep-fourier-m", po::value<std::string>()->default_value("64,128,256,512"),
      "sensitivity sweep: Fourier coefficients M (count)")(
      "sweep-l-eff", po::value<std::string>()->default_value("4,6,8,10"),
      "sensitivity sweep: CCV L_eff (layers)")("no-sweep", "skip the sensitivity sweep")(
      "rate-tolerance", po::value<double>()->default_value(0.02),
      "stop the rate bisection when the bracket is this tight (fraction, 0.02 = 2%)")(
      "jobs", po::value<int>(), "replays run at once (threads) [default: the number of cores]")(
      "quiet", "no progress on stderr");
  add_trace_and_scheduler_options(desc, true);
  add_method_options(desc);
  add_cost_options(desc);
  po::variables_map vm;
  if (!parse_or_help(args, desc, vm,
                     "kvscope plan --model M --trace T --out report.html|report.md|report.pdf "
                     "[--gpu G] [--gpu-mem 80GiB] [--slo-ttft 2s] [--slo-tbt 100ms] "
                     "[--methods ...] [--target-rate R] [--check CHECK.json] [options]"))
    return kOk;

  // Everything that can be wrong with the command line or the small inputs fails here, before
  // any replay runs.
  const std::string out_path = vm["out"].as<std::string>();
  const OutputKind kind = output_kind(out_path);
  if (kind == OutputKind::pdf && !report::pdf_supported())
    throw UsageError(
        "--out: PDF reports need kvscope built with Qt 6 (Gui, Svg), and this build "
        "has no Qt; write .html or .md instead");
  const fs::path out_dir = fs::absolute(out_path).parent_path();
  if (!fs::is_directory(out_dir))
    throw InputError(out_path, "--out", "directory " + out_dir.string() + " does not exist");

  PlanConfig pc;
  pc.trace_path = vm["trace"].as<std::string>();
  if (!fs::is_regular_file(pc.trace_path))
    throw InputError(pc.trace_path, "--trace", "no such file");
  pc.replay.model = load_model(vm["model"].as<std::string>());
  pc.replay.method_config = method_config_from(vm, pc.replay.model);
  pc.methods = parse_method_list(vm["methods"].as<std::string>(), "--methods");
  pc.slo.ttft_ms = parse_duration_ms(vm["slo-ttft"].as<std::string>(), "--slo-ttft");
  pc.slo.tbt_ms = parse_duration_ms(vm["slo-tbt"].as<std::string>(), "--slo-tbt");
  const auto pct = parse_percentile(vm["slo-percentile"].as<std::string>());
  if (!pct) throw UsageError("--slo-percentile: expected p50, p90 or p99");
  pc.slo.percentile = *pct;
  if (vm.count("target-rate")) {
    pc.target_rate_per_s = vm["target-rate"].as<double>();
    if (!(pc.target_rate_per_s > 0) || !std::isfinite(pc.target_rate_per_s))
      throw UsageError("--target-rate: must be a positive number of requests/s");
  }
  if (vm.count("max-requests")) {
    pc.replay.max_requests = vm["max-requests"].as<int64_t>();
    if (pc.replay.max_requests < 2)
      throw UsageError("--max-requests: at least 2 requests are needed to define a rate");
  }
  trace_and_scheduler_from(vm, pc.replay);
  pc.batch_contexts_tokens = parse_token_list(vm["contexts"].as<std::string>(), "--contexts");
  pc.sweep.thresholds = parse_threshold_list(vm["sweep-thresholds"].as<std::string>());
  pc.sweep.fourier_m =
      parse_count_list(vm["sweep-fourier-m"].as<std::string>(), "--sweep-fourier-m");
  pc.sweep.l_eff = parse_count_list(vm["sweep-l-eff"].as<std::string>(), "--sweep-l-eff");
  pc.run_sweep = vm.count("no-sweep") == 0;
  pc.limits.tolerance = vm["rate-tolerance"].as<double>();
  if (!(pc.limits.tolerance > 0 && pc.limits.tolerance < 1))
    throw UsageError("--rate-tolerance: must lie in (0, 1)");
  pc.jobs = vm.count("jobs") ? vm["jobs"].as<int>()
                             : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (pc.jobs < 1 || pc.jobs > 256) throw UsageError("--jobs: must lie in [1, 256]");

  const auto costs = cost_model_from(vm);
  ReportContext ctx;
  ctx.kvscope_version = "0.1.0";
  ctx.generated_at = now_text();
  {
    std::string cmd = "kvscope plan";
    for (const auto& a : args) cmd += " " + shell_quoted(a);
    ctx.command_line = cmd;
  }
  // What priced the replays, for the report's inputs: the preset's datasheet figures, or the
  // calibration profile's device and measurement date. GPU memory defaults to that device's.
  auto figure = [](double v, const char* unit) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4g %s", v, unit);
    return std::string(buf);
  };
  if (const auto* roof = dynamic_cast<const RooflineCostModel*>(costs.get())) {
    const HardwareProfile& hw = roof->hardware();
    ctx.cost_details = {
        {"GPU", hw.name},
        {"profile", "none: " + hw.source +
                        " figures (no calibration profile, so no measurement date; see --profile)"},
        {"peak 16-bit", figure(hw.peak_flops_16 / 1e12, "TFLOP/s")},
        {"memory bandwidth", figure(hw.mem_bytes_per_s / 1e12, "TB/s")},
        {"kernel launch overhead", figure(hw.launch_overhead_ms * 1000, "us")}};
  } else if (const auto* cal = dynamic_cast<const CalibratedCostModel*>(costs.get())) {
    const ProfileDevice& d = cal->device();
    ctx.cost_details = {{"GPU", d.name + " (" + d.backend + ")"},
                        {"profile", vm["profile"].as<std::string>() + ", measured " + d.date},
                        {"driver and toolkit", d.driver},
                        {"measured copy bandwidth", figure(d.copy_bytes_per_s / 1e9, "GB/s")},
                        {"measured bf16 GEMM", figure(d.gemm_flops_per_s_bf16 / 1e12, "TFLOP/s")}};
  } else {
    ctx.cost_details = {{"GPU", costs->describe()}};
  }
  const std::string* gpu_mem = vm.count("gpu-mem") ? &vm["gpu-mem"].as<std::string>() : nullptr;
  pc.replay.gpu_memory_bytes = gpu_memory_from(gpu_mem, vm["gpu"].as<std::string>(), *costs);
  if (vm.count("check")) ctx.check = load_check_summary(vm["check"].as<std::string>());

  // The sweep.
  if (g_interrupted.load()) {
    std::cerr << "kvscope plan: interrupted; no report written\n";
    return 130;
  }
  ProgressPrinter printer(vm.count("quiet") != 0);
  PlanResult plan;
  try {
    plan = make_plan(
        pc, *costs, kvscope::run_replay, [&](const PlanProgress& p) { printer(p); },
        &g_interrupted);
  } catch (const Cancelled&) {
    printer.done();
    std::cerr << "kvscope plan: interrupted; no report written\n";
    return 130;
  }
  printer.done();

  // The files: CSV tables, (Markdown) figures, then the report, all or nothing.
  const fs::path out = out_path;
  const std::string stem = (out.parent_path() / out.stem()).string();
  const std::string stem_name = out.stem().string();
  const auto tables = plan_csv_tables(plan, ctx.check);
  std::vector<std::string> csv_names;
  for (const auto& t : tables) csv_names.push_back(stem_name + "." + t.name + ".csv");
  const report::Document doc = plan_document(plan, ctx, csv_names);

  SignalsHeld held;
  StagedFiles files;
  for (const auto& t : tables)
    files.stage(stem + "." + t.name + ".csv", [&](std::ostream& o) { write_csv(t, o); });
  if (kind == OutputKind::markdown)
    for (const report::Figure* f : doc.figures())
      files.stage(stem + "." + f->id + ".svg", [&](std::ostream& o) { o << f->svg; });
  files.stage(out_path, [&](std::ostream& o) {
    switch (kind) {
      case OutputKind::html:
        report::render_html(doc, o);
        break;
      case OutputKind::markdown:
        report::render_markdown(doc, stem_name, o);
        break;
      case OutputKind::pdf:
        report::render_pdf(doc, o);
        break;
    }
  });
  sigset_t pending;
  sigpending(&pending);
  if (g_interrupted.load() || sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM)) {
    files.discard();
    std::cerr << "kvscope plan: interrupted; no report written\n";
    return 130;
  }
  files.commit();
  if (vm.count("quiet") == 0) {
    std::cerr << "plan: " << plan.replays << " replays in " << plan.wall_s << " s\n";
  }
  std::cout << "wrote " << out_path;
  for (const auto& n : csv_names) std::cout << ", " << n;
  std::cout << "\n";
  return kOk;
}

}  // namespace

int run_plan(const Args& args) { return plan_body(args); }

}  // namespace kvscope::cli
