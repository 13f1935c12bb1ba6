// The Fourier-approximated KV cache (FourierConfig, model/methods.h): the compressed head dims
// of the middle tokens held as M spectral coefficients, the rest exact.
#include <algorithm>

#include "model/cost.h"
#include "model/kv_format.h"
#include "model/memory.h"

namespace kvscope {

namespace {

class FourierKv final : public KvFormat {
 public:
  FourierKv(const ModelShape& shape, const FourierConfig& f)
      : shape_(shape),
        f_(f),
        compressed_(f.resolved_count(shape.head_dim)),
        edge_(f.sink_tokens + f.window_tokens) {}

  int64_t layer_bytes(int64_t tokens) const override {
    return fourier_layer_kv_bytes(shape_, f_, tokens);
  }

  double attention_ms(const OpCostModel& ops, int64_t seqs, int64_t q_tokens, int64_t kv_len,
                      int64_t cache_tokens) const override {
    const AttentionShape a{seqs,   shape_.heads, shape_.kv_heads, shape_.head_dim, q_tokens,
                           kv_len, true,         shape_.dtype};
    // A cache no longer than sink + window has no middle: memory.h counts it exact, and it is
    // attended exactly.
    if (!has_middle(kv_len, cache_tokens)) return ops.attention_ms(a);
    return ops.fourier_attention_ms(FourierAttentionShape{a, compressed_, f_.m, edge_});
  }

  // The DCT basis depends on the middle's length, so every coefficient changes as tokens
  // arrive: a prefill chunk rebuilds its sequence's compressed form, the cached prefix
  // reconstructed and then the whole context compressed, for K and V.
  double prefill_upkeep_ms(const OpCostModel& ops, int64_t q_tokens, int64_t kv_len,
                           int64_t cache_tokens) const override {
    if (!has_middle(kv_len, cache_tokens)) return 0.0;
    FourierCompressShape s{shape_.kv_heads, kv_len,      shape_.head_dim, compressed_, f_.m,
                           edge_,           shape_.dtype};
    double ms = ops.fourier_compress_ms(s);
    if (kv_len > q_tokens) {
      s.tokens = kv_len - q_tokens;
      ms += ops.fourier_reconstruct_ms(s);
    }
    return 2.0 * ms;  // K and V
  }

  int64_t compressed_dims() const override { return compressed_; }

 private:
  bool has_middle(int64_t kv_len, int64_t cache_tokens) const {
    return std::max(kv_len, cache_tokens) > edge_;
  }

  ModelShape shape_;
  FourierConfig f_;
  int64_t compressed_;
  int64_t edge_;
};

}  // namespace

std::unique_ptr<KvFormat> make_fourier_kv(const ModelShape& shape, const MethodConfig& config) {
  return std::make_unique<FourierKv>(shape, config.fourier);
}

}  // namespace kvscope
