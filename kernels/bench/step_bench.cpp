#include "kernels/bench/step_bench.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>

#include "kernels/buffer_view.h"
#include "model/cost.h"

namespace kvscope::kernels::bench {
namespace {

// Copies are views into one allocation (Arena) aligned to this; so thousands of copies of a
// small operand cost one allocation.
constexpr size_t kCopyAlign = 256;
// Each timed run lasts about this long (many calls of a small operation, one of a large one).
constexpr double kRunMs = 1.0;
constexpr int kMaxCallsPerRun = 64;

size_t esz(DType t) { return static_cast<size_t>(dtype_bytes(t)); }

std::unique_ptr<DeviceBuffer> random_buffer(Backend& b, DType t, size_t bytes) {
  static const RandomTiler bf16(DType::bf16, size_t{4} << 20, 101);
  static const RandomTiler f32(DType::f32, size_t{4} << 20, 102);
  auto buf = b.alloc(std::max<size_t>(bytes, 1));
  (t == DType::f32 ? f32 : bf16).fill(b, *buf);
  return buf;
}

// The rotated copies of a point's inputs are views into one random-filled allocation, kept
// from point to point and grown when a point needs more: allocating (and on a CPU, faulting in
// and zeroing) kStepRotateBytes afresh for each of hundreds of points would cost more than timing
// them. The values are the random tiles either way.
class ArenaStore {
 public:
  explicit ArenaStore(Backend& b) : b_(b) {}
  DeviceBuffer& get(DType t, size_t bytes) {
    auto& buf = t == DType::f32 ? f32_ : bf16_;
    if (!buf || buf->bytes() < bytes) {
      buf.reset();
      buf = random_buffer(b_, t, bytes);
    }
    return *buf;
  }

 private:
  Backend& b_;
  std::unique_ptr<DeviceBuffer> f32_, bf16_;
};

// Hands out the copies of one point, one after the other, from the store's allocation.
class Arena {
 public:
  Arena(ArenaStore& store, DType t, size_t bytes) : buf_(store.get(t, bytes)) {}
  // Bytes to hold `copies` copies of operands of these sizes.
  static size_t bytes_for(int copies, std::initializer_list<size_t> sizes) {
    size_t one = 0;
    for (size_t s : sizes) one += aligned(s);
    return static_cast<size_t>(copies) * one;
  }
  std::unique_ptr<DeviceBuffer> take(size_t bytes) {
    auto v = std::make_unique<BufferView>(buf_, off_, std::max<size_t>(bytes, 1));
    off_ += aligned(bytes);
    return v;
  }

 private:
  static size_t aligned(size_t n) {
    return (std::max<size_t>(n, 1) + kCopyAlign - 1) / kCopyAlign * kCopyAlign;
  }
  DeviceBuffer& buf_;
  size_t off_ = 0;
};

// Times op(copy) back to back: `calls` calls per timed run, the copy rotating (on from where
// the last run stopped, so that a copy is used again only after all the others), and reports
// the mean time of one call.
void step_loop(benchmark::State& st, Backend& b, int copies, const std::function<void(int)>& op) {
  CopyRotation rot(copies);
  op(rot.next());  // untimed: plans, heuristics and scratch sized on first use
  b.synchronize();
  const double one_ms = b.time_ms([&] { op(rot.next()); }, 0, 1);
  int calls = static_cast<int>(std::ceil(kRunMs / std::max(one_ms, 1e-4)));
  calls = std::clamp(calls, 2, kMaxCallsPerRun);
  auto run = [&] {
    for (int k = 0; k < calls; ++k) op(rot.next());
  };
  for (auto _ : st) {
    const double ms = b.time_ms(run, 0, 1) / calls;
    st.SetIterationTime(ms / 1e3);
  }
  st.counters["calls_per_run"] = calls;
  st.counters["copies"] = copies;
}

struct Ctx {
  Backend* b;
  const DeviceMeasurement* m;
  std::shared_ptr<ArenaStore> arenas;  // shared by every point of the run
};

void report(benchmark::State& st, const Ctx& c, const Work& w, DType t) {
  using benchmark::Counter;
  st.counters["bytes_per_s"] = Counter(w.bytes, Counter::kIsIterationInvariantRate);
  st.counters["flops_per_s"] = Counter(w.flops, Counter::kIsIterationInvariantRate);
  st.counters["floor_ms"] =
      1e3 * std::max(w.bytes / c.m->copy_bytes_per_s, w.flops / c.m->peak_flops(t));
}

FourierLayout layout_of(const FourierConfig& f, int64_t head_dim) {
  FourierLayout l;
  l.compressed_dims = f.resolve_dims(head_dim);
  l.m = f.m;
  l.sink = f.sink_tokens;
  l.window = f.window_tokens;
  return l;
}

FourierTensor random_fourier(Arena& arena, const KvShape& s, const FourierLayout& f) {
  const FourierBufferBytes n = fourier_buffer_bytes(s, f);
  FourierTensor t;
  t.kept = arena.take(n.kept);
  t.edge = arena.take(n.edge);
  t.coeffs = arena.take(n.coeffs);
  return t;
}

size_t fourier_arena_bytes(int copies, const KvShape& s, const FourierLayout& f, int tensors,
                           size_t extra = 0) {
  const FourierBufferBytes n = fourier_buffer_bytes(s, f);
  size_t one = 0;
  for (int i = 0; i < tensors; ++i) one += Arena::bytes_for(1, {n.kept, n.edge, n.coeffs});
  return static_cast<size_t>(copies) * one + (extra > 0 ? Arena::bytes_for(copies, {extra}) : 0);
}

size_t fourier_bytes(const KvShape& s, const FourierLayout& f) {
  const FourierBufferBytes n = fourier_buffer_bytes(s, f);
  return n.kept + n.edge + n.coeffs;
}

benchmark::internal::Benchmark* family(const std::string& name,
                                       std::function<void(benchmark::State&)> fn,
                                       const std::vector<std::string>& axes) {
  // A shape a backend refuses (or memory it cannot give) becomes an error row, which the
  // profile skips, instead of ending the whole calibration.
  auto* r = benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State& st) {
    try {
      fn(st);
    } catch (const std::exception& e) {
      st.SkipWithError(e.what());
    }
  });
  r->ArgNames(axes)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);
  return r;
}

void bm_gemm(benchmark::State& st, Ctx c) {
  Backend& b = *c.b;
  const GemmArgs g{st.range(1), st.range(2), st.range(3), st.range(4) != 0,
                   st.range(0) ? DType::bf16 : DType::f32};
  const size_t e = esz(g.dtype);
  const size_t wbytes = static_cast<size_t>(g.out * g.in) * e;
  const int copies = rotation_copies(wbytes);
  auto x = random_buffer(b, g.dtype, static_cast<size_t>(g.rows * g.in) * e);
  auto bias = random_buffer(b, g.dtype, static_cast<size_t>(g.out) * e);
  auto y = b.alloc(static_cast<size_t>(g.rows * g.out) * e);
  Arena arena(*c.arenas, g.dtype, Arena::bytes_for(copies, {wbytes}));
  std::vector<std::unique_ptr<DeviceBuffer>> w;
  for (int i = 0; i < copies; ++i) w.push_back(arena.take(wbytes));
  step_loop(st, b, copies, [&](int k) { b.gemm(g, *x, *w[k], g.bias ? bias.get() : nullptr, *y); });
  report(st, c, gemm_work(GemmShape{g.rows, g.out, g.in, g.bias, g.dtype}), g.dtype);
}

AttentionArgs attention_args(const benchmark::State& st) {
  AttentionArgs a;
  a.dtype = st.range(0) ? DType::bf16 : DType::f32;
  a.batch = st.range(1);
  a.q_heads = st.range(2);
  a.kv_heads = st.range(3);
  a.head_dim = st.range(4);
  a.q_len = st.range(5);
  a.tokens = st.range(6);
  a.causal = true;
  return a;
}

void bm_attention(benchmark::State& st, Ctx c) {
  Backend& b = *c.b;
  const AttentionArgs a = attention_args(st);
  const size_t e = esz(a.dtype);
  const size_t qo = static_cast<size_t>(a.batch * a.q_heads * a.q_len * a.head_dim) * e;
  const size_t kv = static_cast<size_t>(a.batch * a.kv_heads * a.tokens * a.head_dim) * e;
  const int copies = rotation_copies(2 * kv);
  auto q = random_buffer(b, a.dtype, qo);
  auto o = b.alloc(qo);
  Arena arena(*c.arenas, a.dtype, Arena::bytes_for(copies, {kv, kv}));
  std::vector<std::unique_ptr<DeviceBuffer>> k, v;
  for (int i = 0; i < copies; ++i) {
    k.push_back(arena.take(kv));
    v.push_back(arena.take(kv));
  }
  step_loop(st, b, copies, [&](int i) { b.attention(a, *q, *k[i], *v[i], *o); });
  report(st, c,
         attention_work(AttentionShape{a.batch, a.q_heads, a.kv_heads, a.head_dim, a.q_len,
                                       a.tokens, true, a.dtype}),
         a.dtype);
}

void bm_fourier_attention(benchmark::State& st, Ctx c, FourierConfig fc) {
  Backend& b = *c.b;
  const AttentionArgs a = attention_args(st);
  const FourierLayout f = layout_of(fc, a.head_dim);
  const KvShape s{a.batch, a.kv_heads, a.tokens, a.head_dim, a.dtype};
  const size_t qo = static_cast<size_t>(a.batch * a.q_heads * a.q_len * a.head_dim) * esz(a.dtype);
  const int copies = rotation_copies(2 * fourier_bytes(s, f));
  auto q = random_buffer(b, a.dtype, qo);
  auto o = b.alloc(qo);
  Arena arena(*c.arenas, a.dtype, fourier_arena_bytes(copies, s, f, 2));
  std::vector<FourierTensor> k, v;
  for (int i = 0; i < copies; ++i) {
    k.push_back(random_fourier(arena, s, f));
    v.push_back(random_fourier(arena, s, f));
  }
  step_loop(st, b, copies, [&](int i) { b.fourier_attention(a, f, *q, k[i], v[i], *o); });
  report(st, c,
         fourier_attention_work(
             FourierAttentionShape{AttentionShape{a.batch, a.q_heads, a.kv_heads, a.head_dim,
                                                  a.q_len, a.tokens, true, a.dtype},
                                   static_cast<int64_t>(f.compressed_dims.size()), f.m, f.edge()}),
         a.dtype);
}

void bm_compress(benchmark::State& st, Ctx c, FourierConfig fc, bool reconstruct) {
  Backend& b = *c.b;
  const DType t = st.range(0) ? DType::bf16 : DType::f32;
  const KvShape s{1, st.range(1), st.range(2), st.range(3), t};
  const FourierLayout f = layout_of(fc, s.head_dim);
  const size_t full = static_cast<size_t>(s.elements()) * esz(t);
  const int copies = rotation_copies(full + fourier_bytes(s, f));
  Arena arena(*c.arenas, t, fourier_arena_bytes(copies, s, f, 1, full));
  std::vector<std::unique_ptr<DeviceBuffer>> kv;
  std::vector<FourierTensor> ft;
  for (int i = 0; i < copies; ++i) {
    kv.push_back(arena.take(full));
    ft.push_back(random_fourier(arena, s, f));
  }
  if (reconstruct)
    step_loop(st, b, copies, [&](int i) { b.fourier_reconstruct(s, f, ft[i], *kv[i]); });
  else
    step_loop(st, b, copies, [&](int i) { b.fourier_compress(s, f, *kv[i], ft[i]); });
  report(st, c,
         fourier_compress_work(FourierCompressShape{s.kv_heads, s.tokens, s.head_dim,
                                                    static_cast<int64_t>(f.compressed_dims.size()),
                                                    f.m, f.edge(), t}),
         t);
}

void bm_cosine(benchmark::State& st, Ctx c) {
  Backend& b = *c.b;
  const DType t = st.range(0) ? DType::bf16 : DType::f32;
  const int64_t rows = st.range(1), dim = st.range(2);
  const size_t n = static_cast<size_t>(rows * dim) * esz(t);
  const int copies = rotation_copies(2 * n);
  Arena arena(*c.arenas, t, Arena::bytes_for(copies, {n, n}));
  std::vector<std::unique_ptr<DeviceBuffer>> x, y;
  for (int i = 0; i < copies; ++i) {
    x.push_back(arena.take(n));
    y.push_back(arena.take(n));
  }
  auto out = b.alloc(static_cast<size_t>(rows) * sizeof(float));
  step_loop(st, b, copies, [&](int i) { b.cosine_rows(rows, dim, t, *x[i], *y[i], *out); });
  report(st, c, cosine_work(rows, dim, t), t);
}

void bm_copy(benchmark::State& st, Ctx c) {
  Backend& b = *c.b;
  const size_t bytes = static_cast<size_t>(st.range(0)) << 10;
  const int copies = rotation_copies(2 * bytes);
  Arena arena(*c.arenas, DType::f32, Arena::bytes_for(copies, {bytes, bytes}));
  std::vector<std::unique_ptr<DeviceBuffer>> src, dst;
  for (int i = 0; i < copies; ++i) {
    src.push_back(arena.take(bytes));
    dst.push_back(arena.take(bytes));
  }
  step_loop(st, b, copies, [&](int i) { b.copy(*src[i], *dst[i], bytes); });
  report(st, c, Work{0.0, 2.0 * static_cast<double>(bytes)}, DType::f32);
}

}  // namespace

int rotation_copies(size_t operand_bytes) {
  if (operand_bytes == 0) return 1;
  const size_t n = (kStepRotateBytes + operand_bytes - 1) / operand_bytes;
  return static_cast<int>(std::clamp<size_t>(n, 1, kStepMaxCopies));
}

std::vector<int64_t> geometric_grid(int64_t lo, int64_t max, int per_octave) {
  std::set<int64_t> g;
  if (max < lo) return {};
  for (double x = static_cast<double>(lo); x < static_cast<double>(max);
       x *= std::pow(2.0, 1.0 / per_octave))
    g.insert(static_cast<int64_t>(std::llround(x)));
  g.insert(max);
  return {g.begin(), g.end()};
}

// These rows are not in the table of kernel shapes (kernels/cases.h) that the other benchmarks
// and the tests draw from: each is a function of one model's shapes (ModelShape, its Fourier and
// CCV settings) and of the replay's limits (max_context, max_rows, max_seqs), over grids made
// when the model is named, so there is no fixed list to put there.
void register_step_benchmarks(Backend& b, const DeviceMeasurement& m, const StepBenchConfig& c) {
  const Ctx ctx{&b, &m, std::make_shared<ArenaStore>(b)};
  const ModelShape& s = c.model;
  const int64_t bf16 = s.dtype == DType::bf16 ? 1 : 0;
  const int64_t e = dtype_bytes(s.dtype);
  const std::vector<int64_t> rows = geometric_grid(1, c.max_rows, 2);

  // Elementwise stand-in: per layer a step moves rows * (4 hidden + 3 intermediate) elements
  // (model/cost.h layer_cost), copied as half that many bytes each way.
  const int64_t max_kib =
      std::max<int64_t>(1, (c.max_rows * e * (4 * s.hidden + 3 * s.intermediate) / 2 + 1023) >> 10);
  auto* cp = family("step_copy", [ctx](benchmark::State& st) { bm_copy(st, ctx); }, {"kib"});
  for (int64_t k : geometric_grid(1, max_kib, 2)) cp->Args({k});

  auto* g = family("step_gemm", [ctx](benchmark::State& st) { bm_gemm(st, ctx); },
                   {"bf16", "rows", "out", "in", "bias"});
  struct Shape {
    int64_t out, in, bias, max_rows;
  };
  std::vector<Shape> shapes = {
      {s.d1() + 2 * s.kv_width(), s.hidden, s.qkv_bias ? 1 : 0, c.max_rows},
      {s.hidden, s.d1(), 0, c.max_rows},
      {2 * s.intermediate, s.hidden, 0, c.max_rows},
      {s.hidden, s.intermediate, 0, c.max_rows},
      {s.vocab, s.hidden, 0, std::min(c.max_rows, c.max_seqs)},  // LM head: one row a sequence
  };
  if (c.ccv) shapes.push_back({c.methods.ccv.resolved_d2(s), s.d1(), 1, c.max_rows});
  for (const Shape& sh : shapes)
    for (int64_t r : rows)
      if (r <= sh.max_rows) g->Args({bf16, r, sh.out, sh.in, sh.bias});

  // Attention: decode (q_len 1) every half octave of context; prefill chunks of q_len tokens
  // over contexts from q_len up, every octave.
  std::vector<int64_t> qs{1};
  for (int64_t q : geometric_grid(16, c.max_rows, 1))
    if (q % 4 == 0 || q == c.max_rows) qs.push_back(q);
  auto attention_points = [&](benchmark::internal::Benchmark* r, const std::vector<int64_t>& tail) {
    for (int64_t q : qs) {
      if (q > c.max_context) continue;
      const auto tokens =
          q == 1 ? geometric_grid(16, c.max_context, 2) : geometric_grid(q, c.max_context, 1);
      for (int64_t t : tokens) {
        std::vector<int64_t> a{bf16, 1, s.heads, s.kv_heads, s.head_dim, q, t};
        a.insert(a.end(), tail.begin(), tail.end());
        r->Args(a);
      }
    }
  };
  const std::vector<std::string> at_axes{"bf16",     "batch", "q_heads", "kv_heads",
                                         "head_dim", "q_len", "tokens"};
  attention_points(
      family(
          "step_attention", [ctx](benchmark::State& st) { bm_attention(st, ctx); }, at_axes),
      {});

  if (c.fourier) {
    const FourierConfig fc = c.methods.fourier;
    const int64_t cdims = fc.resolved_count(s.head_dim);
    std::vector<std::string> fa_axes = at_axes;
    fa_axes.push_back("cdims");
    fa_axes.push_back("m");
    attention_points(
        family(
            "step_fourier_attention",
            [ctx, fc](benchmark::State& st) { bm_fourier_attention(st, ctx, fc); }, fa_axes),
        {cdims, fc.m});
    const std::vector<std::string> comp_axes{"bf16", "heads", "tokens", "head_dim", "cdims", "m"};
    for (bool rec : {false, true}) {
      auto* r = family(
          rec ? "step_fourier_reconstruct" : "step_fourier_compress",
          [ctx, fc, rec](benchmark::State& st) { bm_compress(st, ctx, fc, rec); }, comp_axes);
      for (int64_t t : geometric_grid(std::min<int64_t>(64, c.max_context), c.max_context, 1))
        r->Args({bf16, s.kv_heads, t, s.head_dim, cdims, fc.m});
    }
  }

  if (c.ccv) {
    auto* r = family("step_cosine_rows", [ctx](benchmark::State& st) { bm_cosine(st, ctx); },
                     {"bf16", "rows", "dim"});
    for (int64_t n : rows) r->Args({bf16, n, c.methods.ccv.resolved_d2(s)});
  }
}

}  // namespace kvscope::kernels::bench
