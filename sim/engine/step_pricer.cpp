#include "sim/engine/step_pricer.h"

#include <algorithm>
#include <cmath>

namespace kvscope {

StepPricer::StepPricer(const OpCostModel& ops, const ModelShape& shape, Method method,
                       const MethodConfig& config, int64_t max_step_tokens,
                       bool decode_per_sequence)
    : ops_(ops),
      shape_(shape),
      method_(method),
      config_(config),
      d2_(config.ccv.resolved_d2(shape)),
      format_(make_kv_format(method, shape, config)),
      dense_memo_(static_cast<size_t>(max_step_tokens) + 1),
      ccv_memo_(uses_ccv(method) ? static_cast<size_t>(max_step_tokens) + 1 : 0) {
  const int64_t l_eff = uses_ccv(method) ? config.ccv.l_eff : shape.layers;
  full_layers_ = static_cast<double>(l_eff);
  remain_layers_ = static_cast<double>(shape.layers - l_eff);
  decode_per_sequence_ = decode_per_sequence;
}

const StepPricer::Dense& StepPricer::dense(int64_t rows) const {
  const bool memo = static_cast<size_t>(rows) < dense_memo_.size();
  Dense& d = memo ? dense_memo_[static_cast<size_t>(rows)] : dense_scratch_;
  if (!memo || d.qkv_ms < 0) {
    // layer_cost's projections, MLP and norms do not depend on the method or the context.
    const LayerCost c = layer_cost(ops_, shape_, Method::baseline, config_, 1, rows, rows);
    d = Dense{c.qkv_ms, c.o_proj_ms + c.mlp_ms, c.norms_ms};
  }
  return d;
}

const StepPricer::Ccv& StepPricer::ccv_ops(int64_t rows) const {
  const bool memo = static_cast<size_t>(rows) < ccv_memo_.size();
  Ccv& c = memo ? ccv_memo_[static_cast<size_t>(rows)] : ccv_scratch_;
  if (!memo || c.t_l_ms < 0) {
    const PaperTerms t = paper_terms(ops_, shape_, d2_, rows);
    c = Ccv{t.t_l_ms, t.t_cos_ms};
  }
  return c;
}

StepPrice StepPricer::price(const StepShape& step) const {
  const bool ccv = uses_ccv(method_);
  const int64_t layers = shape_.layers;
  const int64_t l_eff = static_cast<int64_t>(full_layers_);
  int64_t rows = 0, miss_rows = 0, prompt_rows[2] = {0, 0};
  double attn_all = 0, attn_miss = 0, paper = 0;

  auto group = [&](int64_t seqs, int64_t q, int64_t kv, bool hit, bool prefill,
                   int64_t cache_tokens = 0) {
    double a = format_->attention_ms(ops_, seqs, q, kv, cache_tokens);
    if (prefill) a += format_->prefill_upkeep_ms(ops_, q, kv, cache_tokens);
    const int64_t r = seqs * q;
    rows += r;
    attn_all += a;
    if (!hit) miss_rows += r, attn_miss += a;
    PaperTerms terms{a, 0, 0};
    if (ccv && prefill) {
      prompt_rows[hit ? 1 : 0] += r;
      const Ccv& c = ccv_ops(r);
      terms.t_l_ms = c.t_l_ms;
      terms.t_cos_ms = c.t_cos_ms;
    }
    const PassCost pass = paper_cost(terms, layers, l_eff, hit ? 1.0 : 0.0);
    paper += ccv ? pass.t_ccv_ms : pass.t_tran_ms;
  };
  for (int hit = 0; hit < 2; ++hit) {
    const int64_t n = step.decode_seqs[hit];
    if (n == 0) continue;
    if (decode_per_sequence_) {
      for (int64_t kv : step.decode_kv[hit]) group(1, 1, kv, hit != 0, false);
      continue;
    }
    const auto mean_kv = static_cast<int64_t>(
        std::llround(static_cast<double>(step.decode_kv_sum[hit]) / static_cast<double>(n)));
    group(n, 1, mean_kv, hit != 0, false);
  }
  for (const auto& c : step.chunks) group(1, c.q_tokens, c.kv_len, c.ccv_hit, true, c.cache_tokens);

  StepPrice p;
  p.paper_ms = paper;
  if (rows == 0) return p;
  const Dense all = dense(rows);  // a copy: a second dense() may reuse the scratch
  const double qkv_miss = miss_rows > 0 ? dense(miss_rows).qkv_ms : 0.0;
  const double L = static_cast<double>(layers);
  p.attention_ms = full_layers_ * attn_all + remain_layers_ * attn_miss;
  p.dense_ms = full_layers_ * all.qkv_ms + remain_layers_ * qkv_miss + L * all.o_mlp_ms;
  if (step.emitting > 0)
    p.dense_ms +=
        ops_.gemm_ms(GemmShape{step.emitting, shape_.vocab, shape_.hidden, false, shape_.dtype});
  p.other_ms = L * all.norms_ms;
  if (ccv && prompt_rows[0] + prompt_rows[1] > 0) {
    p.ccv_ms = ccv_ops(prompt_rows[0] + prompt_rows[1]).t_l_ms;
    if (prompt_rows[1] > 0) p.ccv_ms += remain_layers_ * ccv_ops(prompt_rows[1]).t_cos_ms;
    if (prompt_rows[0] > 0) p.ccv_ms += remain_layers_ * ccv_ops(prompt_rows[0]).t_l_ms;
  }
  p.full_ms = p.attention_ms + p.dense_ms + p.ccv_ms + p.other_ms;
  return p;
}

}  // namespace kvscope
