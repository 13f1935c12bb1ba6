#include "model/cost.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "model/kv_format.h"

namespace kvscope {

// Causal attention computes half the score matrix (rounded to the exact count of pairs).
static double attended_pairs(const AttentionShape& a) {
  const double q = static_cast<double>(a.q_len), k = static_cast<double>(a.kv_len);
  if (!a.causal || a.q_len == 1) return q * k;
  // query i (0-based, among the last q_len of kv_len keys) sees kv_len - q_len + i + 1 keys
  return q * (k - q) + q * (q + 1) / 2.0;
}

// QK^T and PV: 2 FLOPs per multiply-add, two matmuls of head_dim per pair.
// Bytes: Q read and O written per query head, K and V read once per KV head (flash-style).
Work attention_work(const AttentionShape& a) {
  const double b = static_cast<double>(a.batch), e = static_cast<double>(dtype_bytes(a.dtype));
  const double d = static_cast<double>(a.head_dim);
  Work w;
  w.flops = 4.0 * b * static_cast<double>(a.q_heads) * attended_pairs(a) * d;
  w.bytes = b * e * d *
            (2.0 * static_cast<double>(a.q_heads * a.q_len) +
             2.0 * static_cast<double>(a.kv_heads * a.kv_len));
  return w;
}

// Kept dims attend exactly over all keys. Compressed dims: scores come from projecting q onto
// the m coefficients (m*c per query) and an inverse transform over the middle tokens (m per
// middle token); the output over them is the transform of the probabilities (m per middle
// token) mapped back through the coefficients (m*c). Exact tokens attend in every dim.
Work fourier_attention_work(const FourierAttentionShape& f) {
  const AttentionShape& a = f.attn;
  const double b = static_cast<double>(a.batch), e = static_cast<double>(dtype_bytes(a.dtype));
  const double d = static_cast<double>(a.head_dim), c = static_cast<double>(f.compressed_dims);
  const double m = static_cast<double>(f.m);
  const double exact = static_cast<double>(std::min(f.exact_tokens, a.kv_len));
  const double middle = static_cast<double>(a.kv_len) - exact;
  const double pairs = attended_pairs(a);
  const double frac_middle = a.kv_len > 0 ? middle / static_cast<double>(a.kv_len) : 0.0;
  const double mid_pairs = pairs * frac_middle;
  const double per_head = 4.0 * pairs * (d - c) + 4.0 * (pairs - mid_pairs) * c +
                          4.0 * mid_pairs * m + 4.0 * static_cast<double>(a.q_len) * m * c;
  Work w;
  w.flops = b * static_cast<double>(a.q_heads) * per_head;
  const double kv_elems =
      2.0 * static_cast<double>(a.kv_heads) *
      ((d - c) * static_cast<double>(a.kv_len) + c * (exact + (middle > 0 ? m : 0)));
  w.bytes = b * e * (2.0 * static_cast<double>(a.q_heads * a.q_len) * d + kv_elems);
  return w;
}

Work gemm_work(const GemmShape& g) {
  const double r = static_cast<double>(g.rows), o = static_cast<double>(g.out);
  const double i = static_cast<double>(g.in), e = static_cast<double>(dtype_bytes(g.dtype));
  Work w;
  w.flops = 2.0 * r * o * i + (g.bias ? r * o : 0.0);
  w.bytes = e * (r * i + o * i + r * o + (g.bias ? o : 0.0));
  return w;
}

// Per row: dot, |a|^2, |b|^2 (3 multiply-adds per element); read both operands once.
Work cosine_work(int64_t rows, int64_t dim, DType t) {
  const double n = static_cast<double>(rows) * static_cast<double>(dim);
  return Work{6.0 * n, 2.0 * n * static_cast<double>(dtype_bytes(t))};
}

Work fourier_compress_work(const FourierCompressShape& s) {
  const double e = static_cast<double>(dtype_bytes(s.dtype)), h = static_cast<double>(s.heads);
  const double c = static_cast<double>(s.compressed_dims);
  const double l = static_cast<double>(s.tokens > s.exact_tokens ? s.tokens - s.exact_tokens : 0);
  const double full = h * static_cast<double>(s.tokens * s.head_dim);
  const double compressed =
      h * (static_cast<double>(s.tokens) * (static_cast<double>(s.head_dim) - c) +
           c * (static_cast<double>(s.exact_tokens) + static_cast<double>(s.m)));
  Work w;
  w.bytes = e * (full + compressed);
  w.flops = l > 1 ? h * c * 5.0 * l * std::log2(l) : 0.0;
  return w;
}

std::string RooflineCostModel::describe() const {
  std::ostringstream s;
  s << "roofline(" << hw_.name << ", " << hw_.source << ": " << hw_.peak_flops_16 / 1e12
    << " TFLOP/s 16-bit, " << hw_.mem_bytes_per_s / 1e12 << " TB/s)";
  return s.str();
}

double RooflineCostModel::time_ms(const Work& w, DType t) const {
  const double compute_s = w.flops / hw_.peak_flops(t);
  const double memory_s = w.bytes / hw_.mem_bytes_per_s;
  return hw_.launch_overhead_ms + 1e3 * std::max(compute_s, memory_s);
}

double RooflineCostModel::attention_ms(const AttentionShape& a) const {
  return time_ms(attention_work(a), a.dtype);
}
double RooflineCostModel::fourier_attention_ms(const FourierAttentionShape& f) const {
  return time_ms(fourier_attention_work(f), f.attn.dtype);
}
double RooflineCostModel::gemm_ms(const GemmShape& g) const {
  return time_ms(gemm_work(g), g.dtype);
}
double RooflineCostModel::cosine_ms(int64_t rows, int64_t dim, DType t) const {
  return time_ms(cosine_work(rows, dim, t), t);
}
double RooflineCostModel::elementwise_ms(double bytes) const {
  return hw_.launch_overhead_ms + 1e3 * bytes / hw_.mem_bytes_per_s;
}

double RooflineCostModel::fourier_compress_ms(const FourierCompressShape& s) const {
  return time_ms(fourier_compress_work(s), s.dtype);
}
double RooflineCostModel::fourier_reconstruct_ms(const FourierCompressShape& s) const {
  return time_ms(fourier_compress_work(s), s.dtype);
}

PassCost paper_cost(const PaperTerms& t, int64_t layers, int64_t l_eff, double p) {
  const double L = static_cast<double>(layers), le = static_cast<double>(l_eff);
  const double remain = L - le;
  PassCost c;
  c.t_tran_ms = L * t.t_sa_ms;
  c.t_ccv_ms =
      le * t.t_sa_ms + t.t_l_ms + remain * (p * t.t_cos_ms + (1.0 - p) * (t.t_sa_ms + t.t_l_ms));
  return c;
}

PaperTerms paper_terms(const OpCostModel& ops, const ModelShape& s, int64_t d2, int64_t n) {
  AttentionShape a{1, s.heads, s.kv_heads, s.head_dim, n, n, true, s.dtype};
  PaperTerms t;
  t.t_sa_ms = ops.attention_ms(a);
  t.t_l_ms = ops.gemm_ms(GemmShape{n, d2, s.d1(), true, s.dtype});
  t.t_cos_ms = ops.cosine_ms(n, d2, s.dtype);
  return t;
}

PaperTerms scale_paper_terms(const PaperTerms& at_ref, int64_t ref_n, int64_t n) {
  const double r = static_cast<double>(n) / static_cast<double>(ref_n);
  return PaperTerms{at_ref.t_sa_ms * r * r, at_ref.t_l_ms * r, at_ref.t_cos_ms * r};
}

LayerCost layer_cost(const OpCostModel& ops, const ModelShape& s, Method method,
                     const MethodConfig& config, int64_t batch, int64_t q_tokens, int64_t kv_len) {
  const int64_t rows = batch * q_tokens;
  const double e = static_cast<double>(dtype_bytes(s.dtype));
  LayerCost c;
  c.qkv_ms = ops.gemm_ms(GemmShape{rows, s.d1() + 2 * s.kv_width(), s.hidden, s.qkv_bias, s.dtype});
  c.attention_ms = layer_attention_ms(ops, s, method, config, batch, q_tokens, kv_len);
  c.o_proj_ms = ops.gemm_ms(GemmShape{rows, s.hidden, s.d1(), false, s.dtype});
  // Gate and up as one GEMM of width 2*intermediate, then down.
  c.mlp_ms = ops.gemm_ms(GemmShape{rows, 2 * s.intermediate, s.hidden, false, s.dtype}) +
             ops.gemm_ms(GemmShape{rows, s.hidden, s.intermediate, false, s.dtype});
  // Two RMSNorms (read + write hidden each) and the SiLU*up product (read 2, write 1).
  const double r = static_cast<double>(rows);
  c.norms_ms = ops.elementwise_ms(
      r * e * (4.0 * static_cast<double>(s.hidden) + 3.0 * static_cast<double>(s.intermediate)));
  return c;
}

double layer_attention_ms(const OpCostModel& ops, const ModelShape& s, Method method,
                          const MethodConfig& config, int64_t batch, int64_t q_tokens,
                          int64_t kv_len) {
  return make_kv_format(method, s, config)->attention_ms(ops, batch, q_tokens, kv_len, 0);
}

PassCost full_layer_cost(const OpCostModel& ops, const ModelShape& s, const CcvConfig& ccv,
                         int64_t n, double p) {
  const LayerCost layer = layer_cost(ops, s, Method::baseline, MethodConfig{}, 1, n, n);
  const int64_t d2 = ccv.resolved_d2(s);
  const double t_l = ops.gemm_ms(GemmShape{n, d2, s.d1(), true, s.dtype});
  const double t_cos = ops.cosine_ms(n, d2, s.dtype);
  const double hit_layer = t_cos + layer.o_proj_ms + layer.mlp_ms + layer.norms_ms;
  const double L = static_cast<double>(s.layers), le = static_cast<double>(ccv.l_eff);
  PassCost c;
  c.t_tran_ms = L * layer.total_ms();
  c.t_ccv_ms = le * layer.total_ms() + t_l +
               (L - le) * (p * hit_layer + (1.0 - p) * (layer.total_ms() + t_l));
  return c;
}

}  // namespace kvscope
