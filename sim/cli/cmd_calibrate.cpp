// kvscope calibrate: runs the kernel benchmarks (kernels/bench) on the cpu or cuda backend and
// writes a calibration profile: Google Benchmark's JSON plus a device block. Progress goes to
// stderr; the profile is written atomically, so an interrupted run leaves no file. Then fits
// the cost model to it and prints the fit's residuals (model/calibration.h).
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "model/calibration.h"
#include "model/error.h"
#include "sim/cli/commands.h"
#include "sim/cli/options.h"
#include "sim/io/atomic_file.h"

#ifdef KVSCOPE_HAVE_BENCH
#include "kernels/bench/bench.h"
#include "kernels/bench/step_bench.h"
#endif

namespace kvscope::cli {

int run_calibrate(const Args& args) {
  po::options_description desc("kvscope calibrate options");
  desc.add_options()("backend", po::value<std::string>(), "kernel backend to measure: cpu or cuda")(
      "quick", "small shapes (CI, CPUs); default: the full GPU shapes")(
      "out", po::value<std::string>(), "profile to write (JSON)")(
      "filter", po::value<std::string>()->default_value("."),
      "only benchmarks matching this regex (the profile then may not fit the model)")(
      "fit", po::value<std::string>(),
      "do not measure: fit the cost model to this existing profile and print the residuals")(
      "model", po::value<std::string>(),
      "also measure the step tables of this model (preset or config.json): its operations at its "
      "own shapes, timed as a step runs them (what `kvscope check` compares with)")(
      "method", po::value<std::string>()->default_value("all"),
      "with --model: the methods whose operations to measure (baseline, fourier, ccv, "
      "fourier_ccv, comma-separated, or all)")(
      "max-context", po::value<int64_t>()->default_value(32768),
      "with --model: longest context the tables cover (tokens)")(
      "token-budget", po::value<int64_t>()->default_value(8192),
      "with --model: most tokens in one step (tokens)")(
      "max-batch", po::value<int64_t>()->default_value(256),
      "with --model: most sequences in one step (count)");
  add_method_options(desc);
  po::variables_map vm;
  if (!parse_or_help(args, desc, vm,
                     "kvscope calibrate --backend cpu|cuda [--quick] --out PROFILE.json\n"
                     "       kvscope calibrate --fit PROFILE.json"))
    return kOk;

  if (vm.count("fit")) {
    if (vm.count("backend") || vm.count("out"))
      throw UsageError("--fit reads an existing profile; it takes no --backend or --out");
    const CalibratedCostModel model(load_profile(vm["fit"].as<std::string>()));
    std::cout << model.fit_report();
    return kOk;
  }
  if (!vm.count("backend")) throw UsageError("--backend is required (cpu or cuda)");
  if (!vm.count("out")) throw UsageError("--out is required (the profile to write)");
  const std::string backend = vm["backend"].as<std::string>();
  if (backend != "cpu" && backend != "cuda")
    throw UsageError("--backend: expected cpu or cuda, not '" + backend + "'");
  const std::string out = vm["out"].as<std::string>();

#ifdef KVSCOPE_HAVE_BENCH
  std::optional<kernels::bench::StepBenchConfig> steps;
  if (vm.count("model")) {
    kernels::bench::StepBenchConfig c;
    c.model = load_model(vm["model"].as<std::string>());
    c.methods = method_config_from(vm, c.model);
    if (c.methods.fourier.sink_tokens != 4 || c.methods.fourier.window_tokens != 64)
      throw UsageError(
          "--fourier-sink/--fourier-window: the profile's Fourier rows use sink 4 and window 64");
    c.fourier = c.ccv = false;
    for (Method m : parse_method_list(vm["method"].as<std::string>())) {
      c.fourier = c.fourier || uses_fourier(m);
      c.ccv = c.ccv || uses_ccv(m);
    }
    c.max_context = vm["max-context"].as<int64_t>();
    c.max_rows = vm["token-budget"].as<int64_t>();
    c.max_seqs = vm["max-batch"].as<int64_t>();
    if (c.max_context < 1 || c.max_rows < 1 || c.max_seqs < 1)
      throw UsageError("--max-context, --token-budget and --max-batch must be at least 1");
    steps = c;
  }
  const nlohmann::json profile =
      kernels::bench::calibrate(backend, vm.count("quick") > 0, std::cerr,
                                vm["filter"].as<std::string>(), steps ? &*steps : nullptr);
  write_file_atomically(out, [&](std::ostream& s) { s << profile.dump(2) << "\n"; });
  std::cerr << "calibrate: wrote " << out << "\n";
  try {
    std::cerr << CalibratedCostModel(parse_profile(profile, out)).fit_report();
  } catch (const InputError& e) {
    std::cerr << "calibrate: warning: the profile cannot be fitted: " << e.what() << "\n";
  }
  return kOk;
#else
  throw std::runtime_error(
      "built without Google Benchmark (KVSCOPE_BENCH=OFF): cannot measure; "
      "reconfigure with -DKVSCOPE_BENCH=ON");
#endif
}

}  // namespace kvscope::cli
