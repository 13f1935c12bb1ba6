#include <gtest/gtest.h>

#include <cmath>
#include <list>
#include <random>

#include "sim/ccv/ccv_cache.h"
#include "sim/ccv/context.h"

using namespace kvscope;

namespace {

std::shared_ptr<const ContextSignature> blocks(std::vector<uint64_t> ids) {
  TraceRecord r;
  r.hash_ids = std::move(ids);
  r.input_tokens = 1;
  return std::make_shared<const ContextSignature>(context_signature(r));
}

CcvConfig cache_config(Eviction e, int64_t budget, double threshold = 0.8, double ttl_s = 10) {
  CcvConfig c;
  c.eviction = e;
  c.budget_bytes = budget;
  c.threshold = threshold;
  c.ttl_s = ttl_s;
  return c;
}

// find() then record_lookup(), as the scheduler does at admission.
CcvMatch lookup(CcvCache& cache, const ContextSignature& ctx, double now_ms) {
  const CcvMatch m = cache.find(ctx, now_ms);
  cache.record_lookup(m);
  return m;
}

}  // namespace

TEST(CcvContext, BlockSetsAreSortedAndUnique) {
  EXPECT_EQ(blocks({5, 1, 5, 3})->blocks, (std::vector<uint64_t>{1, 3, 5}));
}

TEST(CcvContext, CosineOfBlockIndicatorsByHand) {
  // |A n B| / sqrt(|A| |B|)
  EXPECT_DOUBLE_EQ(context_similarity(*blocks({1, 2, 3, 4}), *blocks({1, 2, 3, 5})), 0.75);
  EXPECT_DOUBLE_EQ(context_similarity(*blocks({1, 2, 3, 4, 5}), *blocks({1, 2, 3, 4, 6})), 0.8);
  EXPECT_DOUBLE_EQ(context_similarity(*blocks({1, 2, 3, 4, 5}), *blocks({1, 2, 3, 4})),
                   4.0 / std::sqrt(20.0));
  EXPECT_DOUBLE_EQ(context_similarity(*blocks({1, 2}), *blocks({1, 2})), 1.0);
  EXPECT_DOUBLE_EQ(context_similarity(*blocks({1, 2}), *blocks({3})), 0.0);
  EXPECT_DOUBLE_EQ(context_similarity(*blocks({}), *blocks({1})), 0.0);
}

TEST(CcvContext, TokenIdsBecomePrefixChainedBlocks) {
  auto sig = [](std::vector<int64_t> tokens, int64_t block_size) {
    TraceRecord r;
    r.tokens = std::move(tokens);
    r.input_tokens = static_cast<int64_t>(r.tokens.size());
    r.block_size = block_size;
    return context_signature(r);
  };
  const auto a = sig({1, 2, 3, 4, 5, 6}, 2);
  const auto b = sig({1, 2, 3, 4, 9, 9}, 2);  // same first two blocks
  const auto c = sig({7, 7, 3, 4, 5, 6}, 2);  // same later blocks after a different prefix
  EXPECT_EQ(a.blocks.size(), 3u);
  EXPECT_DOUBLE_EQ(context_similarity(a, b), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(context_similarity(a, c), 0.0);  // equal blocks mean equal prefixes
  EXPECT_EQ(sig({1, 2, 3}, 2).blocks.size(), 2u);   // a partial last block counts
}

TEST(CcvContext, ContextVectorsUseTheirCosine) {
  TraceRecord r;
  r.ctx = {3, 4};
  const auto a = context_signature(r);
  r.ctx = {4, 3};
  const auto b = context_signature(r);
  EXPECT_DOUBLE_EQ(a.norm, 5.0);
  EXPECT_NEAR(context_similarity(a, b), 24.0 / 25.0, 1e-12);
  EXPECT_DOUBLE_EQ(context_similarity(a, *blocks({1})), 0.0);
}

TEST(CcvCache, HitAtTheThresholdMissBelowIt) {
  CcvCache cache(cache_config(Eviction::lru, 1000));
  EXPECT_FALSE(lookup(cache, *blocks({1, 2, 3, 4, 5}), 0).hit);  // empty cache
  ASSERT_TRUE(cache.insert(blocks({1, 2, 3, 4, 5}), 100, 0));
  const CcvMatch at = lookup(cache, *blocks({1, 2, 3, 4, 6}), 1);  // 0.8 exactly
  EXPECT_TRUE(at.hit);
  EXPECT_DOUBLE_EQ(at.similarity, 0.8);
  const CcvMatch below = lookup(cache, *blocks({1, 2, 3, 7}), 2);  // 3/sqrt(20) = 0.67
  EXPECT_FALSE(below.hit);
  EXPECT_NEAR(below.similarity, 3 / std::sqrt(20.0), 1e-12);
  EXPECT_EQ(cache.stats().lookups, 3);
  EXPECT_EQ(cache.stats().hits, 1);
  EXPECT_DOUBLE_EQ(cache.hit_rate(), 1.0 / 3.0);
  EXPECT_EQ(cache.bytes(), 100);
}

TEST(CcvCache, TheBestMatchWinsAndTiesGoToTheMostRecentlyUsed) {
  CcvCache cache(cache_config(Eviction::lru, 1000, 0.5));
  cache.insert(blocks({1, 2, 3, 4}), 100, 0);  // A
  cache.insert(blocks({1, 2, 3, 9}), 100, 1);  // B, as similar to the query as A
  cache.insert(blocks({1, 2}), 100, 2);        // C, less similar
  const auto q = blocks({1, 2, 3, 5});
  const CcvMatch first = cache.find(*q, 3);
  EXPECT_DOUBLE_EQ(first.similarity, 0.75);
  // B was used last; now use A through a query only A matches, and A wins the tie.
  const CcvMatch a = lookup(cache, *blocks({4, 1, 2, 3}), 4);
  ASSERT_TRUE(a.hit);
  EXPECT_NE(a.entry, first.entry);
  EXPECT_EQ(cache.find(*q, 5).entry, a.entry);
}

TEST(CcvCache, LruEvictsTheLeastRecentlyUsed) {
  CcvCache cache(cache_config(Eviction::lru, 300));
  cache.insert(blocks({1}), 100, 0);                // A
  cache.insert(blocks({2}), 100, 1);                // B
  cache.insert(blocks({3}), 100, 2);                // C
  EXPECT_TRUE(lookup(cache, *blocks({1}), 3).hit);  // A used: B is now the oldest
  cache.insert(blocks({4}), 100, 4);                // D evicts B
  EXPECT_EQ(cache.stats().evictions, 1);
  EXPECT_EQ(cache.entries(), 3);
  EXPECT_EQ(cache.bytes(), 300);
  EXPECT_FALSE(cache.find(*blocks({2}), 5).hit);
  EXPECT_TRUE(cache.find(*blocks({1}), 5).hit);
  cache.insert(blocks({5}), 200, 6);  // needs two slots: C then A go
  EXPECT_EQ(cache.stats().evictions, 3);
  EXPECT_FALSE(cache.find(*blocks({3}), 7).hit);
  EXPECT_FALSE(cache.find(*blocks({1}), 7).hit);
  EXPECT_TRUE(cache.find(*blocks({4}), 7).hit);
}

TEST(CcvCache, LfuEvictsTheLeastOftenHitThenTheOldest) {
  CcvCache cache(cache_config(Eviction::lfu, 300));
  cache.insert(blocks({1}), 100, 0);  // A: 2 hits
  cache.insert(blocks({2}), 100, 1);  // B: 1 hit
  cache.insert(blocks({3}), 100, 2);  // C: 0 hits
  lookup(cache, *blocks({1}), 3);
  lookup(cache, *blocks({1}), 4);
  lookup(cache, *blocks({2}), 5);
  cache.insert(blocks({4}), 100, 6);  // evicts C (0 hits)
  EXPECT_FALSE(cache.find(*blocks({3}), 7).hit);
  cache.insert(blocks({5}), 100, 8);  // D and E have 0 hits; D is older: D goes
  EXPECT_FALSE(cache.find(*blocks({4}), 9).hit);
  EXPECT_TRUE(cache.find(*blocks({5}), 9).hit);
  EXPECT_TRUE(cache.find(*blocks({2}), 9).hit);
  EXPECT_EQ(cache.stats().evictions, 2);
}

TEST(CcvCache, TtlExpiresByInsertionTimeWhateverTheHits) {
  CcvCache cache(cache_config(Eviction::ttl, 1000, 0.8, /*ttl_s=*/10));
  cache.insert(blocks({1}), 100, 0);                   // A expires at 10 s
  cache.insert(blocks({2}), 100, 5000);                // B expires at 15 s
  EXPECT_TRUE(lookup(cache, *blocks({1}), 9999).hit);  // a hit does not extend A
  EXPECT_FALSE(cache.find(*blocks({1}), 10000).hit);
  EXPECT_EQ(cache.stats().expirations, 1);
  EXPECT_EQ(cache.bytes(), 100);
  EXPECT_TRUE(cache.find(*blocks({2}), 14999).hit);
  cache.expire(15000);
  EXPECT_EQ(cache.entries(), 0);
  EXPECT_EQ(cache.stats().expirations, 2);
  EXPECT_EQ(cache.stats().evictions, 0);
}

TEST(CcvCache, TtlUnderPressureEvictsTheEntryClosestToExpiry) {
  CcvCache cache(cache_config(Eviction::ttl, 200, 0.8, 100));
  cache.insert(blocks({1}), 100, 0);
  cache.insert(blocks({2}), 100, 1);
  lookup(cache, *blocks({1}), 2);     // recently used, but inserted first
  cache.insert(blocks({3}), 100, 3);  // A goes
  EXPECT_FALSE(cache.find(*blocks({1}), 4).hit);
  EXPECT_TRUE(cache.find(*blocks({2}), 4).hit);
  EXPECT_EQ(cache.stats().evictions, 1);
}

TEST(CcvCache, ACcvLargerThanTheBudgetIsNotCached) {
  CcvCache cache(cache_config(Eviction::lru, 100));
  cache.insert(blocks({1}), 60, 0);
  EXPECT_FALSE(cache.insert(blocks({2}), 101, 1));
  EXPECT_EQ(cache.stats().too_large, 1);
  EXPECT_EQ(cache.entries(), 1);  // nothing was evicted for it
  EXPECT_EQ(cache.bytes(), 60);
}

TEST(CcvCache, VersionChangesWhenAnAnswerCould) {
  CcvCache cache(cache_config(Eviction::lru, 100));
  const int64_t v0 = cache.version();
  cache.find(*blocks({1}), 0);
  EXPECT_EQ(cache.version(), v0);  // a find changes nothing
  cache.insert(blocks({1}), 60, 0);
  const int64_t v1 = cache.version();
  EXPECT_NE(v1, v0);
  lookup(cache, *blocks({1}), 1);
  EXPECT_NE(cache.version(), v1);  // a hit changes recency
  const int64_t v2 = cache.version();
  cache.insert(blocks({2}), 60, 2);  // evicts
  EXPECT_NE(cache.version(), v2);
}

// The inverted index against a plain reference: an LRU list scanned in full for every lookup.
TEST(CcvCache, InvertedIndexAgreesWithABruteForceLru) {
  std::mt19937_64 rng(7);
  const int64_t budget = 5000;
  CcvCache cache(cache_config(Eviction::lru, budget, 0.6));
  struct Ref {
    std::shared_ptr<const ContextSignature> ctx;
    int64_t bytes;
  };
  std::list<Ref> lru;  // front = least recently used
  int64_t ref_bytes = 0, ref_hits = 0;
  for (int i = 0; i < 3000; ++i) {
    // Contexts share a popular prefix and draw the rest from a small pool, so matches happen.
    std::vector<uint64_t> ids = {0};
    const int n = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < n; ++k) ids.push_back(1 + rng() % 40);
    const auto ctx = blocks(ids);
    const CcvMatch m = lookup(cache, *ctx, i);
    double best = 0;
    auto best_it = lru.end();
    for (auto it = lru.begin(); it != lru.end(); ++it) {
      const double s = context_similarity(*ctx, *it->ctx);
      if (best_it == lru.end() || s >= best) best = s, best_it = it;  // ties: later = more recent
    }
    ASSERT_NEAR(m.similarity, best, 1e-12) << "lookup " << i;
    ASSERT_EQ(m.hit, best_it != lru.end() && best >= 0.6) << "lookup " << i;
    if (m.hit) {
      ++ref_hits;
      lru.splice(lru.end(), lru, best_it);
    } else {
      const int64_t bytes = 100 + static_cast<int64_t>(rng() % 900);
      cache.insert(ctx, bytes, i);
      while (ref_bytes + bytes > budget) {
        ref_bytes -= lru.front().bytes;
        lru.pop_front();
      }
      lru.push_back(Ref{ctx, bytes});
      ref_bytes += bytes;
    }
    ASSERT_EQ(cache.bytes(), ref_bytes) << "after lookup " << i;
    ASSERT_EQ(cache.entries(), static_cast<int64_t>(lru.size()));
  }
  EXPECT_EQ(cache.stats().hits, ref_hits);
  EXPECT_GT(ref_hits, 100);  // the workload exercised hits and evictions both
  EXPECT_GT(cache.stats().evictions, 100);
}
