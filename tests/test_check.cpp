// kvscope check's pieces: step sampling and error statistics, the step tables of the calibrated
// model (exact at measured points, log-linear between), the step pricer's executor-facing terms,
// the engine's step observer, and the executor's caches against the memory model to the byte.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include <nlohmann/json.hpp>

#include "kernels/backend.h"
#include "model/calibration.h"
#include "model/memory.h"
#include "sim/check/check.h"
#include "sim/check/executor.h"
#include "sim/engine/step_pricer.h"
#include "sim/replay/replay.h"

using namespace kvscope;
using namespace kvscope::check;
using nlohmann::json;

namespace {

const std::string kTrace =
    std::string(KVSCOPE_SOURCE_DIR) + "/traces/mooncake/conversation_trace.jsonl";

json device_block() {
  return {{"backend", "cpu"},
          {"name", "test"},
          {"date", "2026-11-23T00:00:00Z"},
          {"copy_bytes_per_s", 1e10},
          {"gemm_flops_per_s_bf16", 1e11},
          {"gemm_flops_per_s_f32", 1e11}};
}

json row(const std::string& name, double ms) {
  return {{"name", name}, {"run_type", "iteration"}, {"real_time", ms}, {"time_unit", "ms"}};
}

// A profile with the required generic families (three rows each) plus `extra` rows.
json profile_with(const std::vector<json>& extra) {
  json j;
  j["device"] = device_block();
  j["benchmarks"] = json::array();
  for (int i = 1; i <= 3; ++i) {
    const std::string n = std::to_string(1024 * i);
    j["benchmarks"].push_back(
        row("attention_prefill/bf16:1/batch:1/q_heads:4/kv_heads:2/head_dim:64/tokens:" + n, i));
    j["benchmarks"].push_back(
        row("attention_decode/bf16:1/batch:1/q_heads:4/kv_heads:2/head_dim:64/tokens:" + n, i));
    j["benchmarks"].push_back(
        row("fourier_attention_decode/bf16:1/batch:1/q_heads:4/kv_heads:2/head_dim:64/tokens:" + n +
                "/cdims:32/m:64",
            i));
    j["benchmarks"].push_back(row("gemm/bf16:1/rows:" + n + "/out:512/in:512/bias:0", i));
    j["benchmarks"].push_back(row("cosine_rows/bf16:1/rows:" + n + "/dim:512", i));
    j["benchmarks"].push_back(row("copy/mib:" + std::to_string(i), i));
  }
  for (const auto& e : extra) j["benchmarks"].push_back(e);
  return j;
}

}  // namespace

TEST(CheckSampling, EqualSharesPerKindEvenlySpread) {
  std::vector<StepKind> kinds;
  kinds.push_back(StepKind::prefill);                               // 1 prefill
  for (int i = 0; i < 100; ++i) kinds.push_back(StepKind::decode);  // 100 decodes
  for (int i = 0; i < 20; ++i) kinds.push_back(StepKind::mixed);    // 20 mixed
  const auto all = sample_steps(kinds, 0);
  EXPECT_EQ(all.size(), kinds.size());
  const auto s = sample_steps(kinds, 31);
  ASSERT_EQ(s.size(), 31u);
  int count[3] = {0, 0, 0};
  for (size_t i : s) ++count[static_cast<int>(kinds[i])];
  // The single prefill, then 15 each: what prefill cannot use goes to the others.
  EXPECT_EQ(count[static_cast<int>(StepKind::prefill)], 1);
  EXPECT_EQ(count[static_cast<int>(StepKind::mixed)], 15);
  EXPECT_EQ(count[static_cast<int>(StepKind::decode)], 15);
  EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
  EXPECT_EQ(std::adjacent_find(s.begin(), s.end()), s.end());  // no step twice
  // Decodes evenly spaced: the 15 picks of 100 are (j + 0.5) * 100 / 15 into the decodes.
  std::vector<size_t> dec;
  for (size_t i : s)
    if (kinds[i] == StepKind::decode) dec.push_back(i);
  EXPECT_EQ(dec.front(), 1u + 3u);  // floor(0.5 * 100 / 15) = 3, after the prefill at 0
  EXPECT_EQ(dec.back(), 1u + 96u);  // floor(14.5 * 100 / 15) = 96
}

TEST(CheckSampling, InterleavedOrderSpreadsEveryPrefix) {
  EXPECT_EQ(interleaved_order(8), (std::vector<size_t>{0, 4, 2, 6, 1, 5, 3, 7}));
  EXPECT_EQ(interleaved_order(5), (std::vector<size_t>{0, 4, 2, 1, 3}));
  EXPECT_TRUE(interleaved_order(0).empty());
  auto o = interleaved_order(100);
  ASSERT_EQ(o.size(), 100u);
  std::sort(o.begin(), o.end());
  for (size_t i = 0; i < o.size(); ++i) EXPECT_EQ(o[i], i);
}

TEST(CheckStats, MedianP90MaxByNearestRank) {
  ErrorStats st;
  fill_error_stats({0.05, 0.01, 0.03, 0.02, 0.04, 0.10, 0.06, 0.07, 0.08, 0.09}, st);
  EXPECT_EQ(st.steps, 10);
  EXPECT_DOUBLE_EQ(st.median, 0.055);
  EXPECT_DOUBLE_EQ(st.p90, 0.09);
  EXPECT_DOUBLE_EQ(st.max, 0.10);
  fill_error_stats({0.2, 0.1, 0.3}, st);
  EXPECT_DOUBLE_EQ(st.median, 0.2);
  EXPECT_DOUBLE_EQ(st.p90, 0.3);
}

TEST(StepTables, ExactAtMeasuredPointsLogLinearBetween) {
  // GEMM 512 -> 256 at rows 1, 16, 256: times 1, 1, 4 ms. At rows 4 (halfway between 1 and 16 in
  // log) the log ratio to the fit is halfway.
  const json p = profile_with({row("step_gemm/bf16:1/rows:1/out:256/in:512/bias:0", 1.0),
                               row("step_gemm/bf16:1/rows:16/out:256/in:512/bias:0", 1.0),
                               row("step_gemm/bf16:1/rows:256/out:256/in:512/bias:0", 4.0)});
  const CalibratedCostModel m(parse_profile(p, "test"));
  auto g = [&](int64_t rows) { return m.gemm_ms(GemmShape{rows, 256, 512, false, DType::bf16}); };
  EXPECT_NEAR(g(1), 1.0, 1e-9);
  EXPECT_NEAR(g(16), 1.0, 1e-9);
  EXPECT_NEAR(g(256), 4.0, 1e-9);
  const OpFit& fit = m.step_tables().at("step_gemm").fit;
  auto fitted = [&](int64_t rows) {
    return fit.predict_ms(gemm_work(GemmShape{rows, 256, 512, false, DType::bf16}));
  };
  const double want4 =
      fitted(4) * std::exp(0.5 * (std::log(1.0 / fitted(1)) + std::log(1.0 / fitted(16))));
  EXPECT_NEAR(g(4), want4, 1e-9 * want4);
  // Outside the measured range: the nearest point's ratio.
  EXPECT_NEAR(g(1024), fitted(1024) * 4.0 / fitted(256), 1e-9);
  // Another shape: the generic gemm fit, not the table.
  EXPECT_DOUBLE_EQ(
      m.gemm_ms(GemmShape{16, 512, 512, false, DType::bf16}),
      m.fit("gemm").predict_ms(gemm_work(GemmShape{16, 512, 512, false, DType::bf16})));
}

TEST(StepTables, AttentionInterpolatesOverQueriesAndContext) {
  const std::string pre = "step_attention/bf16:1/batch:1/q_heads:4/kv_heads:2/head_dim:64/";
  const json p = profile_with(
      {row(pre + "q_len:1/tokens:1024", 0.1), row(pre + "q_len:1/tokens:4096", 0.3),
       row(pre + "q_len:64/tokens:1024", 1.0), row(pre + "q_len:64/tokens:4096", 2.0),
       row(pre + "q_len:256/tokens:1024", 2.0), row(pre + "q_len:256/tokens:4096", 5.0)});
  const CalibratedCostModel m(parse_profile(p, "test"));
  auto a = [&](int64_t q, int64_t kv) {
    return m.attention_ms(AttentionShape{1, 4, 2, 64, q, kv, true, DType::bf16});
  };
  EXPECT_NEAR(a(1, 4096), 0.3, 1e-9);
  EXPECT_NEAR(a(64, 1024), 1.0, 1e-9);
  EXPECT_NEAR(a(256, 4096), 5.0, 1e-9);
  // Between measured points the price lies between their neighbours' (monotone data).
  EXPECT_GT(a(128, 2048), a(64, 2048));
  EXPECT_LT(a(128, 2048), a(256, 2048));
  EXPECT_GT(a(64, 2048), 1.0);
  EXPECT_LT(a(64, 2048), 2.0);
}

TEST(StepPricerForCheck, PerSequenceDecodeLmHeadAndFourierRebuild) {
  const ModelShape s = load_model("llama-3.1-8b");
  const RooflineCostModel ops(hardware_preset("h100-sxm"));
  MethodConfig cfg;
  StepShape step;
  step.decode_seqs[0] = 2;
  step.decode_kv_sum[0] = 1000 + 9000;
  step.decode_kv[0] = {1000, 9000};
  const StepPricer batched(ops, s, Method::baseline, cfg, 8192, false);
  const StepPricer per_seq(ops, s, Method::baseline, cfg, 8192, true);
  const double one = layer_attention_ms(ops, s, Method::baseline, cfg, 1, 1, 1000) +
                     layer_attention_ms(ops, s, Method::baseline, cfg, 1, 1, 9000);
  EXPECT_NEAR(per_seq.price(step).attention_ms, 32 * one, 1e-9);
  EXPECT_NEAR(batched.price(step).attention_ms,
              32 * layer_attention_ms(ops, s, Method::baseline, cfg, 2, 1, 5000), 1e-9);
  // The LM head: one vocab x hidden GEMM over the sequences producing a token.
  const double without = per_seq.price(step).dense_ms;
  step.emitting = 2;
  EXPECT_NEAR(per_seq.price(step).dense_ms - without,
              ops.gemm_ms(GemmShape{2, s.vocab, s.hidden, false, s.dtype}), 1e-9);

  // A Fourier prefill chunk rebuilds K and V: prefix reconstructed, context compressed.
  StepShape chunk;
  chunk.chunks.push_back({2048, 6144, false, 6144});
  const StepPricer fourier(ops, s, Method::fourier, cfg, 8192);
  const int64_t c = cfg.fourier.resolved_count(s.head_dim);
  FourierCompressShape f{s.kv_heads, 6144, s.head_dim, c, cfg.fourier.m, 68, s.dtype};
  const double comp = ops.fourier_compress_ms(f);
  f.tokens = 4096;
  const double rec = ops.fourier_reconstruct_ms(f);
  const double attn = layer_attention_ms(ops, s, Method::fourier, cfg, 1, 2048, 6144);
  EXPECT_NEAR(fourier.price(chunk).attention_ms, 32 * (attn + 2 * (comp + rec)), 1e-9);
  // A cache within sink + window is exact: attended exactly, nothing to rebuild.
  StepShape tiny;
  tiny.chunks.push_back({60, 60, false, 60});
  EXPECT_NEAR(fourier.price(tiny).attention_ms,
              32 * layer_attention_ms(ops, s, Method::baseline, cfg, 1, 60, 60), 1e-9);
}

TEST(StepObserver, SeesEveryStepWithTheKvThePoolHolds) {
  ReplayConfig rc;
  rc.model = load_model("llama-2-7b");
  rc.max_requests = 30;
  rc.methods = {Method::baseline, Method::fourier_ccv};
  rc.decode_attention_per_sequence = true;
  rc.price_lm_head = true;
  std::vector<ObservedStep> seen;
  rc.on_step = [&](const ObservedStep& s) { seen.push_back(s); };
  const RooflineCostModel ops(hardware_preset("h100-sxm"));
  const ReplayResult r = run_replay(kTrace, rc, ops);
  ASSERT_EQ(r.methods.size(), 2u);
  // The methods replay in lockstep, so their steps interleave; each method's in order.
  size_t total = 0;
  for (const auto& m : r.methods) {
    std::vector<const ObservedStep*> mine;
    for (const auto& o : seen)
      if (o.method == m.summary.method) mine.push_back(&o);
    ASSERT_EQ(mine.size(), m.steps.size());
    total += mine.size();
    for (size_t i = 0; i < m.steps.size(); ++i) {
      const ObservedStep& o = *mine[i];
      EXPECT_EQ(o.method, m.summary.method);
      EXPECT_EQ(o.index, static_cast<int64_t>(i));
      EXPECT_DOUBLE_EQ(o.full_ms, m.steps[i].full_ms);
      EXPECT_EQ(o.kv_in_step_bytes, m.steps[i].kv_in_step_bytes);
      int64_t held = 0, tokens = 0;
      for (const auto& h : o.held) {
        held += h.bytes;
        EXPECT_EQ(h.bytes,
                  sequence_kv_bytes(rc.model, o.method, rc.method_config, h.tokens, h.ccv_hit));
      }
      EXPECT_EQ(held, o.kv_in_step_bytes);
      for (const auto& it : o.items) {
        tokens += it.q_tokens;
        EXPECT_LE(it.kv_len, it.cache_tokens);
      }
      EXPECT_EQ(tokens, m.steps[i].prefill_tokens + m.steps[i].decode_tokens);
    }
  }
  EXPECT_EQ(total, seen.size());
}

TEST(StepExecutor, CachesAreTheMemoryModelToTheByte) {
  auto b = kernels::make_backend("cpu");
  const ModelShape s = load_model("kvscope-tiny");
  MethodConfig cfg;
  cfg.ccv.l_eff = 2;
  cfg.fourier.m = 32;
  ExecutorLimits lim;
  lim.max_rows = 256;
  lim.max_seqs = 8;
  lim.max_context = 600;
  const int64_t before = b->allocated_bytes();
  StepExecutor ex(*b, s, cfg, true, lim);
  EXPECT_EQ(ex.model_weight_bytes(), model_weight_bytes(s));
  EXPECT_EQ(ex.ccv_weight_bytes(), ccv_layer_weight_bytes(s, cfg.ccv));
  const int64_t base = b->allocated_bytes();
  EXPECT_EQ(base - before - ex.model_weight_bytes() - ex.ccv_weight_bytes(),
            StepExecutor::scratch_bytes(s, cfg, true, lim));
  for (Method m : all_methods()) {
    SCOPED_TRACE(std::string(method_name(m)));
    ex.set_method(m);
    // Short (within sink + window), at the edge, long; hits and misses.
    std::vector<ObservedStep::Held> held;
    int64_t want = 0, id = 0;
    for (int64_t tokens : {1, 40, 68, 69, 300, 600})
      for (bool hit : {false, true}) {
        const bool h = hit && uses_ccv(m);
        held.push_back({id++, tokens, sequence_kv_bytes(s, m, cfg, tokens, h), h});
        want += held.back().bytes;
      }
    ex.hold(held);
    EXPECT_EQ(ex.cache_bytes(), want);
    EXPECT_EQ(b->allocated_bytes() - base, want);
    // Grow one, drop one: still exact.
    held[4].tokens += 1;
    held[4].bytes = sequence_kv_bytes(s, m, cfg, held[4].tokens, held[4].ccv_hit);
    want += held[4].bytes - sequence_kv_bytes(s, m, cfg, held[4].tokens - 1, held[4].ccv_hit);
    want -= held.back().bytes;
    held.pop_back();
    ex.hold(held);
    EXPECT_EQ(b->allocated_bytes() - base, want);

    // A step over them runs: a decode, a chunk over a cached prefix, a whole short prompt.
    ObservedStep step;
    step.method = m;
    step.items = {{4, 1, held[4].tokens, held[4].tokens, false, held[4].ccv_hit, true},
                  {8, 8, 250, 300, true, held[8].ccv_hit, false},
                  {2, 20, 20, 40, true, false, true}};
    EXPECT_NO_THROW(ex.run(step));
    if (m == Method::fourier_ccv) {  // every part exists here (few runs: sanitizers are slow)
      for (unsigned part : {StepExecutor::kAttention, StepExecutor::kDense, StepExecutor::kCcv,
                            StepExecutor::kOther})
        EXPECT_NO_THROW(ex.run(step, part));
    }
    step.items.push_back({999, 1, 10, 10, false, false, true});
    EXPECT_THROW(ex.run(step), std::logic_error);  // not held
  }
  ex.set_method(Method::baseline);
  EXPECT_EQ(b->allocated_bytes(), base);
}
