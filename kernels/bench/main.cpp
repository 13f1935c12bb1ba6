// kvscope-bench: the kernel benchmarks as a Google Benchmark binary.
//   kvscope-bench [--backend cpu|cuda] [--quick] [--benchmark_* flags]
// The backend may also come from KVSCOPE_BACKEND (the flag wins); default cpu. Device
// measurements (copy bandwidth, GEMM peak) print on stderr first; the floors use them.
// For a calibration profile use `kvscope calibrate`, which runs the same families.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "kernels/bench/bench.h"

int main(int argc, char** argv) {
  std::string backend = std::getenv("KVSCOPE_BACKEND") ? std::getenv("KVSCOPE_BACKEND") : "cpu";
  bool quick = false;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a.rfind("--backend=", 0) == 0) {
      backend = a.substr(10);
    } else if (a == "--backend" && i + 1 < argc) {
      backend = argv[++i];
    } else if (a == "--help" || a == "-h") {
      std::cout << "usage: kvscope-bench [--backend cpu|cuda] [--quick] [--benchmark_* flags]\n";
      benchmark::PrintDefaultHelp();
      return 0;
    } else {
      rest.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 2;
  try {
    auto b = kvscope::kernels::make_backend(backend);
    const auto m = kvscope::kernels::bench::measure_device(*b, quick);
    std::cerr << kvscope::kernels::bench::device_block(*b, m).dump(2) << "\n";
    kvscope::kernels::bench::register_benchmarks(*b, m, quick);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
  } catch (const std::exception& e) {
    std::cerr << "kvscope-bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
