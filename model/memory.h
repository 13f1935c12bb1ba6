// Exact byte counts for the KV cache under each method, for CCV cache entries and for weights.
// Every function returns whole bytes; the derivations are in memory.cpp beside each formula.
#pragma once

#include <cstdint>

#include "model/methods.h"
#include "model/shape.h"

namespace kvscope {

struct MethodConfig {
  FourierConfig fourier;
  CcvConfig ccv;
};

// K and V bytes of one layer holding `tokens` tokens of one sequence, exact cache.
int64_t exact_layer_kv_bytes(const ModelShape& s, int64_t tokens);

// Same, with the Fourier-approximated layout.
int64_t fourier_layer_kv_bytes(const ModelShape& s, const FourierConfig& f, int64_t tokens);

// KV bytes of one sequence of `tokens` tokens under `method`. For the CCV methods `ccv_hit`
// says whether this sequence reuses a cached CCV (then only the first l_eff layers hold KV).
int64_t sequence_kv_bytes(const ModelShape& s, Method method, const MethodConfig& cfg,
                          int64_t tokens, bool ccv_hit = false);

// The expectation of sequence_kv_bytes over hits with probability p (a real number of bytes).
double expected_sequence_kv_bytes(const ModelShape& s, Method method, const MethodConfig& cfg,
                                  int64_t tokens, double p);

// One cached CCV of a context of `tokens` tokens: d2 x tokens elements.
int64_t ccv_entry_bytes(const ModelShape& s, const CcvConfig& c, int64_t tokens);

// The CCV compression layer's parameters: W_c (d2 x d1) and b_c (d2).
int64_t ccv_layer_weight_bytes(const ModelShape& s, const CcvConfig& c);

// All model parameters (embeddings, every layer, final norm, LM head unless tied).
int64_t model_weight_bytes(const ModelShape& s);

}  // namespace kvscope
