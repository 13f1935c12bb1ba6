// The kernel executor of kvscope check: runs one replay step (sim/replay/replay.h ObservedStep)
// on a kernel backend (kernels/backend.h), through a transformer stack at the model's real
// shapes with random weights, over per-sequence KV caches held in the form each method stores
// them. It runs what the step pricer (sim/engine/step_pricer.h) prices, call for call:
//
//   per layer          one elementwise pass over the step's rows (norms, RoPE, SiLU*up, residual
//                      adds: the backend has no such kernels, so a device copy moving the same
//                      bytes stands in for them, as the cost model prices them);
//                      the QKV projection (rows of sequences that attend in this layer);
//                      attention, one call per sequence (its cache is its own allocation):
//                        exact cache          attention()
//                        Fourier cache        a prefill chunk rebuilds the compressed form
//                                             (fourier_reconstruct of the cached prefix into an
//                                             exact scratch, fourier_compress of the context,
//                                             for K and V), then fourier_attention(); a decode
//                                             attends with fourier_attention()
//                        CCV hit, layer >= L_eff   nothing (the cached context is reused)
//                      the O projection, gate+up and down projections over every row;
//   CCV methods        after layer L_eff the CCV layer (gemm with bias, d1 -> d2) over the
//                      step's prompt rows; in each later layer the cosine check (cosine_rows)
//                      over hit prompt rows and the CCV layer over miss prompt rows;
//   after the stack    the LM head over the sequences that produce a token.
//
// The caches hold random values (the weights are random, so no value would mean more): what
// the timing depends on is the shapes and the bytes, which are the real ones. Each sequence's
// KV is ONE backend allocation, sized from the kernels' own layouts (kernels/backend.h:
// [kv_heads, tokens, head_dim] for K and V, fourier_buffer_bytes() for the Fourier form) for the
// tokens the KV pool holds for it, and carved into per-layer tensors: so the backend's
// allocated_bytes() is the KV memory the kernels need, which kvscope check compares with the
// memory model's count (model/memory.h) to the byte.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "model/memory.h"
#include "sim/replay/replay.h"

namespace kvscope::check {

struct ExecutorLimits {
  int64_t max_rows = 8192;      // most tokens in one step
  int64_t max_seqs = 256;       // most sequences in one step
  int64_t max_context = 32768;  // longest cache (tokens)
};

class StepExecutor {
 public:
  // Allocates the model's weights (every layer, embeddings, final norm, LM head unless tied;
  // the CCV layer with `ccv_layer`) and the activation scratch for `limits`.
  StepExecutor(kernels::Backend& b, const ModelShape& shape, const MethodConfig& config,
               bool ccv_layer, const ExecutorLimits& limits);
  ~StepExecutor();

  // Bytes of scratch the executor needs for `limits`, beside the weights and the caches: what
  // must stay free on the device besides the KV pool.
  static int64_t scratch_bytes(const ModelShape& shape, const MethodConfig& config, bool ccv_layer,
                               const ExecutorLimits& limits);

  int64_t model_weight_bytes() const { return model_weight_bytes_; }  // allocated
  int64_t ccv_weight_bytes() const { return ccv_weight_bytes_; }      // allocated

  // Drops every cache and switches to `m`.
  void set_method(Method m);
  // Makes the caches hold exactly the `held` sequences at their sizes (reallocating those that
  // changed, freeing the others); the new memory is filled with random values.
  void hold(const std::vector<ObservedStep::Held>& held);
  // Bytes the caches hold: their buffers' sizes, from the kernels' layouts.
  int64_t cache_bytes() const { return cache_bytes_; }

  // Which of the step's kernels to run: all of them, or one part (the parts of StepPrice:
  // attention with the Fourier rebuild, dense layers with the LM head, CCV layer and cosine
  // checks, elementwise stand-ins), to time the parts one by one.
  enum Part : unsigned { kAttention = 1, kDense = 2, kCcv = 4, kOther = 8, kAll = 15 };
  // Enqueues the step's kernels (the caller times them with Backend::time_ms). Every sequence
  // in the step must be held.
  void run(const ObservedStep& step, unsigned parts = kAll);

 private:
  struct Layer {
    std::unique_ptr<kernels::DeviceBuffer> qkv, qkv_bias, o, gate_up, down, norms;
  };
  struct LayerCache {
    std::unique_ptr<kernels::DeviceBuffer> k, v;  // exact form
    kernels::FourierTensor fk, fv;                // Fourier form
  };
  struct Seq {
    int64_t tokens = 0;
    bool hit = false;
    bool fourier = false;  // held in the Fourier form (tokens > sink + window)
    std::unique_ptr<kernels::DeviceBuffer> buffer;
    std::vector<LayerCache> layers;  // the layers that hold KV for it
  };

  int64_t layers_with_kv(bool hit) const;
  bool fourier_form(int64_t tokens) const;
  size_t sequence_bytes(int64_t tokens, bool hit) const;
  void build(Seq& s, int64_t tokens, bool hit);
  void attend(Seq& s, int64_t layer, int64_t q_tokens, int64_t kv_len, bool prefill);
  int64_t elementwise_copy_bytes(int64_t rows) const;
  void gemm(int64_t rows, int64_t out, int64_t in, const kernels::DeviceBuffer& w,
            const kernels::DeviceBuffer* bias, kernels::DeviceBuffer& x, kernels::DeviceBuffer& y);

  kernels::Backend& b_;
  ModelShape shape_;
  MethodConfig config_;
  ExecutorLimits limits_;
  Method method_ = Method::baseline;
  kernels::FourierLayout layout_;
  int64_t d2_ = 0;

  std::vector<Layer> layers_;
  std::unique_ptr<kernels::DeviceBuffer> embed_, final_norm_, lm_head_, ccv_w_, ccv_b_;
  int64_t model_weight_bytes_ = 0, ccv_weight_bytes_ = 0;
  // Activations: x [rows, max(hidden, d1)] the hidden states, h [rows, max(d1, hidden)] the
  // attention output, wide [rows, max(qkv, 2 intermediate)] (and the LM head's logits), the
  // elementwise stand-in's source and destination, an exact K or V for the Fourier rebuild,
  // the CCV and its cached counterpart, the cosine results.
  std::unique_ptr<kernels::DeviceBuffer> x_, h_, wide_, ew_src_, ew_dst_, exact_kv_, ccv_out_,
      ccv_cached_, cos_out_;
  std::map<int64_t, Seq> seqs_;  // request id -> its cache
  int64_t cache_bytes_ = 0;
};

}  // namespace kvscope::check
