// The predictor of the replay: what one scheduler step costs, by the paper's attention-only
// model and by the full-layer model, both from an OpCostModel (model/cost.h). The event loop
// only sees the two durations; how they were obtained stays here (Vidur's split).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/cost.h"
#include "model/kv_format.h"
#include "model/memory.h"

namespace kvscope {

// A step as the cost models see it. Decode sequences are priced as one batched attention call
// per group at the group's mean context (exact for a roofline, which is linear in the context;
// a calibrated model sees the batch's mean). Prefill chunks are priced one by one.
struct StepShape {
  struct Chunk {
    Chunk(int64_t q, int64_t kv, bool hit, int64_t cache = 0)
        : q_tokens(q), kv_len(kv), ccv_hit(hit), cache_tokens(cache) {}
    int64_t q_tokens = 0;  // prompt tokens processed this step
    int64_t kv_len = 0;    // keys attended to, the chunk included
    bool ccv_hit = false;
    int64_t cache_tokens = 0;  // tokens its cache holds room for; 0: kv_len
  };
  int64_t decode_seqs[2] = {0, 0};    // [ccv_hit]
  int64_t decode_kv_sum[2] = {0, 0};  // [ccv_hit] summed context lengths
  std::vector<Chunk> chunks;
  // Each decode's context, [ccv_hit]: filled when decode attention is priced per sequence.
  std::vector<int64_t> decode_kv[2];
  // Sequences producing a token this step: the LM head's rows (0: the LM head is not priced).
  int64_t emitting = 0;

  void clear() {
    decode_seqs[0] = decode_seqs[1] = decode_kv_sum[0] = decode_kv_sum[1] = 0;
    chunks.clear();
    decode_kv[0].clear();
    decode_kv[1].clear();
    emitting = 0;
  }
};

struct StepPrice {
  double paper_ms = 0;  // the paper's model: attention, plus T_l and T_cos for CCV methods
  double full_ms = 0;   // the full-layer model: what the simulated clock advances by
  // full_ms split by where the time goes
  double attention_ms = 0, dense_ms = 0, ccv_ms = 0, other_ms = 0;
};

// Per layer, a step runs (L layers; CCV methods compute the first L_eff fully):
//   each sequence group's attention in the method's KV format (model/kv_format.h), and for a
//   prefill chunk the format's upkeep of its cache (the Fourier cache rebuilds its compressed
//   form), both counted as attention;
//   projections, MLP, norms over all the step's tokens in every layer, except that in the
//   remaining L - L_eff layers CCV hits skip the QKV projection and attention (they reuse the
//   cached context); attention per sequence group;
//   CCV methods, on prompt tokens only (the lookup is about the context): T_l once after L_eff
//   layers, then per remaining layer T_cos for hits and T_l for misses (the cache update).
// For one unchunked prefill this is full_layer_cost() at p = 0 or 1, and the paper part is
// paper_cost(paper_terms()) (tests/test_step_pricer.cpp holds the two to that).
// After the last layer, the LM head (vocab x hidden) runs over the `emitting` sequences' last
// rows, when StepShape says how many there are.
class StepPricer {
 public:
  StepPricer(const OpCostModel& ops, const ModelShape& shape, Method method,
             const MethodConfig& config, int64_t max_step_tokens, bool decode_per_sequence = false);

  StepPrice price(const StepShape& step) const;

 private:
  struct Dense {
    double qkv_ms = -1, o_mlp_ms = 0, norms_ms = 0;
  };
  struct Ccv {
    double t_l_ms = -1, t_cos_ms = 0;
  };
  const Dense& dense(int64_t rows) const;
  const Ccv& ccv_ops(int64_t rows) const;

  const OpCostModel& ops_;
  ModelShape shape_;
  Method method_;
  MethodConfig config_;
  int64_t d2_;
  std::unique_ptr<KvFormat> format_;    // the method's: attention and upkeep of its caches
  double full_layers_, remain_layers_;  // L_eff and L - L_eff; L and 0 without CCV
  bool decode_per_sequence_;
  // The dense and CCV ops depend on the row count alone: priced once per count. This assumes
  // the OpCostModel is a pure function of the shapes, as its interface promises.
  mutable std::vector<Dense> dense_memo_;
  mutable std::vector<Ccv> ccv_memo_;
  mutable Dense dense_scratch_;
  mutable Ccv ccv_scratch_;
};

}  // namespace kvscope
