// Small traces replayed end to end, every figure worked out by hand beforehand.
//
// The model is kvscope-tiny (4 layers, 2 KV heads x 64 dims, f32): an exact KV cache holds
// 2 (K,V) x 2 heads x 64 x 4 bytes = 1024 bytes per token per layer, 4096 per token in all.
// The cost model is a clock that charges 1/16 ms per GEMM row and nothing for anything else: a
// layer runs four GEMMs per token (QKV, O, gate+up, down), so one token through the 4 layers
// costs 16/16 = 1 ms and a step costs 1 ms per token it processes.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "model/error.h"
#include "sim/replay/replay.h"

using namespace kvscope;

namespace {

class TokenClock final : public OpCostModel {
 public:
  static constexpr double kMsPerRow = 1.0 / 16;
  std::string describe() const override { return "token clock"; }
  double attention_ms(const AttentionShape&) const override { return 0; }
  double fourier_attention_ms(const FourierAttentionShape&) const override { return 0; }
  double gemm_ms(const GemmShape& g) const override {
    return static_cast<double>(g.rows) * kMsPerRow;
  }
  double cosine_ms(int64_t, int64_t, DType) const override { return 0; }
  double elementwise_ms(double) const override { return 0; }
};

constexpr int64_t kTokenBytes = 4096;  // exact KV of one token, all layers

std::string write_trace(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/kvscope_hand_" + name;
  std::ofstream(path) << text;
  return path;
}

ReplayConfig tiny_config(std::vector<Method> methods, int64_t kv_capacity_bytes) {
  ReplayConfig c;
  c.model = load_model("kvscope-tiny");
  c.methods = std::move(methods);
  c.gpu_memory_bytes = model_weight_bytes(c.model) + kv_capacity_bytes;
  c.scheduler.token_budget = 100;
  c.scheduler.max_batch = 8;
  c.method_config.ccv.l_eff = 2;  // of 4 layers
  return c;
}

ReplayResult replay(const std::string& name, const std::string& text, const ReplayConfig& c) {
  static const TokenClock clock;
  return run_replay(write_trace(name, text), c, clock);
}

std::string rec(double ts, int64_t in, int64_t out, const std::string& extra = "") {
  std::ostringstream s;
  s << "{\"timestamp\": " << ts << ", \"input_length\": " << in << ", \"output_length\": " << out
    << extra << "}\n";
  return s.str();
}

// Percentiles come from a log histogram, within 0.1% of the exact value.
void expect_pct(double got, double want) { EXPECT_NEAR(got, want, std::abs(want) * 1e-3); }

struct StepWant {
  double start, full;
  int64_t batch, prefill, decode, kv_in_step, kv_after;
};

void expect_steps(const std::vector<StepRecord>& got, const std::vector<StepWant>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    EXPECT_DOUBLE_EQ(got[i].start_ms, want[i].start);
    EXPECT_DOUBLE_EQ(got[i].full_ms, want[i].full);
    EXPECT_EQ(got[i].batch, want[i].batch);
    EXPECT_EQ(got[i].prefill_tokens, want[i].prefill);
    EXPECT_EQ(got[i].decode_tokens, want[i].decode);
    EXPECT_EQ(got[i].kv_in_step_bytes, want[i].kv_in_step);
    EXPECT_EQ(got[i].kv_bytes, want[i].kv_after);
  }
}

}  // namespace

TEST(ReplayByHand, ContinuousBatchingLatenciesAndMemory) {
  // r0 and r1 arrive together; r2 after both are done.
  const std::string trace = rec(0, 10, 3) + rec(0, 5, 1) + rec(100, 20, 2);
  const ReplayResult r = replay("fcfs.jsonl", trace, tiny_config({Method::baseline}, 1 << 30));
  ASSERT_EQ(r.methods.size(), 1u);
  const MethodResult& m = r.methods[0];
  // step 0: both prompts (15 tokens, 15 ms); r1 is done after its first token.
  // steps 1, 2: r0 decodes (cache 11, then 12 tokens) and is done at 17.
  // idle until r2 arrives at 100: its prompt (20 ms), then one decode.
  expect_steps(m.steps, {{0, 15, 2, 15, 0, 15 * kTokenBytes, 10 * kTokenBytes},
                         {15, 1, 1, 0, 1, 11 * kTokenBytes, 11 * kTokenBytes},
                         {16, 1, 1, 0, 1, 12 * kTokenBytes, 0},
                         {100, 20, 1, 20, 0, 20 * kTokenBytes, 20 * kTokenBytes},
                         {120, 1, 1, 0, 1, 21 * kTokenBytes, 0}});
  ASSERT_EQ(m.requests.size(), 3u);
  const double first[] = {15, 15, 120}, finish[] = {17, 15, 121};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(m.requests[i].id, i);
    EXPECT_EQ(m.requests[i].trace_line, i + 1);
    EXPECT_DOUBLE_EQ(m.requests[i].first_token_ms, first[i]);
    EXPECT_DOUBLE_EQ(m.requests[i].finish_ms, finish[i]);
  }
  const MethodSummary& s = m.summary;
  EXPECT_EQ(s.requests, 3);
  EXPECT_EQ(s.generated_tokens, 6);
  EXPECT_EQ(s.prefill_tokens, 35);
  expect_pct(s.ttft_ms.p50, 15);  // TTFTs 15, 15, 20
  expect_pct(s.ttft_ms.p90, 20);
  expect_pct(s.ttft_ms.p99, 20);
  EXPECT_DOUBLE_EQ(s.ttft_ms.mean, 50.0 / 3);
  expect_pct(s.e2e_ms.p50, 17);  // 17, 15, 21
  expect_pct(s.e2e_ms.p99, 21);
  expect_pct(s.tbt_ms.p50, 1);  // three gaps of one decode step each
  expect_pct(s.tbt_ms.p99, 1);
  EXPECT_DOUBLE_EQ(s.makespan_s, 0.121);
  EXPECT_DOUBLE_EQ(s.throughput_tokens_per_s, 6 / 0.121);
  EXPECT_DOUBLE_EQ(s.busy_full_ms, 38);
  EXPECT_DOUBLE_EQ(s.busy_paper_ms, 0);  // the paper's model prices attention only: free here
  EXPECT_EQ(s.peak_kv_bytes, 21 * kTokenBytes);
  // KV held over time: 15 tokens for 15 ms, 11 and 12 for 1 ms each, 20 for 20 ms, 21 for 1.
  EXPECT_DOUBLE_EQ(s.mean_kv_bytes, (15 * 15 + 11 + 12 + 20 * 20 + 21) * kTokenBytes / 121.0);
  EXPECT_EQ(s.peak_total_bytes, model_weight_bytes(load_model("kvscope-tiny")) + 21 * kTokenBytes);
  EXPECT_EQ(s.preemptions, 0);
  EXPECT_EQ(s.steps, 5);
}

TEST(ReplayByHand, AFullPoolPreemptsTheNewestAndRecomputesIt) {
  // Room for 30 tokens. Two requests of 12 + 5: both prompts fit (24), each decode step adds 2.
  const std::string trace = rec(0, 12, 5) + rec(0, 12, 5);
  const ReplayResult r =
      replay("preempt.jsonl", trace, tiny_config({Method::baseline}, 30 * kTokenBytes));
  const MethodResult& m = r.methods[0];
  // step 4: r0 needs a 31st token: r1 (newest) is preempted and must re-prefill 12 + 4 = 16
  // tokens, which only fit once r0 is done (16 + 16 > 30).
  expect_steps(m.steps, {{0, 24, 2, 24, 0, 24 * kTokenBytes, 24 * kTokenBytes},
                         {24, 2, 2, 0, 2, 26 * kTokenBytes, 26 * kTokenBytes},
                         {26, 2, 2, 0, 2, 28 * kTokenBytes, 28 * kTokenBytes},
                         {28, 2, 2, 0, 2, 30 * kTokenBytes, 30 * kTokenBytes},
                         {30, 1, 1, 0, 1, 16 * kTokenBytes, 0},
                         {31, 16, 1, 16, 0, 16 * kTokenBytes, 0}});
  EXPECT_DOUBLE_EQ(m.requests[0].finish_ms, 31);
  EXPECT_EQ(m.requests[0].preemptions, 0);
  EXPECT_DOUBLE_EQ(m.requests[1].first_token_ms, 24);
  EXPECT_DOUBLE_EQ(m.requests[1].finish_ms, 47);
  EXPECT_EQ(m.requests[1].preemptions, 1);
  const MethodSummary& s = m.summary;
  EXPECT_EQ(s.preemptions, 1);
  EXPECT_EQ(s.prefill_tokens, 12 + 12 + 16);
  EXPECT_EQ(s.generated_tokens, 10);
  EXPECT_EQ(s.peak_kv_bytes, 30 * kTokenBytes);
  EXPECT_EQ(s.kv_capacity_bytes, 30 * kTokenBytes);
  // Gaps: r0 2, 2, 2, 1; r1 2, 2, 2 and 17 (from its 4th token at 30 to its 5th at 47).
  expect_pct(s.tbt_ms.p50, 2);
  expect_pct(s.tbt_ms.p90, 17);
  EXPECT_DOUBLE_EQ(s.tbt_ms.mean, 30.0 / 8);
}

TEST(ReplayByHand, CcvHitsEvictionsAndTheirCost) {
  // 4 layers, L_eff 2, d2 = d1/2 = 128: a CCV of 10 tokens is 128 x 10 x 4 = 5120 bytes; the
  // budget holds two. Hits keep KV in the first 2 layers only: 2048 bytes per token.
  // Per prompt token (GEMM rows at 1/16 ms): a miss runs 4 full layers (16), T_l once after
  // L_eff (1) and T_l in each remaining layer (2): 19/16 ms; a hit skips QKV in the remaining
  // layers (16 - 2) and adds T_l once: 15/16 ms. The paper's model (attention and T_cos free
  // here) is T_l + L_remain T_l = 3/16 ms per token for a miss and T_l = 1/16 for a hit.
  const std::string trace = rec(0, 10, 1, ", \"hash_ids\": [1, 2, 3, 4, 5]") +         // miss
                            rec(100, 10, 1, ", \"hash_ids\": [1, 2, 3, 4, 6]") +       // 0.8: hit
                            rec(200, 10, 1, ", \"hash_ids\": [7, 8, 9, 10, 11]") +     // miss
                            rec(300, 10, 1, ", \"hash_ids\": [1, 2, 3, 4, 5]") +       // 1.0: hit
                            rec(400, 10, 1, ", \"hash_ids\": [20, 21, 22, 23, 24]") +  // evicts r2
                            rec(500, 10, 1, ", \"hash_ids\": [7, 8, 9, 10, 11]") +     // evicts r0
                            rec(600, 10, 1, ", \"hash_ids\": [1, 2, 3, 4, 5]");  // r0 is gone: miss
  ReplayConfig c = tiny_config({Method::baseline, Method::ccv}, 1 << 30);
  c.method_config.ccv.threshold = 0.8;
  c.method_config.ccv.budget_bytes = 2 * 5120;
  c.method_config.ccv.eviction = Eviction::lru;
  c.gpu_memory_bytes += ccv_layer_weight_bytes(c.model, c.method_config.ccv) + 2 * 5120;
  const ReplayResult r = replay("ccv.jsonl", trace, c);
  ASSERT_EQ(r.methods.size(), 2u);
  const MethodResult& base = r.methods[0];
  const MethodResult& ccv = r.methods[1];
  EXPECT_EQ(ccv.summary.method, Method::ccv);

  const bool hit[] = {false, true, false, true, false, false, false};
  const double sim[] = {0, 0.8, 0, 1, 0, 0, 0};
  const int64_t cache_after[] = {5120, 5120, 10240, 10240, 10240, 10240, 10240};
  const double p_after[] = {0, 1.0 / 2, 1.0 / 3, 2.0 / 4, 2.0 / 5, 2.0 / 6, 2.0 / 7};
  ASSERT_EQ(ccv.steps.size(), 7u);
  ASSERT_EQ(ccv.requests.size(), 7u);
  for (int i = 0; i < 7; ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    const StepRecord& s = ccv.steps[static_cast<size_t>(i)];
    const RequestRecord& q = ccv.requests[static_cast<size_t>(i)];
    EXPECT_EQ(q.ccv_hit, hit[i]);
    EXPECT_DOUBLE_EQ(q.similarity, sim[i]);
    EXPECT_DOUBLE_EQ(s.start_ms, 100.0 * i);
    EXPECT_DOUBLE_EQ(s.full_ms, hit[i] ? 150.0 / 16 : 190.0 / 16);
    EXPECT_DOUBLE_EQ(s.paper_ms, hit[i] ? 10.0 / 16 : 30.0 / 16);
    EXPECT_DOUBLE_EQ(s.ccv_ms, hit[i] ? 10.0 / 16 : 30.0 / 16);
    EXPECT_DOUBLE_EQ(s.dense_ms, hit[i] ? 140.0 / 16 : 160.0 / 16);
    EXPECT_EQ(s.kv_in_step_bytes, hit[i] ? 10 * 2048 : 10 * kTokenBytes);
    EXPECT_EQ(s.ccv_cache_bytes, cache_after[i]);
    EXPECT_DOUBLE_EQ(s.hit_rate, p_after[i]);
    EXPECT_DOUBLE_EQ(q.first_token_ms - q.arrival_ms, s.full_ms);
  }
  const MethodSummary& s = ccv.summary;
  EXPECT_EQ(s.ccv_lookups, 7);
  EXPECT_EQ(s.ccv_hits, 2);
  EXPECT_DOUBLE_EQ(s.hit_rate, 2.0 / 7);
  EXPECT_EQ(s.ccv_insertions, 5);
  EXPECT_EQ(s.ccv_evictions, 3);  // r4 evicts r2, r5 evicts r0, r6 (a miss too) evicts r4
  EXPECT_EQ(s.peak_ccv_cache_bytes, 10240);
  ASSERT_EQ(ccv.hit_windows.size(), 1u);  // all lookups fall in the first minute
  EXPECT_EQ(ccv.hit_windows[0].lookups, 7);
  EXPECT_EQ(ccv.hit_windows[0].hits, 2);
  EXPECT_TRUE(base.hit_windows.empty());
  // Baseline: 7 prompts of 10 tokens at 1 ms per token.
  EXPECT_DOUBLE_EQ(base.summary.busy_full_ms, 70);
  EXPECT_DOUBLE_EQ(s.busy_full_ms, (5 * 190.0 + 2 * 150.0) / 16);
  EXPECT_DOUBLE_EQ(s.busy_paper_ms, (5 * 30.0 + 2 * 10.0) / 16);
  EXPECT_TRUE(s.has_baseline);
  EXPECT_DOUBLE_EQ(s.time_saved_vs_baseline_ms, 70 - (5 * 190.0 + 2 * 150.0) / 16);
  EXPECT_DOUBLE_EQ(s.time_saved_vs_baseline_paper_ms, 0 - (5 * 30.0 + 2 * 10.0) / 16);
  // The CCV method's pool gave up the CCV layer's weights and the cache budget.
  EXPECT_EQ(s.kv_capacity_bytes, int64_t{1} << 30);
  EXPECT_EQ(base.summary.kv_capacity_bytes,
            (int64_t{1} << 30) + ccv_layer_weight_bytes(c.model, c.method_config.ccv) + 2 * 5120);
}

TEST(ReplayByHand, FourierMemoryFollowsTheLayoutAcrossTheExactEdge) {
  // Fourier with 32 of 64 dims compressed, M 8, 2 sink + 2 window tokens. Per KV head and
  // layer: t <= 4 tokens hold 64 t elements (all exact); beyond, 32 t + 32 (4 + 8). Bytes for
  // all of it: 2 (K,V) x 2 heads x 4 layers x 4 bytes = 64 per element.
  ReplayConfig c = tiny_config({Method::fourier}, 1 << 30);
  c.method_config.fourier.m = 8;
  c.method_config.fourier.sink_tokens = 2;
  c.method_config.fourier.window_tokens = 2;
  const ReplayResult r = replay("fourier.jsonl", rec(0, 3, 5), c);
  const auto& steps = r.methods[0].steps;
  const int64_t want[] = {64 * 64 * 3, 64 * 64 * 4, 64 * (32 * 5 + 384), 64 * (32 * 6 + 384),
                          64 * (32 * 7 + 384)};
  ASSERT_EQ(steps.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(steps[i].kv_in_step_bytes, want[i]) << "step " << i;
  EXPECT_EQ(r.methods[0].summary.peak_kv_bytes, want[4]);
}

TEST(ReplayByHand, ChunkedPrefillKeepsDecodesFlowing) {
  // Budget 8 tokens a step. r0: 4 + 10 tokens; r1: a 20-token prompt, 1 output token.
  const std::string trace = rec(0, 4, 10) + rec(0, 20, 1);
  ReplayConfig c = tiny_config({Method::baseline}, 1 << 30);
  c.scheduler.token_budget = 8;
  // Chunked: [r0 4 + r1 4] [r0 1 + r1 7] [r0 1 + r1 7] [r0 1 + r1 2], then r0 decodes alone:
  // r0's tokens at 8, 16, 24, 27, 28 ... 33; r1's only token at 27.
  const ReplayResult chunked = replay("chunked.jsonl", trace, c);
  const auto& cq = chunked.methods[0].requests;
  EXPECT_DOUBLE_EQ(cq[0].first_token_ms, 8);
  EXPECT_DOUBLE_EQ(cq[0].finish_ms, 33);
  EXPECT_DOUBLE_EQ(cq[1].first_token_ms, 27);
  const auto& cs = chunked.methods[0].steps;
  ASSERT_EQ(cs.size(), 10u);
  EXPECT_EQ(cs[0].prefill_tokens, 8);
  EXPECT_EQ(cs[3].prefill_tokens, 2);
  EXPECT_EQ(cs[3].decode_tokens, 1);
  expect_pct(chunked.methods[0].summary.tbt_ms.p99, 8);

  // Whole prompts: r1 does not fit beside r0's prompt, then runs alone (21 tokens with r0's
  // decode) although that is over the budget: r0 waits 21 ms for its second token.
  c.scheduler.chunked_prefill = false;
  const ReplayResult whole = replay("whole.jsonl", trace, c);
  const auto& wq = whole.methods[0].requests;
  EXPECT_DOUBLE_EQ(wq[0].first_token_ms, 4);
  EXPECT_DOUBLE_EQ(wq[1].first_token_ms, 25);
  EXPECT_DOUBLE_EQ(wq[0].finish_ms, 33);
  EXPECT_EQ(whole.methods[0].steps[1].prefill_tokens, 20);
  expect_pct(whole.methods[0].summary.tbt_ms.p99, 21);
}

TEST(ReplayByHand, ARequestThatCanNeverFitIsRejectedAndCounted) {
  // Room for 10 tokens: 8 + 5 - 1 = 12 at the longest cannot fit; 5 + 2 - 1 = 6 can.
  const std::string trace = rec(0, 8, 5) + rec(1, 5, 2);
  const ReplayResult r =
      replay("reject.jsonl", trace, tiny_config({Method::baseline}, 10 * kTokenBytes));
  const MethodResult& m = r.methods[0];
  EXPECT_EQ(m.summary.rejected, 1);
  EXPECT_EQ(m.summary.requests, 1);
  ASSERT_EQ(m.requests.size(), 2u);
  EXPECT_TRUE(m.requests[0].rejected);
  EXPECT_FALSE(m.requests[1].rejected);
  EXPECT_DOUBLE_EQ(m.requests[1].first_token_ms, 1 + 5);
  EXPECT_EQ(m.summary.generated_tokens, 2);
}

TEST(ReplayByHand, RateScaleCompressesArrivals) {
  ReplayConfig c = tiny_config({Method::baseline}, 1 << 30);
  c.rate_scale = 2;
  const ReplayResult r = replay("rate.jsonl", rec(1000, 1, 1) + rec(2000, 1, 1), c);
  EXPECT_DOUBLE_EQ(r.methods[0].requests[0].arrival_ms, 0);  // time starts at the first record
  EXPECT_DOUBLE_EQ(r.methods[0].requests[1].arrival_ms, 500);
  EXPECT_DOUBLE_EQ(r.trace.duration_s, 1.0);  // the trace's own span, not scaled
}

TEST(ReplayByHand, AzureTracesReplayToo) {
  const std::string csv =
      "TIMESTAMP,ContextTokens,GeneratedTokens\n"
      "2023-11-16 18:15:46.0000000,10,2\n"
      "2023-11-16 18:15:46.5000000,4,1\n";
  ReplayConfig c = tiny_config({Method::baseline, Method::ccv}, 1 << 30);
  c.method_config.ccv.budget_bytes = 1 << 20;
  const ReplayResult r = replay("azure.csv", csv, c);
  EXPECT_EQ(r.trace.format, "azure");
  EXPECT_EQ(r.trace.requests, 2);
  EXPECT_DOUBLE_EQ(r.methods[0].requests[1].arrival_ms, 500);
  EXPECT_DOUBLE_EQ(r.methods[0].requests[0].finish_ms, 11);
  // Without block hashes no context resembles another: every lookup misses.
  EXPECT_EQ(r.methods[1].summary.ccv_lookups, 2);
  EXPECT_EQ(r.methods[1].summary.ccv_hits, 0);
}

TEST(ReplayByHand, BadConfigurationsAreInputErrors) {
  const std::string path = write_trace("cfg.jsonl", rec(0, 1, 1));
  const TokenClock clock;
  auto field_of = [&](const ReplayConfig& c) {
    try {
      run_replay(path, c, clock);
    } catch (const InputError& e) {
      return e.field();
    }
    return std::string("(no error)");
  };
  ReplayConfig c = tiny_config({Method::baseline}, 1 << 20);
  c.gpu_memory_bytes = model_weight_bytes(c.model);  // nothing left for the KV cache
  EXPECT_EQ(field_of(c), "--gpu-mem");
  c = tiny_config({Method::baseline, Method::baseline}, 1 << 20);
  EXPECT_EQ(field_of(c), "--method");
  c = tiny_config({Method::baseline}, 1 << 20);
  c.rate_scale = 0;
  EXPECT_EQ(field_of(c), "--rate-scale");
  c = tiny_config({Method::baseline}, 1 << 20);
  c.scheduler.token_budget = 0;
  EXPECT_EQ(field_of(c), "--token-budget");
  c = tiny_config({Method::ccv}, 1 << 20);  // the 4 GiB CCV budget does not fit in 1 MiB
  EXPECT_EQ(field_of(c), "--gpu-mem");
}
