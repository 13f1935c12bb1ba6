// Exact byte counts for the KV cache under each method (the layouts' own formulas; every method
// reaches them through its KV format, model/kv_format.h), for CCV cache entries and for weights.
// Every function returns whole bytes; the derivations are in memory.cpp beside each formula.
#pragma once

#include <cstdint>

#include "model/methods.h"
#include "model/shape.h"

namespace kvscope {

// K and V bytes of one layer holding `tokens` tokens of one sequence, exact cache.
int64_t exact_layer_kv_bytes(const ModelShape& s, int64_t tokens);

// Same, with the Fourier-approximated layout.
int64_t fourier_layer_kv_bytes(const ModelShape& s, const FourierConfig& f, int64_t tokens);

// The layers that hold KV for one sequence: all of them, or with a CCV hit the first l_eff.
int64_t layers_holding_kv(const ModelShape& s, Method method, const CcvConfig& c, bool ccv_hit);

// KV bytes of one sequence of `tokens` tokens under `method` (its format's layer bytes, model/
// kv_format.h, times layers_holding_kv). For the CCV methods `ccv_hit`
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
