#include <gtest/gtest.h>

#include <cmath>

#include "model/cost.h"

using namespace kvscope;

TEST(PaperCost, HandComputedCase) {
  // T_sa=2, T_l=0.5, T_cos=0.1, L=32, L_eff=8, p=0.6:
  // T_tran = 64; T_ccv = 16 + 0.5 + 24*(0.06 + 0.4*2.5) = 16.5 + 24*1.06 = 41.94
  const PassCost c = paper_cost({2.0, 0.5, 0.1}, 32, 8, 0.6);
  EXPECT_DOUBLE_EQ(c.t_tran_ms, 64.0);
  EXPECT_NEAR(c.t_ccv_ms, 41.94, 1e-12);
  EXPECT_NEAR(c.speedup(), 64.0 / 41.94, 1e-12);
}

TEST(PaperCost, Limits) {
  const PaperTerms t{3.0, 0.7, 0.05};
  // p = 0: every remaining layer misses and pays attention plus the linear layer again.
  EXPECT_NEAR(paper_cost(t, 32, 8, 0.0).t_ccv_ms, 32 * 3.0 + 25 * 0.7, 1e-12);
  // p = 1: every remaining layer only checks the cosine.
  EXPECT_NEAR(paper_cost(t, 32, 8, 1.0).t_ccv_ms, 8 * 3.0 + 0.7 + 24 * 0.05, 1e-12);
  // L_eff = L_total: nothing remains; CCV costs one extra linear layer.
  EXPECT_NEAR(paper_cost(t, 32, 32, 0.5).t_ccv_ms, 32 * 3.0 + 0.7, 1e-12);
  // L_eff = 0 with p = 1: only the first linear layer and the checks.
  EXPECT_NEAR(paper_cost(t, 32, 0, 1.0).t_ccv_ms, 0.7 + 32 * 0.05, 1e-12);
}

TEST(PaperCost, ScalingFollowsTheAsymptotics) {
  const PaperTerms ref{1.0, 2.0, 3.0};
  const PaperTerms same = scale_paper_terms(ref, 1024, 1024);
  EXPECT_DOUBLE_EQ(same.t_sa_ms, 1.0);
  const PaperTerms twice = scale_paper_terms(ref, 1024, 2048);
  EXPECT_DOUBLE_EQ(twice.t_sa_ms, 4.0);
  EXPECT_DOUBLE_EQ(twice.t_l_ms, 4.0);
  EXPECT_DOUBLE_EQ(twice.t_cos_ms, 6.0);
}

TEST(Work, AttentionCountsCausalPairsExactly) {
  // N = 4 causal: 1+2+3+4 = 10 pairs; 1 head of dim 2: 4 * 10 * 2 = 80 FLOPs.
  AttentionShape a{1, 1, 1, 2, 4, 4, true, DType::f32};
  EXPECT_DOUBLE_EQ(attention_work(a).flops, 80.0);
  // Q, O: 4 tokens x 2 dims each; K, V: 4 x 2 each; f32: (8+8+8+8)*4 = 128 bytes.
  EXPECT_DOUBLE_EQ(attention_work(a).bytes, 128.0);
  // Decode (1 query over 4 keys) attends all keys.
  a.q_len = 1;
  EXPECT_DOUBLE_EQ(attention_work(a).flops, 4.0 * 4 * 2);
  // Chunked prefill: 2 queries at the end of 5 keys see 4 and 5 keys.
  a.q_len = 2;
  a.kv_len = 5;
  EXPECT_DOUBLE_EQ(attention_work(a).flops, 4.0 * 9 * 2);
}

TEST(Work, GemmAndCosine) {
  const Work g = gemm_work({3, 5, 7, true, DType::bf16});
  EXPECT_DOUBLE_EQ(g.flops, 2.0 * 3 * 5 * 7 + 15);
  EXPECT_DOUBLE_EQ(g.bytes, 2.0 * (21 + 35 + 15 + 5));
  const Work c = cosine_work(10, 4, DType::f32);
  EXPECT_DOUBLE_EQ(c.bytes, 2.0 * 40 * 4);
}

TEST(Work, FourierDecodeReadsFewerBytesThanExact) {
  AttentionShape a{8, 32, 8, 128, 1, 32768, false, DType::bf16};
  const FourierAttentionShape f{a, 64, 256, 68};
  const double exact = attention_work(a).bytes;
  const double fourier = fourier_attention_work(f).bytes;
  // kept dims + exact edge tokens + coefficients, K and V, bf16, 8 x 8 heads:
  const double kv = 2.0 * 8 * (64.0 * 32768 + 64.0 * (68 + 256));
  EXPECT_DOUBLE_EQ(fourier, 8 * 2.0 * (2.0 * 32 * 128 + kv));
  EXPECT_LT(fourier, 0.52 * exact);
}

TEST(Roofline, PicksTheSlowerOfComputeAndMemory) {
  HardwareProfile hw{"test", "unit", 1e12, 1e12, 1e9, 1 << 30, 0.0, 1};
  const RooflineCostModel m(hw);
  // 2 GFLOP at 1 TFLOP/s = 2 ms; 2 MB at 1 GB/s = 2 ms... make memory dominate:
  EXPECT_DOUBLE_EQ(m.time_ms(Work{2e9, 4e6}, DType::bf16), 4.0);
  EXPECT_DOUBLE_EQ(m.time_ms(Work{8e9, 4e6}, DType::bf16), 8.0);
  hw.launch_overhead_ms = 0.5;
  EXPECT_DOUBLE_EQ(RooflineCostModel(hw).time_ms(Work{0, 0}, DType::f32), 0.5);
}

TEST(FullLayer, HitSkipsAttentionButNotTheMlp) {
  const ModelShape s = load_model("llama-2-7b");
  const RooflineCostModel ops(hardware_preset("h100-sxm"));
  CcvConfig ccv;
  const PassCost miss = full_layer_cost(ops, s, ccv, 4096, 0.0);
  const PassCost hit = full_layer_cost(ops, s, ccv, 4096, 1.0);
  const LayerCost layer = layer_cost(ops, s, Method::baseline, MethodConfig{}, 1, 4096, 4096);
  EXPECT_NEAR(miss.t_tran_ms, 32 * layer.total_ms(), 1e-9);
  EXPECT_LT(hit.t_ccv_ms, miss.t_ccv_ms);
  // Even at p = 1 the MLP of every layer is paid: the full-layer speedup stays far below the
  // paper's, whose model prices attention alone.
  EXPECT_GT(hit.t_ccv_ms, 32 * layer.mlp_ms);
  const PassCost paper = paper_cost(paper_terms(ops, s, 2048, 4096), 32, 8, 1.0);
  EXPECT_GT(paper.speedup(), hit.speedup());
}

TEST(Roofline, SingleTokenIsFinite) {
  const ModelShape s = load_model("llama-3.1-8b");
  const RooflineCostModel ops(hardware_preset("h100-sxm"));
  const PaperTerms t = paper_terms(ops, s, 2048, 1);
  EXPECT_GT(t.t_sa_ms, 0.0);
  EXPECT_GT(t.t_l_ms, 0.0);
  EXPECT_GT(t.t_cos_ms, 0.0);
  const PassCost c = paper_cost(t, s.layers, 8, 0.5);
  EXPECT_TRUE(std::isfinite(c.speedup()));
}
