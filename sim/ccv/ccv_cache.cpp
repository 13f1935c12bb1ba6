#include "sim/ccv/ccv_cache.h"

#include <algorithm>
#include <cmath>

#include <boost/intrusive/unordered_set.hpp>
#include <boost/multi_index/composite_key.hpp>
#include <boost/multi_index/hashed_index.hpp>
#include <boost/multi_index/member.hpp>
#include <boost/multi_index/ordered_index.hpp>
#include <boost/multi_index_container.hpp>

namespace kvscope {

namespace bmi = boost::multi_index;
namespace bi = boost::intrusive;

namespace {
// An entry's place in the eviction order: the smallest (major, minor) leaves first.
struct Ranked {
  uint32_t slot;
  int64_t major;
  int64_t minor;
  double inserted_ms;
  int64_t hits;
};
struct by_slot {};
struct by_rank {};

// One block of one cached context, linked into the inverted index.
struct Posting : bi::unordered_set_base_hook<bi::link_mode<bi::normal_link>> {
  uint64_t block = 0;
  uint32_t slot = 0;
};
struct BlockHash {
  // Mixes dense ids (Mooncake's) and arbitrary 64-bit hashes alike into the low bits, which
  // pick the bucket (a power of two).
  size_t operator()(uint64_t b) const {
    const uint64_t m = b * 0x9E3779B97F4A7C15ULL;
    return static_cast<size_t>(m ^ (m >> 29));
  }
  size_t operator()(const Posting& p) const { return (*this)(p.block); }
};
struct BlockEqual {
  bool operator()(const Posting& a, const Posting& b) const { return a.block == b.block; }
  bool operator()(uint64_t a, const Posting& b) const { return a == b.block; }
};
using PostingSet = bi::unordered_multiset<Posting, bi::hash<BlockHash>, bi::equal<BlockEqual>,
                                          bi::power_2_buckets<true>>;
}  // namespace

struct CcvCache::Postings {
  std::vector<PostingSet::bucket_type> buckets = std::vector<PostingSet::bucket_type>(1024);
  std::vector<std::vector<Posting>> by_slot;  // each entry's nodes; declared before `set`, which
                                              // must go first when the cache is destroyed
  PostingSet set{PostingSet::bucket_traits(buckets.data(), buckets.size())};

  void link(uint32_t slot, const std::vector<uint64_t>& blocks) {
    if (by_slot.size() <= slot) by_slot.resize(slot + 1);
    auto& nodes = by_slot[slot];
    nodes.resize(blocks.size());  // sized once: linked nodes must not move
    for (size_t i = 0; i < blocks.size(); ++i) {
      nodes[i].block = blocks[i];
      nodes[i].slot = slot;
      set.insert(nodes[i]);
    }
    // Keep chains short: double the buckets when there are twice as many nodes. They never
    // shrink, so their memory follows the most the cache has held, not the trace.
    if (set.size() > 2 * buckets.size()) {
      std::vector<PostingSet::bucket_type> bigger(buckets.size() * 2);
      set.rehash(PostingSet::bucket_traits(bigger.data(), bigger.size()));
      buckets.swap(bigger);
    }
  }
  void unlink(uint32_t slot) {
    auto& nodes = by_slot[slot];
    for (Posting& p : nodes) set.erase(set.iterator_to(p));
    std::vector<Posting>().swap(nodes);  // release the memory too (clear() would keep it)
  }
};

struct CcvCache::Index {
  using Container = bmi::multi_index_container<
      Ranked,
      bmi::indexed_by<
          bmi::hashed_unique<bmi::tag<by_slot>, bmi::member<Ranked, uint32_t, &Ranked::slot>>,
          bmi::ordered_unique<
              bmi::tag<by_rank>,
              bmi::composite_key<Ranked, bmi::member<Ranked, int64_t, &Ranked::major>,
                                 bmi::member<Ranked, int64_t, &Ranked::minor>>>>>;
  Container entries;
};

CcvCache::CcvCache(const CcvConfig& config)
    : config_(config),
      ttl_ms_(config.ttl_s * 1e3),
      index_(std::make_unique<Index>()),
      postings_(std::make_unique<Postings>()) {}

CcvCache::~CcvCache() = default;

int64_t CcvCache::entries() const { return static_cast<int64_t>(index_->entries.size()); }

void CcvCache::remove(uint32_t slot) {
  Slot& s = slots_[slot];
  if (s.ctx->dense()) {
    dense_slots_.erase(std::find(dense_slots_.begin(), dense_slots_.end(), slot));
  } else {
    postings_->unlink(slot);
  }
  bytes_ -= s.bytes;
  ++version_;
  s = Slot{};
  free_slots_.push_back(slot);
}

void CcvCache::evict_front() {
  auto& order = index_->entries.get<by_rank>();
  const uint32_t slot = order.begin()->slot;
  order.erase(order.begin());
  remove(slot);
}

void CcvCache::expire(double now_ms) {
  if (config_.eviction != Eviction::ttl) return;
  // Under TTL the rank is the insertion order, so expired entries are at the front.
  auto& order = index_->entries.get<by_rank>();
  while (!order.empty() && order.begin()->inserted_ms + ttl_ms_ <= now_ms) {
    evict_front();
    ++stats_.expirations;
  }
}

CcvMatch CcvCache::find(const ContextSignature& ctx, double now_ms) {
  expire(now_ms);
  CcvMatch best;
  auto consider = [&](uint32_t slot, double sim) {
    if (best.entry < 0 || sim > best.similarity ||
        (sim == best.similarity &&
         slots_[slot].last_use > slots_[static_cast<size_t>(best.entry)].last_use)) {
      best.entry = slot;
      best.similarity = sim;
    }
  };
  if (ctx.dense()) {
    for (uint32_t slot : dense_slots_) consider(slot, context_similarity(ctx, *slots_[slot].ctx));
  } else if (!ctx.blocks.empty()) {
    if (shared_.size() < slots_.size()) shared_.resize(slots_.size(), 0);
    for (uint64_t b : ctx.blocks) {
      auto [it, end] = postings_->set.equal_range(b, BlockHash(), BlockEqual());
      for (; it != end; ++it)
        if (shared_[it->slot]++ == 0) touched_.push_back(it->slot);
    }
    const double n = static_cast<double>(ctx.blocks.size());
    for (uint32_t slot : touched_) {
      const double m = static_cast<double>(slots_[slot].ctx->blocks.size());
      consider(slot, static_cast<double>(shared_[slot]) / std::sqrt(n * m));
      shared_[slot] = 0;
    }
    touched_.clear();
  }
  best.hit = best.entry >= 0 && best.similarity >= config_.threshold;
  return best;
}

void CcvCache::record_lookup(const CcvMatch& m) {
  ++stats_.lookups;
  if (!m.hit) return;
  ++stats_.hits;
  auto& by_id = index_->entries.get<by_slot>();
  const auto it = by_id.find(static_cast<uint32_t>(m.entry));
  if (it == by_id.end()) return;  // expired or evicted between find() and now
  const int64_t use = ++uses_;
  ++version_;
  slots_[it->slot].last_use = use;
  by_id.modify(it, [&](Ranked& r) {
    ++r.hits;
    if (config_.eviction == Eviction::lru) r.major = use;
    if (config_.eviction == Eviction::lfu) r.major = r.hits, r.minor = use;
  });
}

bool CcvCache::insert(std::shared_ptr<const ContextSignature> ctx, int64_t bytes, double now_ms) {
  expire(now_ms);
  if (bytes > config_.budget_bytes) {
    ++stats_.too_large;
    return false;
  }
  while (bytes_ + bytes > config_.budget_bytes) {
    evict_front();
    ++stats_.evictions;
  }
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  const int64_t use = ++uses_;
  if (ctx->dense()) {
    dense_slots_.push_back(slot);
  } else {
    postings_->link(slot, ctx->blocks);
  }
  slots_[slot] = Slot{std::move(ctx), bytes, use};
  bytes_ += bytes;
  ++version_;
  // LRU: last use; LFU: (hits, last use); TTL: insertion order (= expiry order, one TTL for all).
  const int64_t major = config_.eviction == Eviction::lfu ? 0 : use;
  const int64_t minor = config_.eviction == Eviction::lfu ? use : 0;
  index_->entries.insert(Ranked{slot, major, minor, now_ms, 0});
  ++stats_.insertions;
  return true;
}

}  // namespace kvscope
