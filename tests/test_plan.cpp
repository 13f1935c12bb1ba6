// The planner's search and memory arithmetic, against a synthetic replay whose answer is known in
// closed form, and against byte counts worked out here from the model's shapes.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <mutex>
#include <set>
#include <thread>

#include "model/error.h"
#include "model/hardware.h"
#include "sim/plan/plan.h"

using namespace kvscope;

namespace {

// A GPU that serves `capacity` times the trace's rate: TTFT = 100 ms / (1 - load) below
// saturation, then 1e9 ms; TBT 10 ms. With a 2 s TTFT SLO the highest scale meeting it is
// exactly 0.95 * capacity.
double capacity_of(Method m, const MethodConfig& c) {
  if (m == Method::baseline) return 3.0;
  if (m == Method::fourier) return 5.0 * static_cast<double>(c.fourier.m) / 256.0;
  if (m == Method::ccv) return 7.3 * c.ccv.threshold / 0.8;
  if (m == Method::fourier_ccv) return 11.1 * static_cast<double>(c.ccv.l_eff) / 8.0;
  return 1;
}

struct FakeReplay {
  double duration_s = 50;
  std::atomic<int> calls{0};
  std::atomic<int> concurrent{0}, max_concurrent{0};
  bool slow = false;

  ReplayResult operator()(const std::string& path, const ReplayConfig& rc, const OpCostModel&,
                          const ProgressFn&, const std::atomic<bool>* cancel) {
    ++calls;
    const int now = ++concurrent;
    int seen = max_concurrent.load();
    while (now > seen && !max_concurrent.compare_exchange_weak(seen, now)) {
    }
    if (slow) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ReplayResult r;
    r.trace.path = path;
    r.trace.format = "mooncake";
    r.trace.requests = 100;
    r.trace.input_tokens = 100 * 3000;
    r.trace.output_tokens = 100 * 200;
    r.trace.duration_s = duration_s;
    r.cancelled = cancel && cancel->load();
    EXPECT_EQ(rc.methods.size(), 1u);
    for (Method m : rc.methods) {
      const double load = rc.rate_scale / capacity_of(m, rc.method_config);
      const double ttft = load < 1 ? 100.0 / (1 - load) : 1e9;
      MethodResult mr;
      mr.summary.method = m;
      mr.summary.requests = 100;
      mr.summary.ttft_ms = {ttft / 2, ttft, ttft * 1.5, ttft};
      mr.summary.tbt_ms = {8, 10, 12, 9};
      mr.summary.throughput_tokens_per_s = 1000 * rc.rate_scale;
      mr.summary.hit_rate = uses_ccv(m) ? 0.25 : 0.0;
      mr.summary.kv_capacity_bytes = 1000;
      mr.summary.peak_kv_bytes = 400;
      r.methods.push_back(mr);
    }
    --concurrent;
    return r;
  }
};

ReplayFn as_fn(FakeReplay& f) {
  return
      [&f](const std::string& p, const ReplayConfig& c, const OpCostModel& o, const ProgressFn& pr,
           const std::atomic<bool>* cancel) { return f(p, c, o, pr, cancel); };
}

ReplayConfig base_config() {
  ReplayConfig rc;
  rc.model = load_model("llama-2-7b");
  return rc;
}

const RooflineCostModel& costs() {
  static const RooflineCostModel c(hardware_preset("h100-sxm"));
  return c;
}

}  // namespace

TEST(RateSearch, FindsTheKnownLimitWithinTolerance) {
  FakeReplay fake;
  const ReplayConfig rc = base_config();
  for (Method m : all_methods()) {
    const RateSearch s = search_max_rate("t.jsonl", rc, m, rc.method_config, Slo{}, {}, costs(),
                                         as_fn(fake), nullptr);
    const double truth = 0.95 * capacity_of(m, rc.method_config);
    ASSERT_TRUE(s.best) << method_name(m);
    EXPECT_LE(s.max_rate_scale, truth) << method_name(m);
    EXPECT_GT(s.max_rate_scale * 1.02, truth) << method_name(m);
    EXPECT_DOUBLE_EQ(s.base_rate_per_s, 2.0);  // 100 requests over 50 s
    EXPECT_DOUBLE_EQ(s.max_rate_per_s, 2.0 * s.max_rate_scale);
    EXPECT_TRUE(s.best->meets_slo);
    EXPECT_DOUBLE_EQ(s.best->rate_scale, s.max_rate_scale);
    EXPECT_DOUBLE_EQ(s.points.front().rate_scale, 1.0);
    // Some point within the tolerance above the answer failed: the bracket is real.
    bool failed_above = false;
    for (const auto& p : s.points)
      if (!p.meets_slo && p.rate_scale > s.max_rate_scale &&
          p.rate_scale <= s.max_rate_scale * 1.02)
        failed_above = true;
    EXPECT_TRUE(failed_above) << method_name(m);
  }
}

TEST(RateSearch, PercentileChoiceChangesTheAnswer) {
  FakeReplay fake;
  const ReplayConfig rc = base_config();
  Slo p50;
  p50.percentile = SloPercentile::p50;  // TTFT/2 <= 2 s: load <= 0.975
  Slo p99;
  p99.percentile = SloPercentile::p99;  // 1.5 TTFT <= 2 s: load <= 0.925
  const auto a = search_max_rate("t", rc, Method::baseline, rc.method_config, p50, {}, costs(),
                                 as_fn(fake), nullptr);
  const auto b = search_max_rate("t", rc, Method::baseline, rc.method_config, p99, {}, costs(),
                                 as_fn(fake), nullptr);
  EXPECT_NEAR(a.max_rate_scale / (3 * 0.975), 1, 0.02);
  EXPECT_NEAR(b.max_rate_scale / (3 * 0.925), 1, 0.02);
  EXPECT_LE(b.max_rate_scale, 3 * 0.925);
}

TEST(RateSearch, SloMissedEverywhereGivesZeroAndNoGpuCount) {
  FakeReplay fake;
  const ReplayConfig rc = base_config();
  Slo impossible;
  impossible.tbt_ms = 5;  // the fake's TBT is always 10 ms
  const RateSearch s = search_max_rate("t", rc, Method::ccv, rc.method_config, impossible, {},
                                       costs(), as_fn(fake), nullptr);
  EXPECT_FALSE(s.best);
  EXPECT_EQ(s.max_rate_per_s, 0);
  EXPECT_LE(s.points.back().rate_scale, RateSearchLimits{}.min_scale * 2);
  EXPECT_EQ(gpus_needed(10, s.max_rate_per_s), -1);
}

TEST(RateSearch, StopsGoingDownOnceLatencyNoLongerDependsOnTheRate) {
  // Bursts at one timestamp: below half the trace's rate TTFT stays at 5 s.
  ReplayFn bursty = [](const std::string&, const ReplayConfig& rc, const OpCostModel&,
                       const ProgressFn&, const std::atomic<bool>*) {
    ReplayResult r;
    r.trace.requests = 10;
    r.trace.duration_s = 10;
    MethodResult mr;
    mr.summary.method = rc.methods.at(0);
    const double ttft = rc.rate_scale > 0.5 ? 5000 * rc.rate_scale * 2 : 5000;
    mr.summary.ttft_ms = {ttft, ttft, ttft, ttft};
    mr.summary.tbt_ms = {10, 10, 10, 10};
    r.methods.push_back(mr);
    return r;
  };
  const ReplayConfig rc = base_config();
  const RateSearch s = search_max_rate("t", rc, Method::baseline, rc.method_config, Slo{}, {},
                                       costs(), bursty, nullptr);
  EXPECT_FALSE(s.best);
  EXPECT_TRUE(s.rate_independent);
  ASSERT_EQ(s.points.size(), 3u);  // 1, 0.5, 0.25: the last two agree
  EXPECT_DOUBLE_EQ(s.points.back().rate_scale, 0.25);
}

TEST(RateSearch, ScaleCapMarksALowerBound) {
  FakeReplay fake;
  const ReplayConfig rc = base_config();
  Slo lax;
  lax.ttft_ms = 2e9;
  RateSearchLimits lim;
  lim.max_scale = 16;
  const RateSearch s = search_max_rate("t", rc, Method::baseline, rc.method_config, lax, lim,
                                       costs(), as_fn(fake), nullptr);
  EXPECT_TRUE(s.hit_scale_cap);
  EXPECT_DOUBLE_EQ(s.max_rate_scale, 16);
}

TEST(RateSearch, TraceSpanningNoTimeIsAnInputError) {
  FakeReplay fake;
  fake.duration_s = 0;
  const ReplayConfig rc = base_config();
  try {
    search_max_rate("first-lines.jsonl", rc, Method::baseline, rc.method_config, Slo{}, {}, costs(),
                    as_fn(fake), nullptr);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.source(), "first-lines.jsonl");
    EXPECT_EQ(e.field(), "timestamp");
  }
}

TEST(GpusNeeded, RoundsUp) {
  EXPECT_EQ(gpus_needed(10, 10.0 / 3), 3);
  EXPECT_EQ(gpus_needed(10, 3.3), 4);
  EXPECT_EQ(gpus_needed(1, 5), 1);
  EXPECT_EQ(gpus_needed(5, 0), -1);
}

TEST(Percentile, ParsesAndPicks) {
  EXPECT_EQ(parse_percentile("p90"), SloPercentile::p90);
  EXPECT_EQ(parse_percentile("99"), SloPercentile::p99);
  EXPECT_EQ(parse_percentile("P50"), SloPercentile::p50);
  EXPECT_FALSE(parse_percentile("p95"));
  EXPECT_FALSE(parse_percentile(""));
  const Percentiles v{1, 2, 3, 4};
  EXPECT_EQ(at_percentile(v, SloPercentile::p50), 1);
  EXPECT_EQ(at_percentile(v, SloPercentile::p90), 2);
  EXPECT_EQ(at_percentile(v, SloPercentile::p99), 3);
}

// ---- Memory, against arithmetic done here from the shapes ----

TEST(MemoryFit, BaselineMatchesHandArithmetic) {
  const ModelShape s = load_model("llama-2-7b");
  const MethodConfig cfg;
  const int64_t gpu = int64_t{80} << 30;
  // Llama-2-7B, bf16: 32 layers x 2 (K, V) x 32 KV heads x 128 dims x 2 bytes = 512 KiB / token.
  const int64_t per_token = 32 * 2 * 32 * 128 * 2;
  ASSERT_EQ(per_token, 524288);
  const MemoryFit f = fit_memory(s, Method::baseline, cfg, gpu, {4096, 1}, 0.0);
  const int64_t cap = gpu - model_weight_bytes(s);
  EXPECT_EQ(f.budget.kv_capacity_bytes, cap);
  EXPECT_EQ(f.batches[0].sequence_bytes_miss, 4096 * per_token);
  EXPECT_EQ(f.batches[0].max_batch_miss, cap / (4096 * per_token));
  EXPECT_EQ(f.batches[0].max_batch_hit, f.batches[0].max_batch_miss);
  EXPECT_EQ(f.batches[1].max_batch_miss, cap / per_token);
  EXPECT_EQ(f.max_context_miss, cap / per_token);
  EXPECT_EQ(f.max_context_hit, f.max_context_miss);
}

TEST(MemoryFit, LongestContextIsTheLastThatFits) {
  const ModelShape s = load_model("llama-3.1-8b");
  MethodConfig cfg;
  const int64_t gpu = int64_t{80} << 30;
  for (Method m : all_methods()) {
    const MemoryFit f = fit_memory(s, m, cfg, gpu, {}, 0.5);
    const int64_t cap = f.budget.kv_capacity_bytes;
    ASSERT_GT(f.max_context_miss, 0) << method_name(m);
    EXPECT_LE(sequence_kv_bytes(s, m, cfg, f.max_context_miss, false), cap);
    EXPECT_GT(sequence_kv_bytes(s, m, cfg, f.max_context_miss + 1, false), cap);
    if (uses_ccv(m)) {
      // A hit needs the sequence's CCV in the CCV cache: d2 x N x 2 bytes <= 4 GiB, which binds
      // long before the KV of 8 layers does.
      const int64_t d2 = cfg.ccv.resolved_d2(s);
      EXPECT_EQ(f.max_context_hit, (int64_t{4} << 30) / (d2 * 2)) << method_name(m);
      EXPECT_EQ(f.budget.ccv_cache_bytes, int64_t{4} << 30);
      EXPECT_EQ(
          f.budget.kv_capacity_bytes,
          gpu - model_weight_bytes(s) - ccv_layer_weight_bytes(s, cfg.ccv) - (int64_t{4} << 30));
    }
  }
}

TEST(MemoryFit, FourierFitsLongerAndExpectedBatchUsesP) {
  const ModelShape s = load_model("llama-2-7b");
  const MethodConfig cfg;
  const int64_t gpu = int64_t{80} << 30;
  const MemoryFit base = fit_memory(s, Method::baseline, cfg, gpu, {32768}, 0);
  const MemoryFit four = fit_memory(s, Method::fourier, cfg, gpu, {32768}, 0);
  EXPECT_GT(four.max_context_miss, base.max_context_miss);
  EXPECT_GT(four.batches[0].max_batch_miss, base.batches[0].max_batch_miss);
  const MemoryFit ccv = fit_memory(s, Method::ccv, cfg, gpu, {32768}, 0.5);
  const double expected = expected_sequence_kv_bytes(s, Method::ccv, cfg, 32768, 0.5);
  EXPECT_EQ(ccv.batches[0].max_batch_at_p,
            static_cast<int64_t>(
                std::floor(static_cast<double>(ccv.budget.kv_capacity_bytes) / expected)));
  EXPECT_GT(ccv.batches[0].max_batch_at_p, ccv.batches[0].max_batch_miss);
  EXPECT_GT(ccv.batches[0].max_batch_hit, ccv.batches[0].max_batch_at_p);
}

TEST(MemoryFit, AllDimsCompressedHasNoMemoryLimit) {
  const ModelShape s = load_model("llama-2-7b");
  MethodConfig cfg;
  cfg.fourier.compressed_count = s.head_dim;
  const MemoryFit f = fit_memory(s, Method::fourier, cfg, int64_t{80} << 30, {}, 0);
  EXPECT_EQ(f.max_context_miss, -1);
}

TEST(MemoryFit, WeightsThatDoNotFitLeaveNothing) {
  const ModelShape s = load_model("llama-3.1-70b");
  const MemoryFit f = fit_memory(s, Method::baseline, {}, int64_t{80} << 30, {4096}, 0);
  EXPECT_LT(f.budget.kv_capacity_bytes, 0);
  EXPECT_EQ(f.batches[0].max_batch_miss, 0);
  EXPECT_EQ(f.max_context_miss, 0);
}

// ---- The whole plan ----

TEST(Plan, RunsEverySearchOnceInParallelAndDeterministically) {
  FakeReplay fake;
  fake.slow = true;
  PlanConfig pc;
  pc.trace_path = "t.jsonl";
  pc.replay = base_config();
  pc.target_rate_per_s = 20;
  pc.batch_contexts_tokens = {1024, 4096};
  pc.jobs = 2;
  std::mutex mu;
  int64_t last_replays = 0, last_done = 0;
  const PlanResult a = make_plan(pc, costs(), as_fn(fake), [&](const PlanProgress& p) {
    std::lock_guard lock(mu);
    EXPECT_GE(p.replays_done, last_replays);
    last_replays = p.replays_done;
    last_done = p.searches_done;
  });
  EXPECT_EQ(fake.max_concurrent.load(), 2);
  ASSERT_EQ(a.methods.size(), 4u);
  // Sweep: ccv and fourier_ccv x (3 thresholds + 4 L_eff), fourier and fourier_ccv x 4 M.
  EXPECT_EQ(a.sweep.size(), 2u * 7 + 2 * 4);
  // Distinct searches: 4 main + per CCV method 2 thresholds + 3 L_eff new (0.8 and 8 are main),
  // per Fourier method 3 M new (256 is main).
  const int64_t searches = 4 + 2 * (2 + 3) + 2 * 3;
  EXPECT_EQ(last_done, searches);
  EXPECT_EQ(a.replays, fake.calls.load());
  EXPECT_EQ(last_replays, a.replays);

  for (const auto& mp : a.methods) {
    const double truth = 0.95 * capacity_of(mp.method, pc.replay.method_config);
    EXPECT_NEAR(mp.search.max_rate_scale / truth, 1, 0.02);
    EXPECT_EQ(mp.gpus_for_target, gpus_needed(20, mp.search.max_rate_per_s));
    EXPECT_EQ(mp.memory.p, uses_ccv(mp.method) ? 0.25 : 0.0);
    EXPECT_EQ(mp.at_trace_mean.context_tokens, 3200);
  }
  for (const auto& r : a.sweep) {
    MethodConfig c = pc.replay.method_config;
    if (r.axis == SweepAxis::threshold) c.ccv.threshold = r.value;
    if (r.axis == SweepAxis::l_eff) c.ccv.l_eff = static_cast<int64_t>(r.value);
    if (r.axis == SweepAxis::fourier_m) c.fourier.m = static_cast<int64_t>(r.value);
    EXPECT_EQ(search_label(r.plan.method, r.plan.search.config), search_label(r.plan.method, c));
    EXPECT_NEAR(r.plan.search.max_rate_scale / (0.95 * capacity_of(r.plan.method, c)), 1, 0.02);
  }

  fake.slow = false;
  pc.jobs = 1;
  const PlanResult b = make_plan(pc, costs(), as_fn(fake));
  for (size_t i = 0; i < a.methods.size(); ++i) {
    EXPECT_EQ(a.methods[i].search.max_rate_scale, b.methods[i].search.max_rate_scale);
    EXPECT_EQ(a.methods[i].search.points.size(), b.methods[i].search.points.size());
  }
}

TEST(Plan, CancelStopsWithCancelled) {
  FakeReplay fake;
  fake.slow = true;
  PlanConfig pc;
  pc.trace_path = "t.jsonl";
  pc.replay = base_config();
  std::atomic<bool> cancel{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    cancel = true;
  });
  EXPECT_THROW(make_plan(pc, costs(), as_fn(fake), {}, &cancel), Cancelled);
  stopper.join();
  EXPECT_LT(fake.calls.load(), 200);
}

TEST(Plan, FirstErrorPropagatesAndStopsTheRest) {
  std::atomic<int> calls{0};
  ReplayFn failing = [&](const std::string& p, const ReplayConfig&, const OpCostModel&,
                         const ProgressFn&, const std::atomic<bool>*) -> ReplayResult {
    ++calls;
    throw InputError(p, 7, "input_length", "negative");
  };
  PlanConfig pc;
  pc.trace_path = "bad.jsonl";
  pc.replay = base_config();
  try {
    make_plan(pc, costs(), failing);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 7);
    EXPECT_EQ(e.field(), "input_length");
  }
  EXPECT_LE(calls.load(), pc.jobs);
}

TEST(Plan, InvalidSweepValueIsAnInputError) {
  FakeReplay fake;
  PlanConfig pc;
  pc.trace_path = "t.jsonl";
  pc.replay = base_config();
  pc.sweep.l_eff = {4, 99};  // Llama-2-7B has 32 layers
  EXPECT_THROW(make_plan(pc, costs(), as_fn(fake)), InputError);
  EXPECT_EQ(fake.calls.load(), 0);
}
