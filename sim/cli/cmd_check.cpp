// kvscope check: the steps the replay scheduled for a trace's first requests, run on the real
// kernels (cpu or cuda backend), and the error of every prediction: step latency per method and
// step kind, KV memory to the byte. See sim/check/check.h and sim/FIDELITY.md.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <sstream>

#include "model/calibration.h"
#include "model/error.h"
#include "sim/check/check.h"
#include "sim/check/check_report.h"
#include "sim/cli/commands.h"
#include "sim/cli/options.h"
#include "sim/cli/progress.h"
#include "sim/trace/trace.h"

namespace kvscope::cli {

namespace {

std::string utc_date() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

}  // namespace

int run_check(const Args& args) {
  po::options_description desc("kvscope check options");
  desc.add_options()("trace", po::value<std::string>()->required(),
                     ("the trace: " + trace_format_descriptions() + " (also positional)").c_str())(
      "model", po::value<std::string>()->required(), "model preset or a Hugging Face config.json")(
      "backend", po::value<std::string>()->default_value("cpu"),
      "kernel backend that runs the steps: cpu or cuda")(
      "requests", po::value<int64_t>()->default_value(200),
      "check the steps of the trace's first K requests (count)")(
      "method", po::value<std::string>()->default_value("all"),
      "methods to check, comma-separated: baseline, fourier, ccv, fourier_ccv, or all")(
      "max-steps", po::value<int64_t>()->default_value(0),
      "run at most this many of each method's steps, an equal share per step kind, evenly "
      "spread (0: every step)")(
      "reps", po::value<int>()->default_value(0),
      "timed runs per step, median taken (0: enough for ~100 ms, 1 to 5)")(
      "warmup", po::value<int>()->default_value(1), "untimed runs of a step before timing it")(
      "time-budget", po::value<double>()->default_value(0),
      "seconds for running steps, shared between the methods; each runs its steps interleaved "
      "over its replay and stops when its share is spent (0: no limit)")(
      "breakdown",
      "also time each part of each step alone (attention, dense, CCV, elementwise) into "
      "steps.csv, to see which part a prediction misses")(
      "gpu-mem", po::value<std::string>(),
      "memory the replay sizes its KV pool from (bytes; suffixes KiB, MiB, GiB) [default: "
      "measured on the cuda device (free memory less the executor's scratch and "
      "--device-reserve); 2GiB on the cpu backend]")(
      "device-reserve", po::value<std::string>()->default_value("2GiB"),
      "device memory left to the backend's own workspaces when --gpu-mem is measured (bytes)")(
      "length-scale", po::value<double>()->default_value(1.0),
      "multiply every request's input and output lengths (shrinks a real trace for a CPU)")(
      "rate-scale", po::value<double>()->default_value(1.0), "arrival rate multiplier (factor)")(
      "out", po::value<std::string>(),
      "directory for steps.csv, summary.txt, check_summary.json (what kvscope plan --check "
      "reads), check.json and pred_vs_meas.svg")("json", "print check_summary.json on stdout")(
      "quiet", "no progress on stderr")(
      "reprice", po::value<std::string>(),
      "run nothing: price the steps of an earlier check (its steps.jsonl) again with this "
      "cost model (--profile or --gpu) and report against the times measured then; the "
      "model, method and scheduler options must be the earlier run's");
  add_trace_and_scheduler_options(desc, false);
  add_method_options(desc);
  add_cost_options(desc);
  po::positional_options_description pos;
  pos.add("trace", 1);
  po::variables_map vm;
  if (!parse_or_help(args, desc, vm,
                     "kvscope check TRACE --model M --profile P --backend cpu|cuda [--requests K] "
                     "[--method ...] [--out DIR] [options]",
                     &pos))
    return kOk;

  check::CheckConfig cfg;
  cfg.backend = vm["backend"].as<std::string>();
  if (cfg.backend != "cpu" && cfg.backend != "cuda")
    throw UsageError("--backend: expected cpu or cuda, not '" + cfg.backend + "'");
  ReplayConfig& rc = cfg.replay;
  rc.model = load_model(vm["model"].as<std::string>());
  rc.method_config = method_config_from(vm, rc.model);
  rc.methods = parse_method_list(vm["method"].as<std::string>());
  rc.max_requests = vm["requests"].as<int64_t>();
  if (rc.max_requests < 1) throw UsageError("--requests: must be at least 1");
  cfg.max_steps = vm["max-steps"].as<int64_t>();
  if (cfg.max_steps < 0) throw UsageError("--max-steps: must not be negative");
  cfg.reps = vm["reps"].as<int>();
  cfg.warmup = vm["warmup"].as<int>();
  cfg.breakdown = vm.count("breakdown") > 0;
  cfg.time_budget_s = vm["time-budget"].as<double>();
  if (cfg.time_budget_s < 0) throw UsageError("--time-budget: must not be negative");
  if (cfg.reps < 0 || cfg.warmup < 0) throw UsageError("--reps, --warmup: must not be negative");
  if (vm.count("gpu-mem"))
    rc.gpu_memory_bytes = parse_bytes(vm["gpu-mem"].as<std::string>(), "--gpu-mem");
  else
    rc.gpu_memory_bytes = cfg.backend == "cpu" ? (int64_t{2} << 30) : 0;
  cfg.device_reserve_bytes =
      parse_bytes(vm["device-reserve"].as<std::string>(), "--device-reserve");
  rc.length_scale = vm["length-scale"].as<double>();
  rc.rate_scale = vm["rate-scale"].as<double>();
  trace_and_scheduler_from(vm, rc);
  const auto ops = cost_model_from(vm);

  std::ostringstream command;
  command << "kvscope check";
  for (const auto& a : args) command << " " << a;
  const std::string trace = vm["trace"].as<std::string>();

  check::CheckResult result;
  if (vm.count("reprice")) {
    result = check::reprice_check(vm["reprice"].as<std::string>(), rc, *ops);
  } else {
    StderrProgress progress(vm.count("quiet") == 0, "kvscope check", true);
    result = check::run_check(trace, cfg, *ops,
                              [&](double f, const std::string& note) { progress(f, note); });
    // A CPU profile's times hold for the thread count, the build and the way idle threads wait
    // that it was measured with (the CPU backend sizes its team from the load when it starts;
    // the driver string names the build and the wait policy).
    const auto* cal = dynamic_cast<const CalibratedCostModel*>(ops.get());
    if (cal && cal->device().backend == "cpu" && result.device.backend == "cpu") {
      const auto& was = cal->device();
      const auto& now = result.device;
      if (was.multiprocessors > 0 && was.multiprocessors != now.multiprocessors)
        std::cerr << "kvscope check: warning: the profile was measured with " << was.multiprocessors
                  << " threads, the steps ran with " << now.multiprocessors
                  << " (the CPU backend sizes its team from the load average when it starts; "
                     "OMP_DYNAMIC=false OMP_NUM_THREADS=N fixes it)\n";
      if (!was.driver.empty() && was.driver != now.driver)
        std::cerr << "kvscope check: warning: the profile was measured with \"" << was.driver
                  << "\", the steps ran with \"" << now.driver << "\"\n";
    }
  }
  nlohmann::json run = {
      {"model", rc.model.name},
      {"backend", result.device.backend},
      {"device", result.device.name},
      {"date", utc_date()},
      {"command", command.str()},
      {"trace", trace},
      {"requests", result.trace.requests},
      {"max_steps", cfg.max_steps},
      {"length_scale", rc.length_scale},
      {"token_budget", rc.scheduler.token_budget},
      {"max_batch", rc.scheduler.max_batch},
      {"profile", vm.count("profile") ? vm["profile"].as<std::string>() : ""},
      {"repriced_from", vm.count("reprice") ? vm["reprice"].as<std::string>() : ""}};
  if (vm.count("out")) check::write_check_outputs(vm["out"].as<std::string>(), result, run);
  if (vm.count("json")) {
    std::cout << check::check_summary_json(result, run).dump(2) << "\n";
  } else {
    check::print_check_summary(std::cout, result, run);
    if (vm.count("out")) std::cout << "wrote " << vm["out"].as<std::string>() << "/\n";
  }
  return kOk;
}

}  // namespace kvscope::cli
