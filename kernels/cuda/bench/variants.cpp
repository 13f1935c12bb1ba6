// kvscope-cuda-variants: the CUDA backend's production paths beside its reference paths (cuFFT,
// cuBLASLt, the kernels a device without sm_90a runs) and the decode chain with launches left
// out, at the target shapes and at the shapes of the PyTorch peer scripts
// (kernels/cuda/bench/torch_*.py; the shapes are the case_cuda_variants rows of kernels/cases.h),
// so kernels/BENCHMARKS.md can say which is faster and by how much. Rows carry
// bytes, the floor (bytes / measured copy bandwidth, or FLOPs / measured GEMM peak when larger)
// and the percentage of it reached. The calibration profile comes from kvscope-bench /
// `kvscope calibrate`; this binary only compares variants.
//   kvscope-cuda-variants [--benchmark_* flags]
#include <benchmark/benchmark.h>

#include <cmath>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/bench/bench.h"
#include "kernels/cases.h"
#include "kernels/cuda/cuda_backend.h"

using namespace kvscope;
using namespace kvscope::kernels;

namespace {

bench::DeviceMeasurement g_dev;
using bench::random_buffer;

// Times fn, which makes `calls` calls of the measured operation (bytes and flops are one call's),
// and reports one call's time.
void run(benchmark::State& st, Backend& b, const std::function<void()>& fn, double bytes,
         double flops, DType t, int64_t calls = 1) {
  fn();
  b.synchronize();
  double total = 0;
  for (auto _ : st) {
    const double ms = b.time_ms(fn, 0, 1) / double(calls);
    st.SetIterationTime(ms / 1e3);
    total += ms;
  }
  const double mean = total / double(std::max<int64_t>(st.iterations(), 1));
  const double floor_ms = 1e3 * std::max(bytes / g_dev.copy_bytes_per_s,
                                         flops / (t == DType::f32 ? g_dev.gemm_flops_per_s_f32
                                                                  : g_dev.gemm_flops_per_s_bf16));
  st.counters["GBps"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["floor_ms"] = floor_ms;
  st.counters["floor_pct"] = 100.0 * floor_ms / mean;
}

// Each row's backend: the defaults, with the row's axes applied by the caller.
std::unique_ptr<Backend> backend(const CudaOptions& o = {}) { return make_cuda_backend_with(o); }

// The small-rows GEMM of a row's axis cublaslt.
CudaOptions::SmallGemm small_gemm(int64_t cublaslt) {
  return cublaslt ? CudaOptions::SmallGemm::cublaslt : CudaOptions::SmallGemm::own;
}

// args: cufft, f32, heads, tokens, head_dim, cdims, m, reconstruct, sm90a (CudaOptions::
// sm90a_kernels: 0 runs the mma.sync transforms a device without sm_90a runs)
void bm_fourier(benchmark::State& st) {
  CudaOptions o;
  if (st.range(0)) o.fourier = CudaOptions::Fourier::cufft;
  o.sm90a_kernels = st.range(8) != 0;
  auto b = backend(o);
  const DType t = st.range(1) ? DType::f32 : DType::bf16;
  const KvShape s{1, st.range(2), st.range(3), st.range(4), t};
  const FourierLayout f = bench::layout_of(st.range(5), st.range(6));
  const bool recon = st.range(7) != 0;
  auto kv = random_buffer(*b, t, size_t(s.elements()), 1);
  FourierTensor ft = alloc_fourier_tensor(*b, s, f);
  b->fourier_compress(s, f, *kv, ft);
  const FourierBufferBytes n = fourier_buffer_bytes(s, f);
  const double bytes = double(s.elements() * dtype_bytes(t)) + double(n.kept + n.edge + n.coeffs);
  run(
      st, *b,
      [&] {
        if (recon)
          b->fourier_reconstruct(s, f, ft, *kv);
        else
          b->fourier_compress(s, f, *kv, ft);
      },
      bytes, 0.0, t);
}

// args: fourier (0 exact, 1 Fourier), batch, q_heads, kv_heads, head_dim, tokens, cdims, m, skip
// (CudaOptions::fourier_decode_skip: launches left out, for the time each adds to the chain; the
// output is wrong)
void bm_decode(benchmark::State& st) {
  CudaOptions opt;
  opt.fourier_decode_skip = static_cast<unsigned>(st.range(8));
  auto b = backend(opt);
  const DType t = DType::bf16;
  AttentionArgs a{st.range(1), st.range(2), st.range(3), st.range(4), 1, st.range(5), true, t};
  const size_t qn = size_t(a.batch * a.q_heads * a.head_dim);
  auto q = random_buffer(*b, t, qn, 2), o = b->alloc(qn * 2);
  const KvShape s{a.batch, a.kv_heads, a.tokens, a.head_dim, t};
  if (st.range(0)) {
    const FourierLayout f = bench::layout_of(st.range(6), st.range(7));
    FourierTensor k = alloc_fourier_tensor(*b, s, f), v = alloc_fourier_tensor(*b, s, f);
    auto kv = random_buffer(*b, t, size_t(s.elements()), 3);
    b->fourier_compress(s, f, *kv, k);
    b->fourier_compress(s, f, *kv, v);
    kv.reset();
    const FourierBufferBytes n = fourier_buffer_bytes(s, f);
    const double bytes = 2.0 * double(n.kept + n.edge + n.coeffs) + 2.0 * double(qn) * 2;
    run(
        st, *b, [&] { b->fourier_attention(a, f, *q, k, v, *o); }, bytes, 0.0, t);
  } else {
    auto k = random_buffer(*b, t, size_t(s.elements()), 4);
    auto v = random_buffer(*b, t, size_t(s.elements()), 5);
    const double bytes = 2.0 * double(s.elements()) * 2 + 2.0 * double(qn) * 2;
    run(
        st, *b, [&] { b->attention(a, *q, *k, *v, *o); }, bytes, 0.0, t);
  }
}

// args: fourier, heads, tokens, m, sm90a (CudaOptions::sm90a_kernels: 0 runs the mma.sync
// prefill a device without sm_90a runs; the exact kernel only)
// (32 q heads = kv heads, head_dim 128, causal prefill)
void bm_prefill(benchmark::State& st) {
  CudaOptions opt;
  opt.sm90a_kernels = st.range(4) != 0;
  auto b = backend(opt);
  const DType t = DType::bf16;
  AttentionArgs a{1, st.range(1), st.range(1), 128, st.range(2), st.range(2), true, t};
  const size_t n = size_t(a.q_heads * a.tokens * 128);
  auto q = random_buffer(*b, t, n, 6), o = b->alloc(n * 2);
  const double flops = 4.0 * double(a.tokens) * double(a.tokens) * 128.0 * double(a.q_heads) / 2;
  const KvShape s{1, a.kv_heads, a.tokens, 128, t};
  if (st.range(0)) {
    const FourierLayout f = bench::layout_of(64, st.range(3));
    FourierTensor k = alloc_fourier_tensor(*b, s, f), v = alloc_fourier_tensor(*b, s, f);
    auto kv = random_buffer(*b, t, n, 7);
    b->fourier_compress(s, f, *kv, k);
    b->fourier_compress(s, f, *kv, v);
    run(
        st, *b, [&] { b->fourier_attention(a, f, *q, k, v, *o); }, 0.0, flops, t);
  } else {
    auto k = random_buffer(*b, t, n, 8), v = random_buffer(*b, t, n, 9);
    run(
        st, *b, [&] { b->attention(a, *q, *k, *v, *o); }, 4.0 * double(n), flops, t);
  }
}

// args: cublaslt, rows, out, in, read_flush (L2 flushed by a read pass instead of a memset)
void bm_gemm(benchmark::State& st) {
  CudaOptions o;
  o.small_gemm = small_gemm(st.range(0));
  if (st.range(4)) o.l2_flush = CudaOptions::L2Flush::read;
  auto b = backend(o);
  const GemmArgs g{st.range(1), st.range(2), st.range(3), true, DType::bf16};
  auto x = random_buffer(*b, g.dtype, size_t(g.rows * g.in), 10);
  auto w = random_buffer(*b, g.dtype, size_t(g.out * g.in), 11);
  auto bias = random_buffer(*b, g.dtype, size_t(g.out), 12);
  auto y = b->alloc(size_t(g.rows * g.out) * 2);
  const double bytes = 2.0 * double(g.rows * g.in + g.out * g.in + g.out + g.rows * g.out);
  const double flops = 2.0 * double(g.rows) * double(g.out) * double(g.in);
  run(
      st, *b, [&] { b->gemm(g, *x, *w, bias.get(), *y); }, bytes, flops, g.dtype);
}

// The same layer as a decode step runs it: `copies` calls back to back in one stream, each on its
// own weights (together more than twice the L2, so every call reads its W from HBM), timed as
// one interval and divided by the count. One event pair around one launch adds ~3 us to a
// ~10 us kernel (kernels/BENCHMARKS.md); back to back, each launch's latency overlaps the
// previous kernel, as in a model step; kvscope's GEMVs are programmatic dependent launches, so
// each one's blocks may also start and load their weights while the previous one finishes.
// read_flush: the L2 flushed by a read pass instead of a memset, whose dirty lines the first
// calls would otherwise write back while they read.
// args: cublaslt, rows, out, in, copies, read_flush
void bm_gemm_stream(benchmark::State& st) {
  CudaOptions o;
  o.small_gemm = small_gemm(st.range(0));
  if (st.range(5)) o.l2_flush = CudaOptions::L2Flush::read;
  auto b = backend(o);
  const GemmArgs g{st.range(1), st.range(2), st.range(3), true, DType::bf16};
  const int64_t copies = st.range(4);
  auto x = random_buffer(*b, g.dtype, size_t(g.rows * g.in), 10);
  std::vector<std::unique_ptr<DeviceBuffer>> w, bias;
  for (int64_t i = 0; i < copies; ++i) {
    w.push_back(random_buffer(*b, g.dtype, size_t(g.out * g.in), uint64_t(100 + i)));
    bias.push_back(random_buffer(*b, g.dtype, size_t(g.out), uint64_t(200 + i)));
  }
  auto y = b->alloc(size_t(g.rows * g.out) * 2);
  const double bytes = 2.0 * double(g.rows * g.in + g.out * g.in + g.out + g.rows * g.out);
  const double flops = 2.0 * double(g.rows) * double(g.out) * double(g.in);
  run(
      st, *b,
      [&] {
        for (int64_t i = 0; i < copies; ++i)
          b->gemm(g, *x, *w[size_t(i)], bias[size_t(i)].get(), *y);
      },
      bytes, flops, g.dtype, copies);
}

// args: bytes, copies, pdl, read_flush: `copies` reads of `bytes` each back to back, one per
// buffer (cuda_read_probe, the tile GEMV's geometry without its arithmetic), one event pair,
// divided by `copies`: the ceiling of gemm_stream's rows.
void bm_read_stream(benchmark::State& st) {
  CudaOptions o;
  if (st.range(3)) o.l2_flush = CudaOptions::L2Flush::read;
  auto b = backend(o);
  const auto bytes = static_cast<size_t>(st.range(0));
  std::vector<std::unique_ptr<DeviceBuffer>> bufs;
  for (int64_t i = 0; i < st.range(1); ++i)
    bufs.push_back(random_buffer(*b, DType::bf16, bytes / 2, uint64_t(300 + i)));
  run(
      st, *b,
      [&] {
        for (const auto& buf : bufs) cuda_read_probe(*b, *buf, bytes, st.range(2) != 0);
      },
      double(bytes), 0.0, DType::bf16, st.range(1));
}

// args: whole, rows, dim
void bm_cosine(benchmark::State& st) {
  auto b = backend();
  const int64_t rows = st.range(1), dim = st.range(2);
  auto x = random_buffer(*b, DType::bf16, size_t(rows * dim), 13);
  auto y = random_buffer(*b, DType::bf16, size_t(rows * dim), 14);
  auto out = b->alloc(size_t(rows) * 4);
  run(
      st, *b,
      [&] {
        if (st.range(0))
          b->cosine_whole(rows, dim, DType::bf16, *x, *y, *out);
        else
          b->cosine_rows(rows, dim, DType::bf16, *x, *y, *out);
      },
      4.0 * double(rows * dim), 0.0, DType::bf16);
}

// The shapes are the case_cuda_variants rows of kernels/cases.h, by group; the variants each
// group runs are here. A row the family's arguments cannot describe (its bm_ function fixes the
// rest) is refused rather than measured under a name that says otherwise.
void require(bool ok, const KernelCase& k, const char* what) {
  if (!ok) throw std::logic_error("kernel_cases: row of '" + k.name + "': " + what);
}

int64_t cdims(const KernelCase& k) {
  const auto n = static_cast<int64_t>(k.dims.size());
  const FourierLayout f = bench::layout_of(n, k.m);
  require(k.dims == f.compressed_dims && k.sink == f.sink && k.window == f.window, k,
          "not the benchmarks' Fourier layout (bench::layout_of)");
  return n;
}

std::vector<KernelCase> group(const char* name) { return kernel_cases(case_cuda_variants, name); }

template <class Reg>
void register_rows(Reg reg) {
  // The transforms: fused (sm90a:1 the warpgroup kernels, 0 the mma.sync ones a device without
  // sm_90a runs) beside cuFFT.
  const std::vector<std::string> fa{"cufft", "f32", "heads", "tokens", "head_dim",
                                    "cdims", "m",   "recon", "sm90a"};
  auto fourier = [&](const char* shapes, const std::vector<int64_t>& cufft, int64_t sm90a) {
    auto* r = reg("fourier", bm_fourier, fa);
    for (const KernelCase& k : group(shapes)) {
      require(k.batch == 1, k, "batch is not 1 (heads stands for batch x kv_heads)");
      for (const int64_t f : cufft)
        r->Args({f, k.dtype == DType::f32 ? 1 : 0, k.kv_heads, k.tokens, k.head_dim, cdims(k), k.m,
                 k.op == KernelOp::reconstruct ? 1 : 0, sm90a});
    }
  };
  fourier("fourier_issue", {0, 1}, 1);
  fourier("fourier_torch_peer", {0, 1}, 1);
  fourier("fourier_m_trend", {0}, 1);
  fourier("fourier_head_dims", {0}, 0);
  fourier("fourier_m_trend", {0}, 0);

  // Decode over the Fourier cache (fourier:1) beside exact attention at the same shape
  // (fourier:0), then with launches left out of the Fourier chain (CudaOptions::
  // fourier_decode_skip: 1 P, 2 middle, 4 sink and window, 8 finish): what each adds to the time.
  auto* decode =
      reg("decode", bm_decode,
          {"fourier", "batch", "q_heads", "kv_heads", "head_dim", "tokens", "cdims", "m", "skip"});
  auto decode_rows = [&](const std::vector<KernelCase>& shapes, const std::vector<int64_t>& paths,
                         int64_t skip) {
    for (const KernelCase& k : shapes) {
      require(k.op == KernelOp::fourier_attention && k.q_len == 1 && k.dtype == DType::bf16, k,
              "not a bf16 Fourier decode");
      for (const int64_t p : paths)
        decode->Args(
            {p, k.batch, k.q_heads, k.kv_heads, k.head_dim, k.tokens, cdims(k), k.m, skip});
    }
  };
  decode_rows(group("decode_issue"), {0, 1}, 0);
  decode_rows(group("decode_issue_m128"), {1}, 0);
  decode_rows(group("decode_mha"), {0}, 0);
  decode_rows(group("decode_one_sequence"), {0, 1}, 0);
  decode_rows(group("decode_one_sequence_m128"), {1}, 0);
  std::vector<KernelCase> chain;
  for (const KernelCase& k : group("decode_issue"))
    if (k.tokens == 32768) chain.push_back(k);
  for (const int64_t skip : {1, 2, 4, 8, 12, 13}) decode_rows(chain, {1}, skip);

  // Causal prefill: exact (sm90a:1 the warpgroup kernel, 0 the mma.sync one) and Fourier.
  auto* prefill = reg("prefill", bm_prefill, {"fourier", "heads", "tokens", "m", "sm90a"});
  auto prefill_rows = [&](const char* shapes, int64_t sm90a) {
    for (const KernelCase& k : group(shapes)) {
      const bool f = k.op == KernelOp::fourier_attention;
      require(k.batch == 1 && k.q_heads == k.kv_heads && k.head_dim == 128 && k.q_len == k.tokens &&
                  k.dtype == DType::bf16 && (!f || cdims(k) == 64),
              k, "not a bf16 prefill of q = kv heads x 128 (Fourier: lower 64 dims)");
      prefill->Args({f ? 1 : 0, k.q_heads, k.tokens, k.m, sm90a});
    }
  };
  prefill_rows("prefill_exact", 1);
  prefill_rows("prefill_exact", 0);
  prefill_rows("prefill_fourier", 1);

  // GEMM: kvscope's own small-rows GEMV beside cuBLASLt (cublaslt), the L2 flushed by a memset
  // or by a read pass (read_flush).
  auto gemm_row = [](const KernelCase& k) {
    require(k.op == KernelOp::gemm && k.bias && k.dtype == DType::bf16, k,
            "not a bf16 GEMM with bias");
    return k;
  };
  auto* gemm = reg("gemm", bm_gemm, {"cublaslt", "rows", "out", "in", "read_flush"});
  auto gemm_rows = [&](const std::vector<KernelCase>& shapes, const std::vector<int64_t>& lt,
                       int64_t read_flush) {
    for (const KernelCase& k : shapes)
      for (const int64_t l : lt) gemm->Args({l, gemm_row(k).rows, k.out, k.in, read_flush});
  };
  const std::vector<KernelCase> ccv_decode = group("gemm_ccv_decode");
  auto ccv_rows = [&](std::initializer_list<int64_t> rows) {
    std::vector<KernelCase> out;
    for (const int64_t n : rows)
      for (const KernelCase& k : ccv_decode)
        if (k.rows == n) out.push_back(k);
    return out;
  };
  gemm_rows(ccv_decode, {0, 1}, 0);
  gemm_rows(group("gemm_llama_decode"), {0}, 0);
  gemm_rows(group("gemm_ccv_prefill"), {1}, 0);
  gemm_rows(ccv_rows({1}), {0, 1}, 1);
  // 8 copies of the 16.8 MB weights: 134 MB, more than twice the H100's and the H200's L2.
  auto* stream =
      reg("gemm_stream", bm_gemm_stream, {"cublaslt", "rows", "out", "in", "copies", "read_flush"});
  for (const int64_t read_flush : {0, 1})
    for (const KernelCase& k : ccv_rows({1, 16}))
      for (const int64_t l : {0, 1})
        stream->Args({l, gemm_row(k).rows, k.out, k.in, 8, read_flush});
  // One weight of the CCV layer (16.8 MB), read as its GEMV reads it.
  const KernelCase ccv = gemm_row(ccv_decode.front());
  reg("read_stream", bm_read_stream, {"bytes", "copies", "pdl", "read_flush"})
      ->ArgsProduct({{ccv.out * ccv.in * dtype_bytes(ccv.dtype)}, {1, 8}, {1, 0}, {0, 1}});

  auto* cosine = reg("cosine", bm_cosine, {"whole", "rows", "dim"});
  for (const KernelCase& k : group("cosine_ccv")) {
    require(k.dtype == DType::bf16, k, "not bf16");
    cosine->Args({k.op == KernelOp::cosine_whole ? 1 : 0, k.rows, k.in});
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  try {
    auto b = make_cuda_backend_with({});
    g_dev = bench::measure_device(*b, false);
    std::cerr << bench::device_block(*b, g_dev).dump(2) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "kvscope-cuda-variants: " << e.what() << "\n";
    return 1;
  }
  auto reg = [](const char* name, void (*fn)(benchmark::State&),
                const std::vector<std::string>& names) {
    return benchmark::RegisterBenchmark(name, fn)
        ->ArgNames(names)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.2);
  };
  try {
    register_rows(reg);
  } catch (const std::exception& e) {
    std::cerr << "kvscope-cuda-variants: " << e.what() << "\n";
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
