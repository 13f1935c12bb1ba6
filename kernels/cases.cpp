#include "kernels/cases.h"

#include <functional>
#include <stdexcept>
#include <utility>

namespace kvscope::kernels {
namespace {

using K = KernelOp;

// The rows of the cross-backend test (case_test). Fourier layouts: sink 4, window 8 unless said
// otherwise.
std::vector<KernelCase> test_rows() {
  std::vector<KernelCase> rows = {
      // ---- compression / reconstruction ----
      {.name = "compress_basic",
       .op = K::compress,
       .batch = 2,
       .kv_heads = 2,
       .head_dim = 16,
       .tokens = 200,
       .dims = dim_range(0, 8),
       .m = 32,
       .sink = 4,
       .window = 8},
      {.name = "compress_noncontig_dims",
       .op = K::compress,
       .kv_heads = 3,
       .head_dim = 16,
       .tokens = 150,
       .dims = {1, 3, 4, 9, 15},
       .m = 20,
       .sink = 2,
       .window = 5},
      {.name = "compress_m_exceeds_middle",
       .op = K::compress,
       .kv_heads = 2,
       .head_dim = 8,
       .tokens = 30,
       .dims = dim_range(0, 4),
       .m = 32,
       .sink = 4,
       .window = 8},
      {.name = "compress_no_middle",
       .op = K::compress,
       .kv_heads = 2,
       .head_dim = 8,
       .tokens = 9,
       .dims = dim_range(0, 4),
       .m = 16,
       .sink = 4,
       .window = 8},
      {.name = "compress_exactly_edge",
       .op = K::compress,
       .head_dim = 8,
       .tokens = 12,
       .dims = dim_range(2, 6),
       .m = 16,
       .sink = 4,
       .window = 8},
      {.name = "compress_prime_middle",
       .op = K::compress,
       .head_dim = 8,
       .tokens = 269,
       .dims = dim_range(0, 4),
       .m = 40,
       .sink = 4,
       .window = 8},  // L = 257: Bluestein path
      {.name = "compress_all_dims",
       .op = K::compress,
       .kv_heads = 2,
       .head_dim = 8,
       .tokens = 64,
       .dims = dim_range(0, 8),
       .m = 12,
       .sink = 0,
       .window = 4},
      {.name = "compress_no_dims",
       .op = K::compress,
       .kv_heads = 2,
       .head_dim = 8,
       .tokens = 40,
       .dims = {},
       .m = 12,
       .sink = 4,
       .window = 8},
      // Kept dims copied by the CUDA transform's own blocks: more 16-byte groups than its
      // steps carry (the copy's tail after the loop), and split-K blocks of unequal length.
      {.name = "compress_mostly_kept",
       .op = K::compress,
       .kv_heads = 2,
       .head_dim = 64,
       .tokens = 300,
       .dims = dim_range(0, 8),
       .m = 16,
       .sink = 4,
       .window = 8},
      {.name = "compress_uneven_splits",
       .op = K::compress,
       .kv_heads = 2,
       .head_dim = 16,
       .tokens = 2012,
       .dims = dim_range(0, 8),
       .m = 24,
       .sink = 4,
       .window = 8},
      {.name = "reconstruct_basic",
       .op = K::reconstruct,
       .batch = 2,
       .kv_heads = 2,
       .head_dim = 16,
       .tokens = 200,
       .dims = dim_range(0, 8),
       .m = 32,
       .sink = 4,
       .window = 8},
      {.name = "reconstruct_noncontig_dims",
       .op = K::reconstruct,
       .kv_heads = 3,
       .head_dim = 16,
       .tokens = 150,
       .dims = {0, 2, 7, 8, 14},
       .m = 20,
       .sink = 2,
       .window = 5},
      {.name = "reconstruct_m_exceeds_middle",
       .op = K::reconstruct,
       .kv_heads = 2,
       .head_dim = 8,
       .tokens = 30,
       .dims = dim_range(0, 4),
       .m = 32,
       .sink = 4,
       .window = 8},
      {.name = "reconstruct_no_middle",
       .op = K::reconstruct,
       .kv_heads = 2,
       .head_dim = 8,
       .tokens = 10,
       .dims = dim_range(0, 4),
       .m = 16,
       .sink = 4,
       .window = 8},
      {.name = "reconstruct_mostly_kept",
       .op = K::reconstruct,
       .kv_heads = 2,
       .head_dim = 64,
       .tokens = 300,
       .dims = dim_range(56, 64),
       .m = 16,
       .sink = 4,
       .window = 8},
      {.name = "reconstruct_prime_middle",
       .op = K::reconstruct,
       .head_dim = 8,
       .tokens = 269,
       .dims = dim_range(4, 8),
       .m = 40,
       .sink = 4,
       .window = 8},
      // ---- attention over the Fourier cache ----
      {.name = "fourier_decode_gqa",
       .op = K::fourier_attention,
       .batch = 2,
       .q_heads = 8,
       .kv_heads = 2,
       .head_dim = 32,
       .q_len = 1,
       .tokens = 300,
       .dims = dim_range(0, 16),
       .m = 24,
       .sink = 4,
       .window = 8},
      {.name = "fourier_decode_peaky",
       .op = K::fourier_attention,
       .q_heads = 4,
       .kv_heads = 4,
       .head_dim = 16,
       .q_len = 1,
       .tokens = 180,
       .dims = dim_range(0, 8),
       .m = 16,
       .sink = 4,
       .window = 8,
       .q_scale = 4.0},
      {.name = "fourier_prefill_causal",
       .op = K::fourier_attention,
       .q_heads = 4,
       .kv_heads = 2,
       .head_dim = 16,
       .q_len = 100,
       .tokens = 100,
       .dims = dim_range(0, 8),
       .m = 24,
       .sink = 4,
       .window = 8},
      {.name = "fourier_chunk_causal",
       .op = K::fourier_attention,
       .batch = 2,
       .q_heads = 2,
       .kv_heads = 1,
       .head_dim = 16,
       .q_len = 20,
       .tokens = 140,
       .dims = {0, 5, 6, 11},
       .m = 30,
       .sink = 3,
       .window = 6},
      {.name = "fourier_noncausal",
       .op = K::fourier_attention,
       .q_heads = 2,
       .kv_heads = 2,
       .head_dim = 16,
       .q_len = 8,
       .tokens = 90,
       .causal = false,
       .dims = dim_range(8, 16),
       .m = 16,
       .sink = 4,
       .window = 8},
      {.name = "fourier_no_middle",
       .op = K::fourier_attention,
       .q_heads = 4,
       .kv_heads = 2,
       .head_dim = 16,
       .q_len = 1,
       .tokens = 11,
       .dims = dim_range(0, 8),
       .m = 16,
       .sink = 4,
       .window = 8},
      {.name = "fourier_m_exceeds_middle",
       .op = K::fourier_attention,
       .q_heads = 4,
       .kv_heads = 1,
       .head_dim = 16,
       .q_len = 1,
       .tokens = 40,
       .dims = dim_range(0, 8),
       .m = 64,
       .sink = 4,
       .window = 8},
      {.name = "fourier_prime_middle",
       .op = K::fourier_attention,
       .q_heads = 2,
       .kv_heads = 1,
       .head_dim = 16,
       .q_len = 3,
       .tokens = 269,
       .dims = dim_range(0, 8),
       .m = 40,
       .sink = 4,
       .window = 8},
      {.name = "fourier_decode_tiled_heads_shared",
       .op = K::fourier_attention,
       .batch = 3,
       .q_heads = 12,
       .kv_heads = 3,
       .head_dim = 64,
       .q_len = 1,
       .tokens = 403,
       .dims = dim_range(0, 32),
       .m = 40,
       .sink = 4,
       .window = 8},
      {.name = "fourier_decode_tiled_group8",
       .op = K::fourier_attention,
       .q_heads = 16,
       .kv_heads = 2,
       .head_dim = 64,
       .q_len = 1,
       .tokens = 150,
       .dims = dim_range(32, 64),
       .m = 24,
       .sink = 0,
       .window = 5},
      // ---- exact attention ----
      {.name = "attention_decode_gqa",
       .op = K::attention,
       .batch = 2,
       .q_heads = 8,
       .kv_heads = 2,
       .head_dim = 32,
       .q_len = 1,
       .tokens = 257},
      {.name = "attention_prefill_causal_gqa",
       .op = K::attention,
       .q_heads = 4,
       .kv_heads = 2,
       .head_dim = 32,
       .q_len = 150,
       .tokens = 150},
      {.name = "attention_prefill_mha_peaky",
       .op = K::attention,
       .batch = 2,
       .q_heads = 3,
       .kv_heads = 3,
       .head_dim = 16,
       .q_len = 70,
       .tokens = 70,
       .q_scale = 4.0},
      {.name = "attention_chunk_causal",
       .op = K::attention,
       .q_heads = 4,
       .kv_heads = 1,
       .head_dim = 16,
       .q_len = 33,
       .tokens = 100},
      {.name = "attention_noncausal",
       .op = K::attention,
       .q_heads = 2,
       .kv_heads = 1,
       .head_dim = 16,
       .q_len = 20,
       .tokens = 50,
       .causal = false},
      {.name = "attention_one_token",
       .op = K::attention,
       .q_heads = 2,
       .kv_heads = 2,
       .head_dim = 8,
       .q_len = 1,
       .tokens = 1},
      // ---- GEMM (CCV linear layer, dense layers) ----
      {.name = "gemm_decode_row_bias",
       .op = K::gemm,
       .rows = 1,
       .out = 96,
       .in = 128,
       .bias = true},
      {.name = "gemm_16_rows_bias", .op = K::gemm, .rows = 16, .out = 64, .in = 80, .bias = true},
      {.name = "gemm_odd_no_bias", .op = K::gemm, .rows = 37, .out = 45, .in = 33},
      // ---- cosine checks ----
      {.name = "cosine_rows", .op = K::cosine_rows, .rows = 33, .in = 100},
      {.name = "cosine_rows_long", .op = K::cosine_rows, .rows = 4, .in = 3000},
      {.name = "cosine_whole", .op = K::cosine_whole, .rows = 33, .in = 100},
  };
  for (KernelCase& c : rows) c.uses = case_test;
  return rows;
}

// One axis of a sweep: the values it takes and how a row takes one.
struct Axis {
  std::function<void(KernelCase&, int64_t)> set;
  std::vector<int64_t> values;
};

Axis along(int64_t KernelCase::*field, std::vector<int64_t> values) {
  return {[field](KernelCase& c, int64_t v) { c.*field = v; }, std::move(values)};
}
// 1: bf16, 0: f32 (the benchmarks' "bf16" axis).
Axis bf16(std::vector<int64_t> values) {
  return {[](KernelCase& c, int64_t v) { c.dtype = v ? DType::bf16 : DType::f32; },
          std::move(values)};
}
// A causal prefill: every token is a query.
Axis prefill_tokens(std::vector<int64_t> values) {
  return {[](KernelCase& c, int64_t v) { c.tokens = c.q_len = v; }, std::move(values)};
}
Axis mib(std::vector<int64_t> values) {
  return {[](KernelCase& c, int64_t v) { c.bytes = v << 20; }, std::move(values)};
}
Axis ops(std::vector<KernelOp> values) {
  std::vector<int64_t> index;
  for (size_t i = 0; i < values.size(); ++i) index.push_back(static_cast<int64_t>(i));
  return {[values](KernelCase& c, int64_t i) { c.op = values[static_cast<size_t>(i)]; },
          std::move(index)};
}

// Appends `base` at every combination of the axes' values, the first axis varying fastest: the
// order of Google Benchmark's ArgsProduct, which the benchmarks' listings were first written
// with and keep.
void sweep(std::vector<KernelCase>& table, unsigned uses, const KernelCase& base,
           const std::vector<Axis>& axes) {
  std::vector<size_t> at(axes.size(), 0);
  for (;;) {
    KernelCase c = base;
    c.uses = uses;
    for (size_t a = 0; a < axes.size(); ++a) axes[a].set(c, axes[a].values[at[a]]);
    table.push_back(std::move(c));
    size_t a = 0;
    for (; a < axes.size(); ++a) {
      if (++at[a] < axes[a].values.size()) break;
      at[a] = 0;
    }
    if (a == axes.size()) return;
  }
}

// A benchmark's Fourier row: the lowest `count` dims compressed to m coefficients, the
// benchmarks' sink and window.
KernelCase fourier_row(KernelOp op, int64_t head_dim, int64_t count, int64_t m) {
  KernelCase c;
  c.op = op;
  c.head_dim = head_dim;
  c.dims = dim_range(0, count);
  c.m = m;
  c.sink = kBenchFourierSink;
  c.window = kBenchFourierWindow;
  c.dtype = DType::bf16;
  return c;
}

KernelCase attention_row(int64_t q_heads, int64_t kv_heads, int64_t head_dim) {
  KernelCase c;
  c.op = K::attention;
  c.q_heads = q_heads;
  c.kv_heads = kv_heads;
  c.head_dim = head_dim;
  c.dtype = DType::bf16;
  return c;
}

KernelCase fourier_attention_row(int64_t q_heads, int64_t kv_heads, int64_t head_dim, int64_t count,
                                 int64_t m) {
  KernelCase c = fourier_row(K::fourier_attention, head_dim, count, m);
  c.q_heads = q_heads;
  c.kv_heads = kv_heads;
  return c;
}

KernelCase gemm_row(int64_t rows, int64_t out, int64_t in, bool bias) {
  KernelCase c;
  c.op = K::gemm;
  c.rows = rows;
  c.out = out;
  c.in = in;
  c.bias = bias;
  c.dtype = DType::bf16;
  return c;
}

KernelCase cosine_row(KernelOp op, int64_t in) {
  KernelCase c;
  c.op = op;
  c.in = in;
  return c;
}

KernelCase named(std::string name, KernelCase c) {
  c.name = std::move(name);
  return c;
}

// kvscope-bench's rows (bench.h names their families and axes). Quick: sizes for CI and a
// 2-core CPU. Full: the issue's targets.
void bench_rows(std::vector<KernelCase>& t) {
  const unsigned Q = case_bench_quick, F = case_bench_full;
  using C = KernelCase;
  sweep(t, Q, {.op = K::copy}, {mib({16, 32, 64})});
  sweep(t, F, {.op = K::copy}, {mib({64, 512, 2048})});

  // Spectral compression and reconstruction: the issue's target is 64 KV-head-seqs x N=32768 x
  // 64 of 128 dims -> M=256.
  for (const K op : {K::compress, K::reconstruct}) {
    sweep(t, Q, fourier_row(op, 64, 32, 64),
          {along(&C::kv_heads, {2, 8}), along(&C::tokens, {1024, 4096})});
    sweep(t, F, fourier_row(op, 128, 64, 256),
          {along(&C::kv_heads, {8, 64}), along(&C::tokens, {8192, 32768})});
  }

  // Attention over the Fourier cache: the issue's target is batch 8, 32 q / 8 kv heads, head dim
  // 128, N=32768, lower 64 dims compressed to M=256.
  sweep(t, Q, fourier_attention_row(8, 2, 64, 32, 64),
        {along(&C::batch, {1, 4}), along(&C::tokens, {1024, 4096, 16384})});
  sweep(t, F, fourier_attention_row(32, 8, 128, 64, 256),
        {along(&C::batch, {1, 8}), along(&C::tokens, {4096, 32768})});
  sweep(t, Q, fourier_attention_row(4, 2, 64, 32, 64), {prefill_tokens({256, 512, 1024})});
  sweep(t, F, fourier_attention_row(32, 8, 128, 64, 256), {prefill_tokens({1024, 4096})});

  // Exact attention (T_sa): decode at the Fourier target's shape, prefill 32 heads x 128 causal
  // up to N=16384.
  sweep(t, Q, attention_row(8, 2, 64),
        {along(&C::batch, {1, 4}), along(&C::tokens, {1024, 4096, 16384})});
  sweep(t, F, attention_row(32, 8, 128),
        {along(&C::batch, {1, 8}), along(&C::tokens, {4096, 32768})});
  sweep(t, Q, attention_row(4, 4, 64), {prefill_tokens({256, 512, 1024})});
  sweep(t, F, attention_row(32, 32, 128), {prefill_tokens({1024, 4096, 16384})});

  // GEMM (T_l and the dense layers): the CCV layer 4096 -> 2048 from decode (N=1) to N=16384,
  // and Llama-3-8B-sized dense layers.
  sweep(t, Q, gemm_row(0, 512, 1024, true), {along(&C::rows, {1, 16, 256})});
  sweep(t, Q, gemm_row(0, 1536, 512, false), {along(&C::rows, {1, 64})});
  sweep(t, F, gemm_row(0, 2048, 4096, true),
        {along(&C::rows, {1, 4, 16, 64, 256, 1024, 4096, 16384})});
  sweep(t, F, gemm_row(0, 0, 4096, false),
        {along(&C::rows, {1, 16, 512, 4096}), along(&C::out, {6144, 4096, 28672})});
  sweep(t, F, gemm_row(0, 4096, 14336, false), {along(&C::rows, {1, 16, 512, 4096})});

  // Cosine checks (T_cos): up to 65536 x 2048.
  for (const K op : {K::cosine_rows, K::cosine_whole}) {
    sweep(t, Q, cosine_row(op, 512), {bf16({0, 1}), along(&C::rows, {256, 1024, 4096})});
    sweep(t, F, cosine_row(op, 2048), {bf16({0, 1}), along(&C::rows, {4096, 16384, 65536})});
  }
}

// kvscope-cuda-variants' rows, in groups it picks by name (its main says which variants each
// group runs): the issue's target shapes and those of the PyTorch peer scripts
// (kernels/cuda/bench/torch_*.py).
void cuda_variant_rows(std::vector<KernelCase>& t) {
  const unsigned V = case_cuda_variants;
  using C = KernelCase;
  const Axis transforms = ops({K::compress, K::reconstruct});
  // The issue's layout: 64 KV heads x 32768 x 128, lower 64 dims -> M = 256.
  sweep(t, V, named("fourier_issue", fourier_row(K::compress, 128, 64, 256)),
        {along(&C::kv_heads, {64}), along(&C::tokens, {32768}), transforms});
  // The peers' [64, 32768, 64] all-compressed shape (their rfft + slice peer is f32).
  sweep(t, V, named("fourier_torch_peer", fourier_row(K::compress, 64, 64, 256)),
        {along(&C::kv_heads, {64}), along(&C::tokens, {32768}), bf16({1, 0}), transforms});
  // M = 64 and 1024 for the trend.
  sweep(t, V, named("fourier_m_trend", fourier_row(K::compress, 64, 64, 0)),
        {along(&C::kv_heads, {64}), along(&C::tokens, {32768}), along(&C::m, {64, 1024}),
         transforms});
  // The two head dims above, for the mma.sync transforms (what a device without sm_90a runs).
  sweep(t, V, named("fourier_head_dims", fourier_row(K::compress, 0, 64, 256)),
        {along(&C::kv_heads, {64}), along(&C::tokens, {32768}), along(&C::head_dim, {128, 64}),
         transforms});

  // Decode over the Fourier cache (and exact attention at the same shape): the issue's batch of
  // 8 and one sequence, 32 q / 8 kv heads x 128, lower 64 dims -> M = 256 or 128.
  const C issue_decode = fourier_attention_row(32, 8, 128, 64, 256);
  sweep(t, V, named("decode_issue", issue_decode),
        {along(&C::batch, {8}), along(&C::tokens, {4096, 32768, 131072})});
  sweep(t, V, named("decode_issue_m128", issue_decode),
        {along(&C::batch, {8}), along(&C::tokens, {32768}), along(&C::m, {128})});
  // Multi-head (32 kv heads), nothing compressed: the exact decode only.
  sweep(t, V, named("decode_mha", fourier_attention_row(32, 32, 128, 0, 0)),
        {along(&C::batch, {8}), along(&C::tokens, {32768})});
  sweep(t, V, named("decode_one_sequence", issue_decode), {along(&C::tokens, {4096, 32768})});
  sweep(t, V, named("decode_one_sequence_m128", issue_decode),
        {along(&C::tokens, {32768}), along(&C::m, {128})});

  // Causal prefill, 32 q = kv heads x 128.
  sweep(t, V, named("prefill_exact", attention_row(32, 32, 128)),
        {prefill_tokens({1024, 4096, 16384})});
  sweep(t, V, named("prefill_fourier", fourier_attention_row(32, 32, 128, 64, 256)),
        {prefill_tokens({4096, 16384})});

  // The CCV layer 4096 -> 2048 at decode and prefill rows; llama-3.1-8b's decode layers at one
  // row: QKV, MLP up and gate, down.
  sweep(t, V, named("gemm_ccv_decode", gemm_row(0, 2048, 4096, true)),
        {along(&C::rows, {1, 2, 4, 8, 16})});
  sweep(t, V, named("gemm_llama_decode", gemm_row(1, 0, 4096, true)),
        {along(&C::out, {6144, 28672})});
  sweep(t, V, named("gemm_llama_decode", gemm_row(1, 4096, 14336, true)), {});
  sweep(t, V, named("gemm_ccv_prefill", gemm_row(0, 2048, 4096, true)),
        {along(&C::rows, {1024, 16384, 65536})});

  // The CCV check over 4096 and 65536 cached vectors of 2048.
  KernelCase cosine = named("cosine_ccv", cosine_row(K::cosine_rows, 2048));
  cosine.dtype = DType::bf16;
  sweep(t, V, cosine, {ops({K::cosine_rows, K::cosine_whole}), along(&C::rows, {4096, 65536})});
}

std::vector<KernelCase> make_table() {
  std::vector<KernelCase> t = test_rows();
  bench_rows(t);
  cuda_variant_rows(t);
  return t;
}

}  // namespace

std::vector<int64_t> dim_range(int64_t lo, int64_t hi) {
  std::vector<int64_t> d;
  for (int64_t i = lo; i < hi; ++i) d.push_back(i);
  return d;
}

const std::vector<KernelCase>& kernel_case_table() {
  static const std::vector<KernelCase> table = make_table();
  return table;
}

std::vector<KernelCase> kernel_cases(CaseUse use) {
  std::vector<KernelCase> out;
  const auto& table = kernel_case_table();
  if (use == case_test) {
    for (const DType t : {DType::f32, DType::bf16})
      for (const KernelCase& c : table)
        if (c.uses & use) {
          out.push_back(c);
          out.back().dtype = t;
        }
    return out;
  }
  for (const KernelCase& c : table)
    if (c.uses & use) out.push_back(c);
  return out;
}

std::vector<KernelCase> kernel_cases(CaseUse use, std::string_view name) {
  std::vector<KernelCase> out;
  for (const KernelCase& c : kernel_case_table())
    if ((c.uses & use) && c.name == name) out.push_back(c);
  if (out.empty())
    throw std::logic_error("kernel_cases: no rows named '" + std::string(name) + "'");
  return out;
}

}  // namespace kvscope::kernels
