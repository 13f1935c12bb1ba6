#include "kernels/bench/bench.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <functional>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/bench/step_bench.h"
#include "kernels/buffer_view.h"
#include "kernels/cases.h"
#include "kernels/convert.h"
#include "model/cost.h"

namespace kvscope::kernels::bench {
namespace {

DType dtype_of(int64_t bf16) { return bf16 ? DType::bf16 : DType::f32; }
size_t esz(DType t) { return static_cast<size_t>(dtype_bytes(t)); }

}  // namespace

// Uniform in [-1, 1) (random_uniform, kernels/buffer_view.h).
std::unique_ptr<DeviceBuffer> random_buffer(Backend& b, DType t, size_t count, uint64_t seed) {
  const std::vector<float> v = random_uniform(count, seed);
  const auto bytes = encode(t, v);
  auto buf = b.alloc(bytes.size());
  b.upload(*buf, bytes.data(), bytes.size());
  return buf;
}

FourierLayout layout_of(int64_t cdims, int64_t m) {
  return {dim_range(0, cdims), m, kBenchFourierSink, kBenchFourierWindow};
}

namespace {

FourierTensor random_fourier(Backend& b, const KvShape& s, const FourierLayout& f, uint64_t seed) {
  const FourierBufferBytes n = fourier_buffer_bytes(s, f);
  const size_t e = esz(s.dtype);
  FourierTensor t;
  t.kept = random_buffer(b, s.dtype, n.kept / e, seed);
  t.edge = random_buffer(b, s.dtype, n.edge / e, seed + 1);
  t.coeffs = random_buffer(b, s.dtype, n.coeffs / e, seed + 2);
  return t;
}

struct Ctx {
  Backend* backend;
  const DeviceMeasurement* device;
};

// Times fn once per iteration with the backend's clock, after one untimed run (plans, caches).
double timed_loop(benchmark::State& st, Backend& b, const std::function<void()>& fn) {
  fn();
  b.synchronize();
  double total_ms = 0;
  for (auto _ : st) {
    const double ms = b.time_ms(fn, 0, 1);
    st.SetIterationTime(ms / 1e3);
    total_ms += ms;
  }
  return total_ms;
}

void report(benchmark::State& st, const Ctx& c, const Work& w, DType t, double total_ms) {
  using benchmark::Counter;
  st.counters["bytes_per_s"] = Counter(w.bytes, Counter::kIsIterationInvariantRate);
  st.counters["flops_per_s"] = Counter(w.flops, Counter::kIsIterationInvariantRate);
  const double floor_ms =
      1e3 * std::max(w.bytes / c.device->copy_bytes_per_s, w.flops / c.device->peak_flops(t));
  st.counters["floor_ms"] = floor_ms;
  const double mean_ms = total_ms / static_cast<double>(std::max<int64_t>(st.iterations(), 1));
  st.counters["floor_pct"] = mean_ms > 0 ? 100.0 * floor_ms / mean_ms : 0.0;
}

void bm_copy(benchmark::State& st, Ctx c) {
  Backend& b = *c.backend;
  const size_t bytes = static_cast<size_t>(st.range(0)) << 20;
  auto src = random_buffer(b, DType::f32, bytes / 4, 1), dst = b.alloc(bytes);
  const double total = timed_loop(st, b, [&] { b.copy(*src, *dst, bytes); });
  report(st, c, Work{0.0, 2.0 * static_cast<double>(bytes)}, DType::f32, total);
}

void bm_compress(benchmark::State& st, Ctx c, bool reconstruct) {
  Backend& b = *c.backend;
  const DType t = dtype_of(st.range(0));
  const KvShape s{1, st.range(1), st.range(2), st.range(3), t};
  const FourierLayout f = layout_of(st.range(4), st.range(5));
  auto kv = random_buffer(b, t, static_cast<size_t>(s.elements()), 2);
  FourierTensor ft = random_fourier(b, s, f, 3);
  const double total = reconstruct
                           ? timed_loop(st, b, [&] { b.fourier_reconstruct(s, f, ft, *kv); })
                           : timed_loop(st, b, [&] { b.fourier_compress(s, f, *kv, ft); });
  report(st, c,
         fourier_compress_work(FourierCompressShape{s.batch * s.kv_heads, s.tokens, s.head_dim,
                                                    static_cast<int64_t>(f.compressed_dims.size()),
                                                    f.m, f.edge(), t}),
         t, total);
}

AttentionArgs attention_args(const benchmark::State& st, bool prefill) {
  AttentionArgs a;
  a.dtype = dtype_of(st.range(0));
  a.batch = st.range(1);
  a.q_heads = st.range(2);
  a.kv_heads = st.range(3);
  a.head_dim = st.range(4);
  a.tokens = st.range(5);
  a.q_len = prefill ? a.tokens : 1;
  a.causal = true;
  return a;
}

AttentionShape attention_shape(const AttentionArgs& a) {
  return AttentionShape{a.batch, a.q_heads, a.kv_heads, a.head_dim,
                        a.q_len, a.tokens,  a.causal,   a.dtype};
}

void bm_attention(benchmark::State& st, Ctx c, bool prefill) {
  Backend& b = *c.backend;
  const AttentionArgs a = attention_args(st, prefill);
  const size_t qn = static_cast<size_t>(a.batch * a.q_heads * a.q_len * a.head_dim);
  const size_t kvn = static_cast<size_t>(a.batch * a.kv_heads * a.tokens * a.head_dim);
  auto q = random_buffer(b, a.dtype, qn, 4), k = random_buffer(b, a.dtype, kvn, 5);
  auto v = random_buffer(b, a.dtype, kvn, 6), o = b.alloc(qn * esz(a.dtype));
  const double total = timed_loop(st, b, [&] { b.attention(a, *q, *k, *v, *o); });
  report(st, c, attention_work(attention_shape(a)), a.dtype, total);
}

void bm_fourier_attention(benchmark::State& st, Ctx c, bool prefill) {
  Backend& b = *c.backend;
  const AttentionArgs a = attention_args(st, prefill);
  const FourierLayout f = layout_of(st.range(6), st.range(7));
  const KvShape s{a.batch, a.kv_heads, a.tokens, a.head_dim, a.dtype};
  const size_t qn = static_cast<size_t>(a.batch * a.q_heads * a.q_len * a.head_dim);
  auto q = random_buffer(b, a.dtype, qn, 7), o = b.alloc(qn * esz(a.dtype));
  FourierTensor k = random_fourier(b, s, f, 8), v = random_fourier(b, s, f, 11);
  const double total = timed_loop(st, b, [&] { b.fourier_attention(a, f, *q, k, v, *o); });
  const FourierAttentionShape fs{attention_shape(a), static_cast<int64_t>(f.compressed_dims.size()),
                                 f.m, f.edge()};
  report(st, c, fourier_attention_work(fs), a.dtype, total);
}

void bm_gemm(benchmark::State& st, Ctx c) {
  Backend& b = *c.backend;
  const GemmArgs g{st.range(1), st.range(2), st.range(3), st.range(4) != 0, dtype_of(st.range(0))};
  auto x = random_buffer(b, g.dtype, static_cast<size_t>(g.rows * g.in), 12);
  auto w = random_buffer(b, g.dtype, static_cast<size_t>(g.out * g.in), 13);
  auto bias = random_buffer(b, g.dtype, static_cast<size_t>(g.out), 14);
  auto y = b.alloc(static_cast<size_t>(g.rows * g.out) * esz(g.dtype));
  const double total =
      timed_loop(st, b, [&] { b.gemm(g, *x, *w, g.bias ? bias.get() : nullptr, *y); });
  report(st, c, gemm_work(GemmShape{g.rows, g.out, g.in, g.bias, g.dtype}), g.dtype, total);
}

void bm_cosine(benchmark::State& st, Ctx c, bool whole) {
  Backend& b = *c.backend;
  const DType t = dtype_of(st.range(0));
  const int64_t rows = st.range(1), dim = st.range(2);
  auto x = random_buffer(b, t, static_cast<size_t>(rows * dim), 15);
  auto y = random_buffer(b, t, static_cast<size_t>(rows * dim), 16);
  auto out = b.alloc(static_cast<size_t>(whole ? 1 : rows) * sizeof(float));
  const double total = whole
                           ? timed_loop(st, b, [&] { b.cosine_whole(rows, dim, t, *x, *y, *out); })
                           : timed_loop(st, b, [&] { b.cosine_rows(rows, dim, t, *x, *y, *out); });
  report(st, c, cosine_work(rows, dim, t), t, total);
}

benchmark::internal::Benchmark* family(const char* name, std::function<void(benchmark::State&)> fn,
                                       const std::vector<std::string>& arg_names, bool quick) {
  auto* r = benchmark::RegisterBenchmark(name, [fn](benchmark::State& st) { fn(st); });
  r->ArgNames(arg_names)->UseManualTime()->Unit(benchmark::kMillisecond);
  r->MinTime(quick ? 0.05 : 0.25);
  return r;
}

int64_t bf16_axis(const KernelCase& k) { return k.dtype == DType::bf16 ? 1 : 0; }

// A row's cdims axis. The benchmarks rebuild the layout from it (layout_of), so a row must hold
// that layout: anything else would be measured under a name that says otherwise.
int64_t cdims_axis(const KernelCase& k) {
  const auto cdims = static_cast<int64_t>(k.dims.size());
  const FourierLayout want = layout_of(cdims, k.m);
  if (k.dims != want.compressed_dims || k.sink != want.sink || k.window != want.window)
    throw std::logic_error("kernel_cases: a benchmark row's Fourier layout is not layout_of(" +
                           std::to_string(cdims) + ", " + std::to_string(k.m) + ")");
  return cdims;
}

// The attention families time decode (one query) or a whole causal prefill (every token a
// query); a row between the two has no family to be measured in.
bool is_prefill_row(const KernelCase& k) {
  if (k.q_len != 1 && (k.q_len != k.tokens || !k.causal))
    throw std::logic_error(
        "kernel_cases: a benchmark attention row is neither a decode nor a "
        "causal prefill (q_len " +
        std::to_string(k.q_len) + ", tokens " + std::to_string(k.tokens) + ")");
  return k.q_len != 1;
}

std::vector<int64_t> compress_axes(const KernelCase& k) {
  return {bf16_axis(k), k.batch * k.kv_heads, k.tokens, k.head_dim, cdims_axis(k), k.m};
}

std::vector<int64_t> fourier_attention_axes(const KernelCase& k) {
  return {bf16_axis(k), k.batch, k.q_heads, k.kv_heads, k.head_dim, k.tokens, cdims_axis(k), k.m};
}

std::vector<int64_t> attention_axes(const KernelCase& k) {
  return {bf16_axis(k), k.batch, k.q_heads, k.kv_heads, k.head_dim, k.tokens};
}

}  // namespace

DeviceMeasurement measure_device(Backend& b, bool quick) {
  DeviceMeasurement m;
  m.copy_buffer_bytes = quick ? (int64_t{64} << 20) : (int64_t{1} << 30);
  {
    const size_t n = static_cast<size_t>(m.copy_buffer_bytes);
    auto src = random_buffer(b, DType::f32, n / 4, 21), dst = b.alloc(n);
    const double ms = b.time_ms([&] { b.copy(*src, *dst, n); }, 2, quick ? 5 : 20);
    m.copy_bytes_per_s = 2.0 * static_cast<double>(n) / (ms / 1e3);
  }
  m.gemm_n = quick ? 512 : 8192;
  for (const DType t : {DType::bf16, DType::f32}) {
    const GemmArgs g{m.gemm_n, m.gemm_n, m.gemm_n, false, t};
    const size_t n2 = static_cast<size_t>(m.gemm_n * m.gemm_n);
    auto x = random_buffer(b, t, n2, 22), w = random_buffer(b, t, n2, 23), y = b.alloc(n2 * esz(t));
    const double ms = b.time_ms([&] { b.gemm(g, *x, *w, nullptr, *y); }, 2, quick ? 5 : 20);
    const double flops = gemm_work(GemmShape{g.rows, g.out, g.in, false, t}).flops / (ms / 1e3);
    (t == DType::f32 ? m.gemm_flops_per_s_f32 : m.gemm_flops_per_s_bf16) = flops;
  }
  return m;
}

void register_benchmarks(Backend& b, const DeviceMeasurement& m, bool quick) {
  const Ctx c{&b, &m};
  const std::vector<KernelCase> cases = kernel_cases(quick ? case_bench_quick : case_bench_full);
  // Adds, in table order, a row for every case `take` accepts, its axes given by `args`.
  auto rows = [&cases](benchmark::internal::Benchmark* r,
                       const std::function<bool(const KernelCase&)>& take,
                       const std::function<std::vector<int64_t>(const KernelCase&)>& args) {
    for (const KernelCase& k : cases)
      if (take(k)) r->Args(args(k));
  };
  auto is = [](KernelOp op) { return [op](const KernelCase& k) { return k.op == op; }; };
  auto is_decode = [](KernelOp op) {
    return [op](const KernelCase& k) { return k.op == op && !is_prefill_row(k); };
  };
  auto is_prefill = [](KernelOp op) {
    return [op](const KernelCase& k) { return k.op == op && is_prefill_row(k); };
  };

  rows(family(
           "copy", [c](benchmark::State& st) { bm_copy(st, c); }, {"mib"}, quick),
       is(KernelOp::copy), [](const KernelCase& k) { return std::vector<int64_t>{k.bytes >> 20}; });

  const std::vector<std::string> comp_axes{"bf16", "heads", "tokens", "head_dim", "cdims", "m"};
  rows(family(
           "fourier_compress", [c](benchmark::State& st) { bm_compress(st, c, false); }, comp_axes,
           quick),
       is(KernelOp::compress), compress_axes);
  rows(family(
           "fourier_reconstruct", [c](benchmark::State& st) { bm_compress(st, c, true); },
           comp_axes, quick),
       is(KernelOp::reconstruct), compress_axes);

  const std::vector<std::string> fa_axes{"bf16",     "batch",  "q_heads", "kv_heads",
                                         "head_dim", "tokens", "cdims",   "m"};
  rows(family(
           "fourier_attention_decode",
           [c](benchmark::State& st) { bm_fourier_attention(st, c, false); }, fa_axes, quick),
       is_decode(KernelOp::fourier_attention), fourier_attention_axes);
  rows(family(
           "fourier_attention_prefill",
           [c](benchmark::State& st) { bm_fourier_attention(st, c, true); }, fa_axes, quick),
       is_prefill(KernelOp::fourier_attention), fourier_attention_axes);

  const std::vector<std::string> at_axes{"bf16",     "batch",    "q_heads",
                                         "kv_heads", "head_dim", "tokens"};
  rows(family(
           "attention_decode", [c](benchmark::State& st) { bm_attention(st, c, false); }, at_axes,
           quick),
       is_decode(KernelOp::attention), attention_axes);
  rows(family(
           "attention_prefill", [c](benchmark::State& st) { bm_attention(st, c, true); }, at_axes,
           quick),
       is_prefill(KernelOp::attention), attention_axes);

  rows(family(
           "gemm", [c](benchmark::State& st) { bm_gemm(st, c); },
           {"bf16", "rows", "out", "in", "bias"}, quick),
       is(KernelOp::gemm), [](const KernelCase& k) {
         return std::vector<int64_t>{bf16_axis(k), k.rows, k.out, k.in, k.bias ? 1 : 0};
       });

  const std::vector<std::string> cos_axes{"bf16", "rows", "dim"};
  auto cosine_axes = [](const KernelCase& k) {
    return std::vector<int64_t>{bf16_axis(k), k.rows, k.in};
  };
  rows(family(
           "cosine_rows", [c](benchmark::State& st) { bm_cosine(st, c, false); }, cos_axes, quick),
       is(KernelOp::cosine_rows), cosine_axes);
  rows(family(
           "cosine_whole", [c](benchmark::State& st) { bm_cosine(st, c, true); }, cos_axes, quick),
       is(KernelOp::cosine_whole), cosine_axes);
}

nlohmann::json device_block(const Backend& b, const DeviceMeasurement& m) {
  const DeviceInfo d = b.info();
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::ostringstream date;
  date << std::put_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  return {{"backend", d.backend},
          {"name", d.name},
          {"multiprocessors", d.multiprocessors},
          {"memory_bytes", d.memory_bytes},
          {"driver", d.driver},
          {"switches", d.switches},
          {"copy_bytes_per_s", m.copy_bytes_per_s},
          {"copy_buffer_bytes", m.copy_buffer_bytes},
          {"gemm_flops_per_s_bf16", m.gemm_flops_per_s_bf16},
          {"gemm_flops_per_s_f32", m.gemm_flops_per_s_f32},
          {"gemm_n", m.gemm_n},
          {"date", date.str()}};
}

namespace {
// Google Benchmark's JSON reporter, plus one human line per row on the progress stream.
class ProgressJsonReporter final : public benchmark::JSONReporter {
 public:
  explicit ProgressJsonReporter(std::ostream& progress) : progress_(progress) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    JSONReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      progress_ << "  " << std::left << std::setw(72) << r.benchmark_name() << std::right;
      if (r.error_occurred) {
        progress_ << " error: " << r.error_message << "\n";
        continue;
      }
      progress_ << std::fixed << std::setprecision(4) << std::setw(12) << r.GetAdjustedRealTime()
                << " " << benchmark::GetTimeUnitString(r.time_unit);
      const auto pct = r.counters.find("floor_pct");
      if (pct != r.counters.end())
        progress_ << std::setprecision(1) << std::setw(8) << pct->second.value << "% of floor";
      progress_ << std::defaultfloat << "\n";
    }
  }

 private:
  std::ostream& progress_;
};
}  // namespace

nlohmann::json run_registered(std::ostream& progress, const std::string& filter) {
  std::ostringstream json;
  ProgressJsonReporter reporter(progress);
  reporter.SetOutputStream(&json);
  reporter.SetErrorStream(&progress);
  benchmark::RunSpecifiedBenchmarks(&reporter, filter);
  return nlohmann::json::parse(json.str());
}

nlohmann::json calibrate(const std::string& backend, bool quick, std::ostream& progress,
                         const std::string& filter, const StepBenchConfig* steps) {
  std::unique_ptr<Backend> b = make_backend(backend);
  const DeviceInfo d = b->info();
  progress << "calibrate: " << d.backend << " backend on " << d.name << " (" << d.multiprocessors
           << (d.backend == "cpu" ? " threads" : " SMs") << "), " << (quick ? "quick" : "full")
           << " shapes\n";
  const DeviceMeasurement m = measure_device(*b, quick);
  progress << "calibrate: copy " << m.copy_bytes_per_s / 1e9 << " GB/s, GEMM peak "
           << m.gemm_flops_per_s_bf16 / 1e12 << " TFLOP/s bf16, " << m.gemm_flops_per_s_f32 / 1e12
           << " TFLOP/s f32 (n=" << m.gemm_n << ")\n";
  benchmark::ClearRegisteredBenchmarks();
  register_benchmarks(*b, m, quick);
  if (steps != nullptr) register_step_benchmarks(*b, m, *steps);
  nlohmann::json profile = run_registered(progress, filter);
  benchmark::ClearRegisteredBenchmarks();
  profile["device"] = device_block(*b, m);
  profile["kvscope"] = {{"profile_version", 1},
                        {"quick", quick},
                        {"filter", filter},
                        {"fourier_sink", kBenchFourierSink},
                        {"fourier_window", kBenchFourierWindow}};
  if (steps != nullptr)
    profile["kvscope"]["step_model"] = {
        {"model", steps->model.name},  {"max_context", steps->max_context},
        {"max_rows", steps->max_rows}, {"max_seqs", steps->max_seqs},
        {"fourier", steps->fourier},   {"ccv", steps->ccv}};
  return profile;
}

}  // namespace kvscope::kernels::bench
