// Pricing kernels and forward passes.
//
// OpCostModel prices single operations at given shapes. It is the one seam between "how long
// does this take" and everything that asks: the paper's cost model, the full-layer model, the
// replay engine and the checker all go through it. Implementations: RooflineCostModel (from a
// HardwareProfile) and the calibrated model fitted to measured kernels (model/calibration.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "model/dtype.h"
#include "model/hardware.h"
#include "model/methods.h"
#include "model/shape.h"

namespace kvscope {

struct AttentionShape {
  int64_t batch = 1;
  int64_t q_heads = 1;
  int64_t kv_heads = 1;
  int64_t head_dim = 128;
  int64_t q_len = 1;   // query tokens per sequence
  int64_t kv_len = 1;  // keys per sequence (including the queries' own, when causal)
  bool causal = true;
  DType dtype = DType::bf16;
};

// Attention over a Fourier-compressed cache: `compressed_dims` of head_dim are held as `m`
// coefficients for kv_len - exact_tokens middle tokens; the rest is exact.
struct FourierAttentionShape {
  AttentionShape attn;
  int64_t compressed_dims = 0;
  int64_t m = 0;
  int64_t exact_tokens = 0;  // sink + window tokens held exactly in every dim
};

// Y[rows, out] = X[rows, in] * W^T (+ b)
struct GemmShape {
  int64_t rows = 1;
  int64_t out = 1;
  int64_t in = 1;
  bool bias = false;
  DType dtype = DType::bf16;
};

// FLOPs and bytes each operation must do at least: the floors both the roofline model and the
// benchmarks' distance-from-floor column use.
struct Work {
  double flops = 0;
  double bytes = 0;
};
Work attention_work(const AttentionShape& a);
Work fourier_attention_work(const FourierAttentionShape& f);
Work gemm_work(const GemmShape& g);
Work cosine_work(int64_t rows, int64_t dim, DType t);  // cos(Z'_row, C_row) over rows x dim

// Compressing one K or V tensor of `heads` = batch * kv_heads sequences into the Fourier form,
// or reconstructing it: the full tensor is read (written) once and the compressed form written
// (read) once; FLOPs are a radix-2 FFT's 5 L log2 L per compressed dim and head, L the middle.
struct FourierCompressShape {
  int64_t heads = 1;
  int64_t tokens = 1;
  int64_t head_dim = 128;
  int64_t compressed_dims = 0;
  int64_t m = 0;
  int64_t exact_tokens = 0;  // sink + window
  DType dtype = DType::bf16;
};
Work fourier_compress_work(const FourierCompressShape& s);

class OpCostModel {
 public:
  virtual ~OpCostModel() = default;
  virtual std::string describe() const = 0;
  virtual double attention_ms(const AttentionShape& a) const = 0;
  virtual double fourier_attention_ms(const FourierAttentionShape& f) const = 0;
  virtual double gemm_ms(const GemmShape& g) const = 0;
  virtual double cosine_ms(int64_t rows, int64_t dim, DType t) const = 0;
  // Memory-bound elementwise work (norms, RoPE, activations) moving `bytes`.
  virtual double elementwise_ms(double bytes) const = 0;
  // Building one K or V tensor's Fourier form from its exact values, and the inverse. A model
  // without its own figures prices them as memory-bound work over fourier_compress_work()'s bytes.
  virtual double fourier_compress_ms(const FourierCompressShape& s) const {
    return elementwise_ms(fourier_compress_work(s).bytes);
  }
  virtual double fourier_reconstruct_ms(const FourierCompressShape& s) const {
    return elementwise_ms(fourier_compress_work(s).bytes);
  }
};

// time = launch overhead + max(flops / peak, bytes / bandwidth)
class RooflineCostModel final : public OpCostModel {
 public:
  explicit RooflineCostModel(HardwareProfile hw) : hw_(std::move(hw)) {}
  std::string describe() const override;
  double attention_ms(const AttentionShape& a) const override;
  double fourier_attention_ms(const FourierAttentionShape& f) const override;
  double gemm_ms(const GemmShape& g) const override;
  double cosine_ms(int64_t rows, int64_t dim, DType t) const override;
  double elementwise_ms(double bytes) const override;
  double fourier_compress_ms(const FourierCompressShape& s) const override;
  double fourier_reconstruct_ms(const FourierCompressShape& s) const override;
  const HardwareProfile& hardware() const { return hw_; }
  double time_ms(const Work& w, DType t) const;

 private:
  HardwareProfile hw_;
};

// ---- The paper's cost model (DESIGN.md) ----
//   T_tran = L_total * T_sa
//   T_ccv  = L_eff*T_sa + T_l + L_remain * [ p*T_cos + (1-p)*(T_sa + T_l) ]
struct PaperTerms {
  double t_sa_ms = 0;   // self-attention of one layer over N tokens, O(N^2 d1)
  double t_l_ms = 0;    // the CCV linear layer Z -> CCV, O(N d1 d2)
  double t_cos_ms = 0;  // one cosine check against a cached CCV, O(N d2)
};

struct PassCost {
  double t_tran_ms = 0;
  double t_ccv_ms = 0;
  double speedup() const { return t_ccv_ms > 0 ? t_tran_ms / t_ccv_ms : 0.0; }
};

PassCost paper_cost(const PaperTerms& t, int64_t layers, int64_t l_eff, double p);

// The terms at sequence length n, priced by an OpCostModel (prefill of one sequence, causal).
PaperTerms paper_terms(const OpCostModel& ops, const ModelShape& s, int64_t d2, int64_t n);

// User-given terms measured at `ref_n` tokens, carried to other lengths by the paper's
// asymptotics: T_sa ~ N^2, T_l ~ N, T_cos ~ N. At n == ref_n they are used unchanged.
PaperTerms scale_paper_terms(const PaperTerms& at_ref, int64_t ref_n, int64_t n);

// ---- The full-layer model: what the paper's model leaves out ----
// One decoder layer also runs the QKV and O projections, the MLP and two norms. On a CCV hit a
// remaining layer skips the QKV projections and attention (it reuses the cached context) but
// still pays the cosine check, the O projection and the MLP.
struct LayerCost {
  double qkv_ms = 0, attention_ms = 0, o_proj_ms = 0, mlp_ms = 0, norms_ms = 0;
  double total_ms() const { return qkv_ms + attention_ms + o_proj_ms + mlp_ms + norms_ms; }
};

// One layer processing q_tokens new tokens per sequence over kv_len cached tokens, batch
// sequences, with the attention over the cache in the method's KV format (model/kv_format.h).
LayerCost layer_cost(const OpCostModel& ops, const ModelShape& s, Method method,
                     const MethodConfig& config, int64_t batch, int64_t q_tokens, int64_t kv_len);

// The attention part of layer_cost alone: the method's KV format's attention_ms.
double layer_attention_ms(const OpCostModel& ops, const ModelShape& s, Method method,
                          const MethodConfig& config, int64_t batch, int64_t q_tokens,
                          int64_t kv_len);

// The full-layer counterpart of paper_cost for one prefill of n tokens.
PassCost full_layer_cost(const OpCostModel& ops, const ModelShape& s, const CcvConfig& ccv,
                         int64_t n, double p);

}  // namespace kvscope
