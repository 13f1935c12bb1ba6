// kvscope replay: a serving trace through the scheduler, the KV pool and the CCV cache, once per
// method, with every step priced by the cost model.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "model/error.h"
#include "sim/cli/commands.h"
#include "sim/cli/options.h"
#include "sim/cli/progress.h"
#include "sim/replay/replay.h"
#include "sim/report/replay_report.h"
#include "sim/trace/trace.h"

namespace kvscope::cli {

int run_replay(const Args& args) {
  po::options_description desc("kvscope replay options");
  desc.add_options()("trace", po::value<std::string>()->required(),
                     ("the trace: " + trace_format_descriptions() + " (also positional)").c_str())(
      "model", po::value<std::string>()->required(),
      "model preset (llama-2-7b, llama-3.1-8b, llama-3.1-70b, mistral-7b, qwen2.5-7b, "
      "kvscope-tiny) or a Hugging Face config.json")(
      "method", po::value<std::string>()->default_value("all"),
      "methods to replay, comma-separated: baseline, fourier, ccv, fourier_ccv, or all")(
      "gpu-mem", po::value<std::string>(),
      "GPU memory for weights, KV pool and CCV cache (bytes; suffixes KiB, MiB, GiB, KB, MB, GB) "
      "[default: the --profile device's, else the --gpu preset's]")(
      "rate-scale", po::value<double>()->default_value(1.0),
      "arrival rate multiplier: 2 replays the trace's arrivals twice as fast (factor)")(
      "max-requests", po::value<int64_t>(), "replay only the first N requests (count)")(
      "out", po::value<std::string>(),
      "directory for summary.json/.csv, hit_rate.csv, steps.csv/.json, requests.csv/.json")(
      "json", "print the summary as JSON instead of a table")("quiet", "no progress on stderr");
  add_trace_and_scheduler_options(desc, true);
  add_method_options(desc);
  add_cost_options(desc);
  po::positional_options_description pos;
  pos.add("trace", 1);
  po::variables_map vm;
  if (!parse_or_help(args, desc, vm,
                     "kvscope replay TRACE --model M [--gpu G] [--method ...] [--out DIR] [--json] "
                     "[options]",
                     &pos))
    return kOk;

  ReplayConfig cfg;
  cfg.model = load_model(vm["model"].as<std::string>());
  cfg.method_config = method_config_from(vm, cfg.model);
  cfg.methods = parse_method_list(vm["method"].as<std::string>());
  const auto ops = cost_model_from(vm);
  const std::string* gpu_mem = vm.count("gpu-mem") ? &vm["gpu-mem"].as<std::string>() : nullptr;
  cfg.gpu_memory_bytes = gpu_memory_from(gpu_mem, vm["gpu"].as<std::string>(), *ops);
  cfg.rate_scale = vm["rate-scale"].as<double>();
  trace_and_scheduler_from(vm, cfg);
  if (vm.count("max-requests")) {
    cfg.max_requests = vm["max-requests"].as<int64_t>();
    if (cfg.max_requests < 1) throw UsageError("--max-requests: must be at least 1");
  }
  const bool out_dir = vm.count("out") > 0;
  cfg.keep_steps = out_dir;  // the tables are only kept when they will be written
  cfg.keep_requests = out_dir;

  StderrProgress progress(vm.count("quiet") == 0, "kvscope replay", false);
  const ReplayResult result =
      kvscope::run_replay(vm["trace"].as<std::string>(), cfg, *ops,
                          [&](double f, const std::string& note) { progress(f, note); });
  const nlohmann::json info = replay_run_info(cfg, ops->describe());
  if (out_dir) write_replay_outputs(vm["out"].as<std::string>(), result, info);
  if (vm.count("json")) {
    std::cout << replay_summary_json(result, info).dump(2) << "\n";
  } else {
    print_replay_summary(std::cout, result, info);
    if (out_dir) std::cout << "wrote " << vm["out"].as<std::string>() << "/\n";
  }
  return kOk;
}

}  // namespace kvscope::cli
