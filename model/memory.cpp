#include "model/memory.h"

#include <algorithm>

#include "model/kv_format.h"

namespace kvscope {

// Exact cache: each token stores one K and one V vector per KV head, head_dim elements each:
//   bytes = 2 * kv_heads * head_dim * tokens * sizeof(dtype)
int64_t exact_layer_kv_bytes(const ModelShape& s, int64_t tokens) {
  return 2 * s.kv_heads * s.head_dim * tokens * dtype_bytes(s.dtype);
}

// Fourier cache, per KV head and for K and V alike:
//   kept dims (head_dim - c) are exact for every token:          (head_dim - c) * tokens
//   compressed dims (c) are exact for the sink and window tokens: c * min(tokens, sink + window)
//   and the middle tokens, if any, are replaced by m coefficients per compressed dim: c * m
// The coefficient buffer has a fixed length m as soon as a middle exists (it does not shrink
// for short middles), which is what makes the memory of those dims independent of N.
// Coefficients are stored in the cache dtype.
int64_t fourier_layer_kv_bytes(const ModelShape& s, const FourierConfig& f, int64_t tokens) {
  const int64_t c = f.resolved_count(s.head_dim);
  const int64_t edge = f.sink_tokens + f.window_tokens;
  const int64_t exact_tokens = std::min(tokens, edge);
  const int64_t coeffs = tokens > edge ? f.m : 0;
  const int64_t per_head = (s.head_dim - c) * tokens + c * (exact_tokens + coeffs);
  return 2 * s.kv_heads * per_head * dtype_bytes(s.dtype);
}

int64_t layers_holding_kv(const ModelShape& s, Method method, const CcvConfig& c, bool ccv_hit) {
  return uses_ccv(method) && ccv_hit ? c.l_eff : s.layers;
}

// A CCV hit lets the remaining layers reuse the cached CCV instead of attending, so they hold no
// KV for that sequence: only the first l_eff layers do. A miss computes every layer.
int64_t sequence_kv_bytes(const ModelShape& s, Method method, const MethodConfig& cfg,
                          int64_t tokens, bool ccv_hit) {
  return layers_holding_kv(s, method, cfg.ccv, ccv_hit) *
         make_kv_format(method, s, cfg)->layer_bytes(tokens);
}

// E[bytes] = l_eff * layer + (1 - p) * (layers - l_eff) * layer
double expected_sequence_kv_bytes(const ModelShape& s, Method method, const MethodConfig& cfg,
                                  int64_t tokens, double p) {
  const double per_layer = static_cast<double>(make_kv_format(method, s, cfg)->layer_bytes(tokens));
  if (!uses_ccv(method)) return static_cast<double>(s.layers) * per_layer;
  const double l_eff = static_cast<double>(cfg.ccv.l_eff);
  const double remain = static_cast<double>(s.layers - cfg.ccv.l_eff);
  return l_eff * per_layer + (1.0 - p) * remain * per_layer;
}

int64_t ccv_entry_bytes(const ModelShape& s, const CcvConfig& c, int64_t tokens) {
  return c.resolved_d2(s) * tokens * dtype_bytes(s.dtype);
}

int64_t ccv_layer_weight_bytes(const ModelShape& s, const CcvConfig& c) {
  const int64_t d2 = c.resolved_d2(s);
  return (d2 * s.d1() + d2) * dtype_bytes(s.dtype);
}

// Per layer (Llama/Mistral/Qwen2 layout):
//   q_proj hidden x d1, k_proj and v_proj hidden x kv_width, o_proj d1 x hidden
//   (+ d1 + 2 kv_width biases for Qwen2)
//   gate_proj and up_proj hidden x intermediate, down_proj intermediate x hidden
//   two RMSNorm weights of hidden
// Plus the token embedding vocab x hidden, the final norm, and an LM head unless tied.
int64_t model_weight_bytes(const ModelShape& s) {
  const int64_t attn = s.hidden * s.d1() + 2 * s.hidden * s.kv_width() + s.d1() * s.hidden +
                       (s.qkv_bias ? s.d1() + 2 * s.kv_width() : 0);
  const int64_t mlp = 3 * s.hidden * s.intermediate;
  const int64_t per_layer = attn + mlp + 2 * s.hidden;
  const int64_t embed = s.vocab * s.hidden;
  const int64_t head = s.tied_embeddings ? 0 : s.vocab * s.hidden;
  return (s.layers * per_layer + embed + s.hidden + head) * dtype_bytes(s.dtype);
}

}  // namespace kvscope
