#include "sim/check/executor.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/buffer_view.h"

namespace kvscope::check {

using kernels::BufferView;
using kernels::DeviceBuffer;

namespace {

// Byte the caches are filled with: bf16 0x3C3C ~ 0.0115, f32 0x3C3C3C3C ~ 0.0115. A device-side
// fill keeps re-holding tens of gigabytes of caches cheap; attention's speed does not depend on
// the values (no kernel skips work by value), unlike a GEMM's power draw, so the weights get
// random tiles instead.
constexpr uint8_t kCacheFill = 0x3C;

struct Sizes {
  int64_t x, h, wide, ew, exact_kv, ccv, cos;
};

Sizes sizes_of(const ModelShape& s, const MethodConfig& cfg, bool ccv, const ExecutorLimits& l) {
  const int64_t e = dtype_bytes(s.dtype);
  const int64_t qkv = s.d1() + 2 * s.kv_width();
  Sizes z{};
  z.x = l.max_rows * std::max(s.hidden, s.d1()) * e;
  z.h = l.max_rows * std::max(s.hidden, s.d1()) * e;
  z.wide = std::max(l.max_rows * std::max(qkv, 2 * s.intermediate),
                    std::min(l.max_rows, l.max_seqs) * s.vocab) *
           e;
  z.ew = (l.max_rows * e * (4 * s.hidden + 3 * s.intermediate) / 2 + 1023) / 1024 * 1024 + 1024;
  z.exact_kv = s.kv_heads * l.max_context * s.head_dim * e;
  const int64_t d2 = ccv ? cfg.ccv.resolved_d2(s) : 0;
  z.ccv = ccv ? l.max_rows * d2 * e : 0;
  z.cos = ccv ? l.max_rows * 4 : 0;
  return z;
}

}  // namespace

int64_t StepExecutor::scratch_bytes(const ModelShape& shape, const MethodConfig& config,
                                    bool ccv_layer, const ExecutorLimits& limits) {
  const Sizes z = sizes_of(shape, config, ccv_layer, limits);
  return z.x + z.h + z.wide + 2 * z.ew + z.exact_kv + 2 * z.ccv + z.cos;
}

StepExecutor::StepExecutor(kernels::Backend& b, const ModelShape& shape, const MethodConfig& config,
                           bool ccv_layer, const ExecutorLimits& limits)
    : b_(b), shape_(shape), config_(config), limits_(limits) {
  const DType t = shape.dtype;
  const int64_t e = dtype_bytes(t);
  const kernels::RandomTiler weights(t, size_t{8} << 20, 7);
  auto alloc_random = [&](int64_t elements) {
    auto buf = b_.alloc(static_cast<size_t>(std::max<int64_t>(elements, 1) * e));
    weights.fill(b_, *buf);
    return buf;
  };
  // Weights as the model holds them (model/memory.h model_weight_bytes lists the same parts);
  // their size is read back from the backend's own accounting.
  const int64_t before = b_.allocated_bytes();
  const int64_t qkv = shape.d1() + 2 * shape.kv_width();
  for (int64_t l = 0; l < shape.layers; ++l) {
    Layer w;
    w.qkv = alloc_random(qkv * shape.hidden);
    if (shape.qkv_bias) w.qkv_bias = alloc_random(qkv);
    w.o = alloc_random(shape.hidden * shape.d1());
    w.gate_up = alloc_random(2 * shape.intermediate * shape.hidden);
    w.down = alloc_random(shape.hidden * shape.intermediate);
    w.norms = alloc_random(2 * shape.hidden);
    layers_.push_back(std::move(w));
  }
  embed_ = alloc_random(shape.vocab * shape.hidden);
  final_norm_ = alloc_random(shape.hidden);
  if (!shape.tied_embeddings) lm_head_ = alloc_random(shape.vocab * shape.hidden);
  model_weight_bytes_ = b_.allocated_bytes() - before;
  if (ccv_layer) {
    d2_ = config.ccv.resolved_d2(shape);
    ccv_w_ = alloc_random(d2_ * shape.d1());
    ccv_b_ = alloc_random(d2_);
    ccv_weight_bytes_ = b_.allocated_bytes() - before - model_weight_bytes_;
  }

  const Sizes z = sizes_of(shape, config, ccv_layer, limits);
  x_ = alloc_random(z.x / e);
  h_ = alloc_random(z.h / e);
  wide_ = alloc_random(z.wide / e);
  ew_src_ = alloc_random(z.ew / e);
  ew_dst_ = b_.alloc(static_cast<size_t>(z.ew));
  exact_kv_ = alloc_random(z.exact_kv / e);
  if (ccv_layer) {
    ccv_out_ = alloc_random(z.ccv / e);
    ccv_cached_ = alloc_random(z.ccv / e);
    cos_out_ = b_.alloc(static_cast<size_t>(z.cos));
  }

  layout_.compressed_dims = config.fourier.resolve_dims(shape.head_dim);
  layout_.m = config.fourier.m;
  layout_.sink = config.fourier.sink_tokens;
  layout_.window = config.fourier.window_tokens;
  b_.synchronize();
}

StepExecutor::~StepExecutor() = default;

void StepExecutor::set_method(Method m) {
  if (uses_ccv(m) && !ccv_w_)
    throw std::logic_error("StepExecutor: a CCV method needs the CCV layer's weights");
  seqs_.clear();
  cache_bytes_ = 0;
  method_ = m;
}

int64_t StepExecutor::layers_with_kv(bool hit) const {
  return uses_ccv(method_) && hit ? config_.ccv.l_eff : shape_.layers;
}

bool StepExecutor::fourier_form(int64_t tokens) const {
  return uses_fourier(method_) && tokens > layout_.edge();
}

size_t StepExecutor::sequence_bytes(int64_t tokens, bool hit) const {
  const kernels::KvShape ks{1, shape_.kv_heads, tokens, shape_.head_dim, shape_.dtype};
  size_t per_layer = 0;
  if (fourier_form(tokens)) {
    const kernels::FourierBufferBytes f = kernels::fourier_buffer_bytes(ks, layout_);
    per_layer = 2 * (f.kept + f.edge + f.coeffs);
  } else {
    per_layer = 2 * static_cast<size_t>(ks.elements() * dtype_bytes(ks.dtype));
  }
  return static_cast<size_t>(layers_with_kv(hit)) * per_layer;
}

void StepExecutor::build(Seq& s, int64_t tokens, bool hit) {
  s.layers.clear();
  s.buffer.reset();  // free first: the device may not hold the old and the new together
  s.tokens = tokens;
  s.hit = hit;
  s.fourier = fourier_form(tokens);
  const size_t total = sequence_bytes(tokens, hit);
  s.buffer = b_.alloc(total);
  b_.fill(*s.buffer, kCacheFill);
  const kernels::KvShape ks{1, shape_.kv_heads, tokens, shape_.head_dim, shape_.dtype};
  size_t off = 0;
  auto take = [&](size_t bytes) {
    auto v = std::make_unique<BufferView>(*s.buffer, off, bytes);
    off += bytes;
    return v;
  };
  for (int64_t l = 0; l < layers_with_kv(hit); ++l) {
    LayerCache c;
    if (s.fourier) {
      const kernels::FourierBufferBytes f = kernels::fourier_buffer_bytes(ks, layout_);
      for (kernels::FourierTensor* t : {&c.fk, &c.fv}) {
        t->kept = take(f.kept);
        t->edge = take(f.edge);
        t->coeffs = take(f.coeffs);
      }
    } else {
      const auto n = static_cast<size_t>(ks.elements() * dtype_bytes(ks.dtype));
      c.k = take(n);
      c.v = take(n);
    }
    s.layers.push_back(std::move(c));
  }
  if (off != total) throw std::logic_error("StepExecutor: cache layout does not add up");
}

void StepExecutor::hold(const std::vector<ObservedStep::Held>& held) {
  std::map<int64_t, const ObservedStep::Held*> want;
  for (const auto& h : held) want[h.request] = &h;
  for (auto it = seqs_.begin(); it != seqs_.end();) {
    const auto w = want.find(it->first);
    if (w == want.end() || w->second->tokens != it->second.tokens ||
        w->second->ccv_hit != it->second.hit) {
      cache_bytes_ -= static_cast<int64_t>(it->second.buffer ? it->second.buffer->bytes() : 0);
      it = seqs_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [id, h] : want) {
    if (seqs_.count(id)) continue;
    if (h->tokens > limits_.max_context && uses_fourier(method_))
      throw std::logic_error("StepExecutor: a cache longer than the executor's max_context");
    Seq& s = seqs_[id];
    build(s, h->tokens, h->ccv_hit);
    cache_bytes_ += static_cast<int64_t>(s.buffer->bytes());
  }
}

void StepExecutor::gemm(int64_t rows, int64_t out, int64_t in, const DeviceBuffer& w,
                        const DeviceBuffer* bias, DeviceBuffer& x, DeviceBuffer& y) {
  b_.gemm(kernels::GemmArgs{rows, out, in, bias != nullptr, shape_.dtype}, x, w, bias, y);
}

int64_t StepExecutor::elementwise_copy_bytes(int64_t rows) const {
  // The cost model prices rows * (4 hidden + 3 intermediate) elements moved (read + write);
  // a copy of half as many bytes moves that many. Rounded to the KiB, as the step tables are.
  const int64_t moved =
      rows * dtype_bytes(shape_.dtype) * (4 * shape_.hidden + 3 * shape_.intermediate);
  return std::max<int64_t>(1, (moved + 1024) / 2048) * 1024;
}

void StepExecutor::attend(Seq& s, int64_t layer, int64_t q_tokens, int64_t kv_len, bool prefill) {
  LayerCache& c = s.layers.at(static_cast<size_t>(layer));
  const kernels::AttentionArgs a{1,      shape_.heads, shape_.kv_heads, shape_.head_dim, q_tokens,
                                 kv_len, true,         shape_.dtype};
  const auto qo =
      static_cast<size_t>(shape_.heads * q_tokens * shape_.head_dim * dtype_bytes(shape_.dtype));
  BufferView q(*wide_, 0, qo), o(*h_, 0, qo);
  if (!s.fourier) {
    b_.attention(a, q, *c.k, *c.v, o);
    return;
  }
  if (prefill) {
    // Rebuild the compressed form over the whole context: the prefix back to exact values,
    // then K (V) of all kv_len tokens compressed again.
    const int64_t prefix = kv_len - q_tokens;
    const size_t row =
        static_cast<size_t>(shape_.kv_heads * shape_.head_dim * dtype_bytes(shape_.dtype));
    for (kernels::FourierTensor* t : {&c.fk, &c.fv}) {
      if (prefix > 0) {
        BufferView exact(*exact_kv_, 0, row * static_cast<size_t>(prefix));
        b_.fourier_reconstruct({1, shape_.kv_heads, prefix, shape_.head_dim, shape_.dtype}, layout_,
                               *t, exact);
      }
      BufferView exact(*exact_kv_, 0, row * static_cast<size_t>(kv_len));
      b_.fourier_compress({1, shape_.kv_heads, kv_len, shape_.head_dim, shape_.dtype}, layout_,
                          exact, *t);
    }
  }
  b_.fourier_attention(a, layout_, q, c.fk, c.fv, o);
}

void StepExecutor::run(const ObservedStep& step, unsigned parts) {
  const bool do_attn = parts & kAttention, do_dense = parts & kDense, do_ccv = parts & kCcv,
             do_other = parts & kOther;
  const bool ccv = uses_ccv(method_);
  const int64_t L = shape_.layers;
  const int64_t l_eff = ccv ? config_.ccv.l_eff : L;
  int64_t rows = 0, miss_rows = 0, hit_prompt = 0, miss_prompt = 0, emitting = 0;
  std::vector<Seq*> seqs;
  for (const auto& it : step.items) {
    const auto s = seqs_.find(it.request);
    if (s == seqs_.end())
      throw std::logic_error("StepExecutor: request " + std::to_string(it.request) +
                             " is in the step but not held");
    seqs.push_back(&s->second);
    rows += it.q_tokens;
    if (!it.ccv_hit) miss_rows += it.q_tokens;
    if (it.prefill) (it.ccv_hit ? hit_prompt : miss_prompt) += it.q_tokens;
    if (it.emits) ++emitting;
  }
  if (rows > limits_.max_rows) throw std::logic_error("StepExecutor: more rows than max_rows");
  const int64_t qkv = shape_.d1() + 2 * shape_.kv_width();
  const auto ew = static_cast<size_t>(elementwise_copy_bytes(rows));
  for (int64_t l = 0; l < L; ++l) {
    const Layer& w = layers_[static_cast<size_t>(l)];
    if (do_other) b_.copy(*ew_src_, *ew_dst_, ew);
    const bool remaining = l >= l_eff;
    const int64_t qkv_rows = remaining ? miss_rows : rows;
    if (do_dense && qkv_rows > 0)
      gemm(qkv_rows, qkv, shape_.hidden, *w.qkv, w.qkv_bias.get(), *x_, *wide_);
    for (size_t i = 0; i < step.items.size() && do_attn; ++i) {
      const auto& it = step.items[i];
      if (remaining && it.ccv_hit) continue;
      attend(*seqs[i], l, it.q_tokens, it.kv_len, it.prefill);
    }
    if (do_dense) {
      gemm(rows, shape_.hidden, shape_.d1(), *w.o, nullptr, *h_, *x_);
      gemm(rows, 2 * shape_.intermediate, shape_.hidden, *w.gate_up, nullptr, *x_, *wide_);
      gemm(rows, shape_.hidden, shape_.intermediate, *w.down, nullptr, *wide_, *x_);
    }
    if (!do_ccv) continue;
    if (ccv && l == l_eff - 1 && hit_prompt + miss_prompt > 0)
      gemm(hit_prompt + miss_prompt, d2_, shape_.d1(), *ccv_w_, ccv_b_.get(), *h_, *ccv_out_);
    if (ccv && remaining) {
      if (hit_prompt > 0)
        b_.cosine_rows(hit_prompt, d2_, shape_.dtype, *ccv_out_, *ccv_cached_, *cos_out_);
      if (miss_prompt > 0)
        gemm(miss_prompt, d2_, shape_.d1(), *ccv_w_, ccv_b_.get(), *h_, *ccv_out_);
    }
  }
  if (do_dense && emitting > 0)
    gemm(emitting, shape_.vocab, shape_.hidden, lm_head_ ? *lm_head_ : *embed_, nullptr, *x_,
         *wide_);
}

}  // namespace kvscope::check
