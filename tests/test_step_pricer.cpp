#include <gtest/gtest.h>

#include "model/cost.h"
#include "sim/engine/step_pricer.h"

using namespace kvscope;

namespace {

struct Fixture {
  ModelShape shape = load_model("llama-2-7b");
  RooflineCostModel ops{hardware_preset("h100-sxm")};
  MethodConfig cfg;
  int64_t d2() const { return cfg.ccv.resolved_d2(shape); }
};

StepShape one_prefill(int64_t n, bool hit) {
  StepShape s;
  s.chunks.push_back({n, n, hit});
  return s;
}

void expect_rel(double got, double want) { EXPECT_NEAR(got, want, std::abs(want) * 1e-12); }

}  // namespace

TEST(StepPricer, OneWholePrefillIsTheModelsOwnPass) {
  Fixture f;
  for (int64_t n : {1, 512, 4096, 32768}) {
    SCOPED_TRACE(n);
    const StepPricer base(f.ops, f.shape, Method::baseline, f.cfg, 8192);
    const StepPrice b = base.price(one_prefill(n, false));
    expect_rel(b.full_ms, full_layer_cost(f.ops, f.shape, f.cfg.ccv, n, 0).t_tran_ms);
    const PaperTerms t = paper_terms(f.ops, f.shape, f.d2(), n);
    expect_rel(b.paper_ms, paper_cost(t, f.shape.layers, f.cfg.ccv.l_eff, 0).t_tran_ms);

    const StepPricer ccv(f.ops, f.shape, Method::ccv, f.cfg, 8192);
    for (bool hit : {false, true}) {
      const double p = hit ? 1.0 : 0.0;
      const StepPrice c = ccv.price(one_prefill(n, hit));
      expect_rel(c.full_ms, full_layer_cost(f.ops, f.shape, f.cfg.ccv, n, p).t_ccv_ms);
      expect_rel(c.paper_ms, paper_cost(t, f.shape.layers, f.cfg.ccv.l_eff, p).t_ccv_ms);
    }
  }
}

TEST(StepPricer, AMixedStepAddsUpItsParts) {
  // Two decoding misses (contexts 1000 and 3000) and a 100-token chunk of a hit prompt at
  // positions 400..499, under ccv: L_eff layers run everything, the remaining ones skip the
  // hit's QKV and attention, the chunk pays T_l once and T_cos per remaining layer.
  Fixture f;
  const StepPricer pricer(f.ops, f.shape, Method::ccv, f.cfg, 8192);
  StepShape s;
  s.decode_seqs[0] = 2;
  s.decode_kv_sum[0] = 4000;
  s.chunks.push_back({100, 500, true});
  const StepPrice p = pricer.price(s);

  const double L = 32, le = static_cast<double>(f.cfg.ccv.l_eff), lr = L - le;
  const LayerCost all = layer_cost(f.ops, f.shape, Method::baseline, f.cfg, 1, 102, 102);
  const LayerCost miss = layer_cost(f.ops, f.shape, Method::baseline, f.cfg, 1, 2, 2);
  const double dec = layer_cost(f.ops, f.shape, Method::ccv, f.cfg, 2, 1, 2000).attention_ms;
  const double pre = layer_cost(f.ops, f.shape, Method::ccv, f.cfg, 1, 100, 500).attention_ms;
  const PaperTerms t100 = paper_terms(f.ops, f.shape, f.d2(), 100);
  expect_rel(p.attention_ms, le * (dec + pre) + lr * dec);
  expect_rel(p.dense_ms, le * all.qkv_ms + lr * miss.qkv_ms + L * (all.o_proj_ms + all.mlp_ms));
  expect_rel(p.other_ms, L * all.norms_ms);
  expect_rel(p.ccv_ms, t100.t_l_ms + lr * t100.t_cos_ms);
  expect_rel(p.full_ms, p.attention_ms + p.dense_ms + p.ccv_ms + p.other_ms);
  // Paper: decodes are attention in every layer; the hit chunk is L_eff T_sa + T_l + L_r T_cos.
  expect_rel(
      p.paper_ms,
      L * dec + paper_cost({pre, t100.t_l_ms, t100.t_cos_ms}, 32, f.cfg.ccv.l_eff, 1.0).t_ccv_ms);
}

TEST(StepPricer, FourierAttendsOverTheCompressedCache) {
  Fixture f;
  const StepPricer pricer(f.ops, f.shape, Method::fourier, f.cfg, 8192);
  StepShape s;
  s.decode_seqs[0] = 3;
  s.decode_kv_sum[0] = 3 * 20000;
  const double want =
      32 * layer_cost(f.ops, f.shape, Method::fourier, f.cfg, 3, 1, 20000).attention_ms;
  expect_rel(pricer.price(s).attention_ms, want);
  const StepPricer base(f.ops, f.shape, Method::baseline, f.cfg, 8192);
  EXPECT_LT(pricer.price(s).attention_ms, base.price(s).attention_ms);  // fewer bytes to read
}

TEST(StepPricer, MemoizedAndDirectPricesAgree) {
  Fixture f;
  const StepPricer small(f.ops, f.shape, Method::ccv, f.cfg, 16);  // memo up to 16 rows
  const StepPricer large(f.ops, f.shape, Method::ccv, f.cfg, 100000);
  for (int64_t n : {8, 1000, 8, 1000}) {
    const StepPrice a = small.price(one_prefill(n, false)), b = large.price(one_prefill(n, false));
    EXPECT_DOUBLE_EQ(a.full_ms, b.full_ms);
    EXPECT_DOUBLE_EQ(a.paper_ms, b.paper_ms);
  }
}
