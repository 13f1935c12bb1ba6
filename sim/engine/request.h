// A request while a replay holds it (waiting or running), and the batch one step runs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim/ccv/ccv_cache.h"
#include "sim/ccv/context.h"

namespace kvscope {

struct Request {
  // Progress; every step reads these, so they come first (one cache line). After any
  // completed prefill the cache holds input + generated - 1 tokens (the newest token is fed by
  // the next decode step); a preempted request is recomputed: its cache is dropped and
  // input + generated tokens are prefilled again.
  int64_t prefill_target = 0;  // tokens this (re)prefill must process
  int64_t prefilled = 0;       // of them, done
  int64_t generated = 0;       // output tokens produced
  int64_t output_tokens = 0;
  int64_t alloc_tokens = 0;  // tokens whose KV the pool holds for it
  int64_t alloc_bytes = 0;   // = KvPool::bytes_for(alloc_tokens, ccv_hit)
  int64_t growth_bytes = 0;  // the next token's KV, while alloc_tokens < growth_until
  int64_t growth_until = 0;  // (KvPool::growth); 0 to ask the pool again
  double last_token_ms = 0;
  bool ccv_hit = false;
  bool looked_up = false;  // the CCV lookup happens once, at the first admission
  bool ccv_inserted = false;

  double first_token_ms = -1;
  int64_t input_tokens = 0;
  int64_t preemptions = 0;
  int64_t id = 0;    // 0-based index in the trace
  int64_t line = 0;  // line in the trace file
  double arrival_ms = 0;
  double similarity = 0;
  // The last CCV cache answer for it while it waits at the head of the queue, and the cache
  // version it holds for: asked again only once the cache has changed.
  CcvMatch match;
  int64_t match_version = -1;
  std::shared_ptr<const ContextSignature> ctx;  // CCV methods only
  std::string session;

  bool in_prefill() const { return prefilled < prefill_target; }
};

// One sequence's part in a step.
struct BatchItem {
  BatchItem(uint32_t s, int64_t q, int64_t kv, bool p)  // for emplace_back under clang 14
      : slot(s), q_tokens(q), kv_len(kv), prefill(p) {}
  uint32_t slot = 0;     // the request
  int64_t q_tokens = 0;  // new tokens this step: a prefill chunk, or 1 for a decode
  int64_t kv_len = 0;    // keys attended to, the new tokens included
  bool prefill = false;
};

struct Batch {
  std::vector<BatchItem> items;
  int64_t prefill_tokens = 0, decode_tokens = 0;
  void clear() { items.clear(), prefill_tokens = decode_tokens = 0; }
};

}  // namespace kvscope
