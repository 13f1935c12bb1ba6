// The KV pool of one replica: GPU memory left for KV caches after the weights (and, for the CCV
// methods, the CCV layer and the CCV cache budget). Every byte count comes from model/memory.h.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/kv_format.h"
#include "model/memory.h"

namespace kvscope {

class KvPool {
 public:
  KvPool(const ModelShape& shape, Method method, const MethodConfig& config,
         int64_t capacity_bytes);

  // KV bytes of one sequence holding `tokens` tokens: sequence_kv_bytes().
  int64_t bytes_for(int64_t tokens, bool ccv_hit) const;

  // What one more token costs: bytes_for(u + 1) - bytes_for(u) == delta for every u in
  // [tokens, until). A decoding sequence asks once per run instead of once per token.
  struct Growth {
    int64_t delta = 0;
    int64_t until = 0;
  };
  Growth growth(int64_t tokens, bool ccv_hit) const;

  int64_t capacity() const { return capacity_; }
  int64_t used() const { return used_; }
  bool fits(int64_t bytes) const { return used_ + bytes <= capacity_; }
  void allocate(int64_t bytes) { used_ += bytes; }
  void release(int64_t bytes) { used_ -= bytes; }

 private:
  // sequence_kv_bytes over [0, frontier], evaluated at every length once and stored as runs of
  // equal per-token increments (a handful for the layouts of model/memory.h). Nothing about the
  // formula is assumed: a run is only as long as the evaluated increments stay equal.
  struct Run {
    int64_t start = 0;           // tokens
    int64_t bytes_at_start = 0;  // bytes_for(start)
    int64_t delta = 0;           // bytes_for(u + 1) - bytes_for(u) for u in [start, next start)
  };
  struct Table {
    std::vector<Run> runs;
    int64_t frontier = -1;  // bytes_for is known up to this length
    int64_t frontier_bytes = 0;
  };
  void extend(Table& t, bool ccv_hit, int64_t to) const;
  const Run& run_at(const Table& t, int64_t tokens) const;  // the run holding `tokens`
  int64_t direct(int64_t tokens, bool ccv_hit) const;

  std::unique_ptr<KvFormat> format_;
  int64_t layers_[2];  // layers holding KV, [ccv_hit]
  int64_t capacity_;
  int64_t used_ = 0;
  mutable Table tables_[2];  // [ccv_hit]
};

}  // namespace kvscope
