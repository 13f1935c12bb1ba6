// The exact KV cache: every token's K and V in every head dimension.
#include "model/cost.h"
#include "model/kv_format.h"
#include "model/memory.h"

namespace kvscope {

namespace {

class ExactKv final : public KvFormat {
 public:
  explicit ExactKv(const ModelShape& shape) : shape_(shape) {}

  int64_t layer_bytes(int64_t tokens) const override {
    return exact_layer_kv_bytes(shape_, tokens);
  }

  double attention_ms(const OpCostModel& ops, int64_t seqs, int64_t q_tokens, int64_t kv_len,
                      int64_t) const override {
    return ops.attention_ms(AttentionShape{seqs, shape_.heads, shape_.kv_heads, shape_.head_dim,
                                           q_tokens, kv_len, true, shape_.dtype});
  }

 private:
  ModelShape shape_;
};

}  // namespace

std::unique_ptr<KvFormat> make_exact_kv(const ModelShape& shape, const MethodConfig&) {
  return std::make_unique<ExactKv>(shape);
}

}  // namespace kvscope
