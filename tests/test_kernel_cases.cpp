// The one table of kernel shapes (kernels/cases.h): the test's rows come out in both dtypes, and
// every benchmark row is one its family can be measured under (bench.cpp refuses, at
// registration, a row whose layout or query count its name would misstate). The full rows are
// registered here too, which kvscope-bench on a CPU never does.
#include <gtest/gtest.h>

#include <benchmark/benchmark.h>

#include <set>
#include <stdexcept>
#include <string>

#include "kernels/bench/bench.h"
#include "kernels/cases.h"

using namespace kvscope;
using namespace kvscope::kernels;

TEST(KernelCases, TestRowsComeInF32ThenBf16) {
  size_t rows = 0;
  for (const KernelCase& c : kernel_case_table()) rows += (c.uses & case_test) ? 1 : 0;
  const std::vector<KernelCase> cases = kernel_cases(case_test);
  ASSERT_EQ(cases.size(), 2 * rows);
  std::set<std::string> names;
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(cases[i].dtype, i < rows ? DType::f32 : DType::bf16) << cases[i].name;
    EXPECT_EQ(cases[i].name, cases[i % rows].name);
    if (i < rows) {
      EXPECT_TRUE(names.insert(cases[i].name).second) << cases[i].name;
    }
  }
}

TEST(KernelCases, BenchmarkRowsRegisterUnderTheirFamilies) {
  auto b = make_backend("cpu");
  bench::DeviceMeasurement m;
  m.copy_bytes_per_s = m.gemm_flops_per_s_bf16 = m.gemm_flops_per_s_f32 = 1.0;
  // kvscope-bench's listings: 46 quick rows, 60 full rows (the shipped profiles' names).
  EXPECT_EQ(kernel_cases(case_bench_quick).size(), 46u);
  EXPECT_EQ(kernel_cases(case_bench_full).size(), 60u);
  for (const bool quick : {true, false}) {
    benchmark::ClearRegisteredBenchmarks();
    EXPECT_NO_THROW(bench::register_benchmarks(*b, m, quick)) << quick;
  }
  benchmark::ClearRegisteredBenchmarks();
}

TEST(KernelCases, AnUnknownGroupIsAnError) {
  EXPECT_FALSE(kernel_cases(case_cuda_variants, "decode_issue").empty());
  EXPECT_THROW(kernel_cases(case_cuda_variants, "decode_isue"), std::logic_error);
}
