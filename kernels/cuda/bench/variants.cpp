// kvscope-cuda-variants: the CUDA backend's production paths beside its reference paths (cuFFT,
// cuBLASLt, the kernels a device without sm_90a runs) and the decode chain with launches left
// out, at the
// issue's target shapes and at the shapes of the PyTorch peer script (shared/bench/
// torch_peers.py), so kernels/BENCHMARKS.md can say which is faster and by how much. Rows carry
// bytes, the floor (bytes / measured copy bandwidth, or FLOPs / measured GEMM peak when larger)
// and the percentage of it reached. The calibration profile comes from kvscope-bench /
// `kvscope calibrate`; this binary only compares variants.
//   kvscope-cuda-variants [--benchmark_* flags]
#include <benchmark/benchmark.h>

#include <cmath>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "kernels/bench/bench.h"
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

FourierLayout lower(int64_t c, int64_t m) {
  FourierLayout f;
  for (int64_t d = 0; d < c; ++d) f.compressed_dims.push_back(d);
  f.m = m;
  f.sink = 4;
  f.window = 64;
  return f;
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
  const FourierLayout f = lower(st.range(5), st.range(6));
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
    const FourierLayout f = lower(st.range(6), st.range(7));
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
    const FourierLayout f = lower(64, st.range(3));
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
  const std::vector<std::string> fa{"cufft", "f32", "heads", "tokens", "head_dim",
                                    "cdims", "m",   "recon", "sm90a"};
  // The layout (64 KV heads x 32768 x 128, lower 64 dims -> M = 256), fused and cuFFT;
  // torch_peers' [64, 32768, 64] all-compressed shape (its rfft+slice peer is f32) in f32 and
  // bf16; M = 64 and 1024 for the trend.
  reg("fourier", bm_fourier, fa)
      ->ArgsProduct({{0, 1}, {0}, {64}, {32768}, {128}, {64}, {256}, {0, 1}, {1}});
  reg("fourier", bm_fourier, fa)
      ->ArgsProduct({{0, 1}, {0, 1}, {64}, {32768}, {64}, {64}, {256}, {0, 1}, {1}});
  reg("fourier", bm_fourier, fa)
      ->ArgsProduct({{0}, {0}, {64}, {32768}, {64}, {64}, {64, 1024}, {0, 1}, {1}});
  // The transforms' mma.sync kernels (what a device without sm_90a runs) beside the warpgroup
  // ones (sm90a:1 above).
  reg("fourier", bm_fourier, fa)
      ->ArgsProduct({{0}, {0}, {64}, {32768}, {128, 64}, {64}, {256}, {0, 1}, {0}});
  reg("fourier", bm_fourier, fa)
      ->ArgsProduct({{0}, {0}, {64}, {32768}, {64}, {64}, {64, 1024}, {0, 1}, {0}});
  // Launches left out of the decode's chain (CudaOptions::fourier_decode_skip: 1 P, 2 middle, 4
  // sink and window, 8 finish), at the shape below: what each adds to the decode's time.
  const std::vector<int64_t> skips = {1, 2, 4, 8, 12, 13};
  const std::vector<int64_t> lengths = {4096, 32768, 131072};
  reg("decode", bm_decode,
      {"fourier", "batch", "q_heads", "kv_heads", "head_dim", "tokens", "cdims", "m", "skip"})
      ->ArgsProduct({{0, 1}, {8}, {32}, {8}, {128}, lengths, {64}, {256}, {0}})
      ->ArgsProduct({{1}, {8}, {32}, {8}, {128}, {32768}, {64}, {128}, {0}})
      ->Args({0, 8, 32, 32, 128, 32768, 0, 0, 0})
      ->ArgsProduct({{0, 1}, {1}, {32}, {8}, {128}, {4096, 32768}, {64}, {256}, {0}})
      ->ArgsProduct({{1}, {1}, {32}, {8}, {128}, {32768}, {64}, {128}, {0}})
      // The chain with launches left out (skips above).
      ->ArgsProduct({{1}, {8}, {32}, {8}, {128}, {32768}, {64}, {256}, skips});
  reg("prefill", bm_prefill, {"fourier", "heads", "tokens", "m", "sm90a"})
      ->ArgsProduct({{0}, {32}, {1024, 4096, 16384}, {0}, {1, 0}})
      ->ArgsProduct({{1}, {32}, {4096, 16384}, {256}, {1}});
  reg("gemm", bm_gemm, {"cublaslt", "rows", "out", "in", "read_flush"})
      ->ArgsProduct({{0, 1}, {1, 2, 4, 8, 16}, {2048}, {4096}, {0}})
      // llama-3.1-8b's decode layers at one row: QKV, MLP up and gate, down.
      ->ArgsProduct({{0}, {1}, {6144, 28672}, {4096}, {0}})
      ->ArgsProduct({{0}, {1}, {4096}, {14336}, {0}})
      ->ArgsProduct({{1}, {1024, 16384, 65536}, {2048}, {4096}, {0}})
      ->ArgsProduct({{0, 1}, {1}, {2048}, {4096}, {1}});
  // 8 copies of the 16.8 MB weights: 134 MB, more than twice the H100's and the H200's L2.
  reg("gemm_stream", bm_gemm_stream, {"cublaslt", "rows", "out", "in", "copies", "read_flush"})
      ->ArgsProduct({{0, 1}, {1, 16}, {2048}, {4096}, {8}, {0, 1}});
  // 16.8 MB: the weights of the 4096 -> 2048 bf16 layer.
  reg("read_stream", bm_read_stream, {"bytes", "copies", "pdl", "read_flush"})
      ->ArgsProduct({{16777216}, {1, 8}, {1, 0}, {0, 1}});
  reg("cosine", bm_cosine, {"whole", "rows", "dim"})->ArgsProduct({{0, 1}, {4096, 65536}, {2048}});
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
