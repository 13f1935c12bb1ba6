// Invariants of a replay of the real Mooncake conversation trace shipped in traces/.
#include <gtest/gtest.h>

#include <numeric>

#include "sim/replay/replay.h"

using namespace kvscope;

namespace {

const std::string kTrace =
    std::string(KVSCOPE_SOURCE_DIR) + "/traces/mooncake/conversation_trace.jsonl";

ReplayConfig llama_config() {
  ReplayConfig c;
  c.model = load_model("llama-3.1-8b");
  return c;
}

const RooflineCostModel& h100() {
  static const RooflineCostModel ops(hardware_preset("h100-sxm"));
  return ops;
}

// The whole trace, all four methods, with both tables. ctest runs every TEST in a process of
// its own, so the checks on it are one TEST calling the functions below. Under the sanitizers
// (10-20x slower) a prefix of the trace keeps that TEST within CI's time; the regular build
// checks the whole of it.
#if defined(__SANITIZE_ADDRESS__)
constexpr int64_t kRequests = 1500;
constexpr int64_t kRepeatRequests = 600;
#else
constexpr int64_t kRequests = 12031;
constexpr int64_t kRepeatRequests = 3000;
#endif

ReplayResult whole_trace() {
  ReplayConfig c = llama_config();
  c.max_requests = kRequests;
  return run_replay(kTrace, c, h100());
}

void every_request_finishes_exactly_once(const ReplayResult& r) {
  if (kRequests == 12031) {
    EXPECT_EQ(r.trace.input_tokens, 144793823);
    EXPECT_EQ(r.trace.output_tokens, 4122048);
  }
  EXPECT_EQ(r.trace.requests, kRequests);
  EXPECT_EQ(r.trace.format, "mooncake");
  ASSERT_EQ(r.methods.size(), 4u);
  for (const auto& m : r.methods) {
    SCOPED_TRACE(std::string(method_name(m.summary.method)));
    ASSERT_EQ(m.requests.size(), static_cast<size_t>(kRequests));
    int64_t served = 0;
    for (size_t i = 0; i < m.requests.size(); ++i) {
      const RequestRecord& q = m.requests[i];
      ASSERT_EQ(q.id, static_cast<int64_t>(i));  // each id once: the table is sorted by id
      if (q.rejected) continue;
      ++served;
      ASSERT_LE(q.arrival_ms, q.first_token_ms);
      ASSERT_LE(q.first_token_ms, q.finish_ms);
    }
    EXPECT_EQ(served, m.summary.requests);
    EXPECT_EQ(m.summary.requests + m.summary.rejected, kRequests);
  }
}

void tokens_are_conserved(const ReplayResult& r) {
  for (const auto& m : r.methods) {
    SCOPED_TRACE(std::string(method_name(m.summary.method)));
    int64_t input = 0, output = 0, decodes_due = 0;
    for (const auto& q : m.requests) {
      if (q.rejected) continue;
      input += q.input_tokens;
      output += q.output_tokens;
      decodes_due += std::max<int64_t>(q.output_tokens - 1, 0);
    }
    int64_t prefilled = 0, decoded = 0;
    for (const auto& s : m.steps) prefilled += s.prefill_tokens, decoded += s.decode_tokens;
    EXPECT_EQ(m.summary.generated_tokens, output);
    EXPECT_EQ(m.summary.prefill_tokens, prefilled);
    // Prompts are computed once, plus once more per preemption (recomputation).
    EXPECT_GE(prefilled, input);
    if (m.summary.preemptions == 0) {
      EXPECT_EQ(prefilled, input);
    }
    // The first token of a prompt comes from its prefill; a recomputed prefill emits the token
    // a decode would have: decodes fall short of output - 1 by at most one per preemption.
    EXPECT_LE(decoded, decodes_due);
    EXPECT_GE(decoded, decodes_due - m.summary.preemptions);
  }
}

void memory_stays_within_the_pool_and_the_budget(const ReplayResult& r) {
  const ReplayConfig c = llama_config();
  for (const auto& m : r.methods) {
    SCOPED_TRACE(std::string(method_name(m.summary.method)));
    const MethodSummary& s = m.summary;
    EXPECT_GT(s.kv_capacity_bytes, 0);
    int64_t peak = 0;
    double prev_end = 0;
    for (const auto& st : m.steps) {
      ASSERT_GE(st.kv_bytes, 0);
      ASSERT_LE(st.kv_bytes, st.kv_in_step_bytes);
      ASSERT_LE(st.kv_in_step_bytes, s.kv_capacity_bytes);
      ASSERT_GE(st.ccv_cache_bytes, 0);
      ASSERT_LE(st.ccv_cache_bytes, c.method_config.ccv.budget_bytes);
      if (!uses_ccv(s.method)) {
        ASSERT_EQ(st.ccv_cache_bytes, 0);
      }
      ASSERT_GE(st.hit_rate, 0.0);
      ASSERT_LE(st.hit_rate, 1.0);
      ASSERT_GT(st.full_ms, 0.0);
      ASSERT_GE(st.paper_ms, 0.0);
      ASSERT_GE(st.start_ms, prev_end);  // one step at a time on one replica
      prev_end = st.start_ms + st.full_ms;
      peak = std::max(peak, st.kv_in_step_bytes);
    }
    EXPECT_EQ(s.peak_kv_bytes, peak);
    EXPECT_LE(s.mean_kv_bytes, static_cast<double>(s.peak_kv_bytes));
    EXPECT_LE(s.peak_total_bytes, c.gpu_memory_bytes);
    EXPECT_EQ(s.steps, static_cast<int64_t>(m.steps.size()));
  }
}

void hit_probability_is_measured_and_bounded(const ReplayResult& r) {
  for (const auto& m : r.methods) {
    const MethodSummary& s = m.summary;
    SCOPED_TRACE(std::string(method_name(s.method)));
    EXPECT_GE(s.hit_rate, 0.0);
    EXPECT_LE(s.hit_rate, 1.0);
    if (!uses_ccv(s.method)) {
      EXPECT_EQ(s.ccv_lookups, 0);
      continue;
    }
    EXPECT_EQ(s.ccv_lookups, s.requests);  // one lookup per admitted request
    EXPECT_DOUBLE_EQ(s.hit_rate,
                     static_cast<double>(s.ccv_hits) / static_cast<double>(s.ccv_lookups));
    int64_t lookups = 0, hits = 0;
    for (const auto& w : m.hit_windows) lookups += w.lookups, hits += w.hits;
    EXPECT_EQ(lookups, s.ccv_lookups);
    EXPECT_EQ(hits, s.ccv_hits);
    int64_t flagged = 0;
    for (const auto& q : m.requests) flagged += q.ccv_hit;
    EXPECT_EQ(flagged, s.ccv_hits);
    EXPECT_GT(s.ccv_hits, 0);  // conversation turns do come back
  }
}

}  // namespace

TEST(ReplayTrace, InvariantsHoldOnTheWholeTrace) {
  const ReplayResult r = whole_trace();
  {
    SCOPED_TRACE("every request finishes exactly once");
    every_request_finishes_exactly_once(r);
  }
  {
    SCOPED_TRACE("tokens are conserved");
    tokens_are_conserved(r);
  }
  {
    SCOPED_TRACE("memory stays within the pool and the budget");
    memory_stays_within_the_pool_and_the_budget(r);
  }
  {
    SCOPED_TRACE("p is measured and bounded");
    hit_probability_is_measured_and_bounded(r);
  }
}

TEST(ReplayTrace, IdenticalInputsGiveIdenticalResults) {
  ReplayConfig c = llama_config();
  c.max_requests = kRepeatRequests;
  const ReplayResult a = run_replay(kTrace, c, h100());
  const ReplayResult b = run_replay(kTrace, c, h100());
  ASSERT_EQ(a.methods.size(), b.methods.size());
  for (size_t i = 0; i < a.methods.size(); ++i) {
    const auto &x = a.methods[i], &y = b.methods[i];
    ASSERT_EQ(x.steps.size(), y.steps.size());
    for (size_t k = 0; k < x.steps.size(); ++k) {
      ASSERT_EQ(x.steps[k].start_ms, y.steps[k].start_ms);
      ASSERT_EQ(x.steps[k].kv_in_step_bytes, y.steps[k].kv_in_step_bytes);
      ASSERT_EQ(x.steps[k].ccv_cache_bytes, y.steps[k].ccv_cache_bytes);
    }
    for (size_t k = 0; k < x.requests.size(); ++k) {
      ASSERT_EQ(x.requests[k].finish_ms, y.requests[k].finish_ms);
      ASSERT_EQ(x.requests[k].ccv_hit, y.requests[k].ccv_hit);
    }
    EXPECT_EQ(x.summary.ttft_ms.p99, y.summary.ttft_ms.p99);
    EXPECT_EQ(x.summary.hit_rate, y.summary.hit_rate);
  }
  EXPECT_EQ(a.trace.requests, kRepeatRequests);
}

TEST(ReplayTrace, WithRoomForEverythingNothingIsRecomputed) {
  ReplayConfig c = llama_config();
  c.max_requests = 2000;
  c.gpu_memory_bytes = int64_t{4} << 40;
  c.methods = {Method::baseline, Method::fourier_ccv};
  const ReplayResult r = run_replay(kTrace, c, h100());
  for (const auto& m : r.methods) {
    int64_t input = 0, decodes_due = 0, prefilled = 0, decoded = 0;
    for (const auto& q : m.requests) input += q.input_tokens, decodes_due += q.output_tokens - 1;
    for (const auto& s : m.steps) prefilled += s.prefill_tokens, decoded += s.decode_tokens;
    EXPECT_EQ(m.summary.preemptions, 0);
    EXPECT_EQ(prefilled, input);
    EXPECT_EQ(decoded, decodes_due);
  }
}

TEST(ReplayTrace, CancellingStopsEarlyAndSaysSo) {
  std::atomic<bool> cancel{false};
  int calls = 0;
  ReplayConfig c = llama_config();
  c.methods = {Method::baseline};
  const ReplayResult r = run_replay(
      kTrace, c, h100(),
      [&](double f, const std::string&) {
        EXPECT_GE(f, 0.0);
        EXPECT_LE(f, 1.0);
        if (++calls == 2) cancel = true;
      },
      &cancel);
  EXPECT_TRUE(r.cancelled);
  EXPECT_LT(r.trace.requests, 12031);
}
