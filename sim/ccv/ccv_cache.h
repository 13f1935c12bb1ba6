// The CCV cache of a replay: which contexts' compressed context vectors are held, under a byte
// budget, and which cached one a new context matches.
//
// As in the paper: a lookup compares the new context with the cached ones; at or above the
// threshold it is a hit and the cached CCV is reused; below it the request computes attention
// and the cache is updated with its CCV (insert(), once that CCV exists). Entries leave by the
// eviction policy when the budget is full:
//   lru  the least recently used (inserted or hit) first
//   lfu  the least often hit first, the least recently used among equals
//   ttl  entries expire ttl_s after insertion (hits do not extend them); under pressure the one
//        closest to expiry goes first
// The eviction order is a Boost.MultiIndex ordered index; the search is an inverted index from
// block hash to the entries holding it (a Boost.Intrusive hash multiset whose nodes live with
// their entry: nothing is allocated per block), so a lookup scores only entries sharing a
// block.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/methods.h"
#include "sim/ccv/context.h"

namespace kvscope {

struct CcvMatch {
  int64_t entry = -1;     // the best cached entry, -1 when nothing shares anything
  double similarity = 0;  // its cosine with the looked-up context
  bool hit = false;       // similarity >= threshold
};

struct CcvCacheStats {
  int64_t lookups = 0, hits = 0;
  int64_t insertions = 0, evictions = 0, expirations = 0;
  int64_t too_large = 0;  // CCVs bigger than the whole budget, never cached
};

class CcvCache {
 public:
  // budget_bytes, eviction, ttl_s and threshold of `config` apply.
  explicit CcvCache(const CcvConfig& config);
  ~CcvCache();
  CcvCache(const CcvCache&) = delete;
  CcvCache& operator=(const CcvCache&) = delete;

  // The best match for `ctx` at time now_ms (entries expired by then are dropped first).
  // Ties go to the most recently used entry. Counts nothing: see record_lookup(). The match
  // stays valid while version() is unchanged.
  CcvMatch find(const ContextSignature& ctx, double now_ms);

  // Drops the entries expired by now_ms (TTL). find() and insert() do it themselves.
  void expire(double now_ms);

  // Changes whenever an entry comes, goes or is used, i.e. whenever find() could answer
  // differently for the same context: a caller may keep a match until it does.
  int64_t version() const { return version_; }

  // Counts a lookup that find() answered; a hit marks its entry used (recency, frequency).
  void record_lookup(const CcvMatch& m);

  // Caches the CCV of `ctx` (bytes long), evicting until it fits; false if it exceeds the budget.
  bool insert(std::shared_ptr<const ContextSignature> ctx, int64_t bytes, double now_ms);

  int64_t bytes() const { return bytes_; }
  int64_t entries() const;
  const CcvCacheStats& stats() const { return stats_; }
  double hit_rate() const {
    return stats_.lookups ? static_cast<double>(stats_.hits) / static_cast<double>(stats_.lookups)
                          : 0.0;
  }

 private:
  struct Index;     // the Boost.MultiIndex container: eviction order
  struct Postings;  // the Boost.Intrusive inverted index: block hash -> entries
  struct Slot {
    std::shared_ptr<const ContextSignature> ctx;
    int64_t bytes = 0;
    int64_t last_use = 0;  // use counter value at the last insert or hit
  };

  void evict_front();
  void remove(uint32_t slot);

  CcvConfig config_;
  double ttl_ms_;
  std::unique_ptr<Index> index_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  std::unique_ptr<Postings> postings_;
  std::vector<uint32_t> dense_slots_;  // entries with context vectors
  std::vector<uint32_t> shared_;       // per slot: blocks shared with the context being looked up
  std::vector<uint32_t> touched_;      // slots with shared_ != 0
  int64_t bytes_ = 0;
  int64_t uses_ = 0;  // a logical clock of inserts and hits
  int64_t version_ = 0;
  CcvCacheStats stats_;
};

}  // namespace kvscope
