// The one table of kernel shapes: the cross-backend test (tests/test_kernels_backends.cpp), the
// calibration benchmarks (kernels/bench/bench.cpp) and the CUDA variant comparisons
// (kernels/cuda/bench/variants.cpp) all draw their shapes from it, as ggml's test-backend-ops
// serves its test and perf modes from one list. Each row carries its operation, its shape and the
// sets it belongs to (CaseUse): a test row, a benchmark row, or both.
//
// The sets need different sizes, so most rows belong to one set: the test's rows are small (its
// float64 reference is O(N^2) direct sums and CI has 2 cores), the quick benchmarks' fit a 2-core
// CPU, the full ones are the GPU targets. A benchmark row's name in a profile is its
// family and its shape axes (bench.h), which model/calibration.cpp parses back: a row changed here
// changes what the shipped profiles in results/profiles/ can be compared with.
//
// The step benchmarks (kernels/bench/step_bench.cpp) are not in the table: their rows are grids
// over one model's own shapes, made when a model is named.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/backend.h"

namespace kvscope::kernels {

enum class KernelOp {
  copy,
  compress,
  reconstruct,
  fourier_attention,
  attention,
  gemm,
  cosine_rows,
  cosine_whole
};

// The sets a row belongs to (bits of KernelCase::uses).
enum CaseUse : unsigned {
  case_test = 1u << 0,           // every backend against the float64 reference, in f32 and bf16
  case_bench_quick = 1u << 1,    // kvscope-bench --quick, `kvscope calibrate --quick`: CI, CPUs
  case_bench_full = 1u << 2,     // kvscope-bench, `kvscope calibrate`: the GPU targets
  case_cuda_variants = 1u << 3,  // kvscope-cuda-variants, grouped by name
};

struct KernelCase {
  // Test rows: the test's name. Variant rows: the group kvscope-cuda-variants picks them by.
  std::string name = {};
  KernelOp op = KernelOp::copy;
  // attention / Fourier: [batch, heads, tokens, head_dim]; queries are the last q_len tokens.
  int64_t batch = 1, q_heads = 1, kv_heads = 1, head_dim = 16, q_len = 1, tokens = 1;
  bool causal = true;
  std::vector<int64_t> dims = {};  // compressed head dims
  int64_t m = 0, sink = 0, window = 0;
  // gemm: Y[rows, out] = X[rows, in] W^T (+ b);  cosine: rows x in
  int64_t rows = 0, out = 0, in = 0;
  bool bias = false;
  double q_scale = 1.0;  // larger query norms make the softmax peaky
  int64_t bytes = 0;     // copy
  DType dtype = DType::f32;
  unsigned uses = 0;  // CaseUse bits
};

// The benchmarks' Fourier layouts keep this many sink and window tokens exactly (the calibration
// profile records them: bench.cpp's "kvscope" block).
constexpr int64_t kBenchFourierSink = 4;
constexpr int64_t kBenchFourierWindow = 64;

// [lo, hi)
std::vector<int64_t> dim_range(int64_t lo, int64_t hi);

// Every row, in table order.
const std::vector<KernelCase>& kernel_case_table();

// The rows of one set, in table order. The test's rows are listed once in the table and come out
// twice, every row in f32 and then every row in bf16.
std::vector<KernelCase> kernel_cases(CaseUse use);

// The rows of one set named `name` (kvscope-cuda-variants' groups); throws if there are none.
std::vector<KernelCase> kernel_cases(CaseUse use, std::string_view name);

}  // namespace kvscope::kernels
