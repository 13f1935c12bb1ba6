#include "sim/engine/scheduler.h"

#include <algorithm>

namespace kvscope {

void Scheduler::preempt_newest(Replica& replica, SchedulerEvents& events) const {
  const uint32_t slot = replica.running.back();
  replica.running.pop_back();
  Request& r = replica.at(slot);
  replica.pool.release(r.alloc_bytes);
  r.alloc_tokens = 0;
  r.alloc_bytes = 0;
  r.growth_until = 0;
  r.prefilled = 0;
  r.prefill_target = r.input_tokens + r.generated;  // recompute the prompt and what it generated
  ++r.preemptions;
  replica.waiting.push_front(slot);
  events.on_preempt(r);
}

void Scheduler::schedule(Replica& replica, double now_ms, Batch& batch,
                         SchedulerEvents& events) const {
  batch.clear();
  int64_t budget = config_.token_budget;
  KvPool& pool = replica.pool;

  // 1. Decodes, oldest first; memory for the newest goes first when short.
  for (size_t i = 0; i < replica.running.size() && budget > 0; ++i) {
    const uint32_t slot = replica.running[i];
    Request& r = replica.at(slot);
    if (r.in_prefill()) continue;
    if (r.alloc_tokens >= r.growth_until) {
      const KvPool::Growth g = pool.growth(r.alloc_tokens, r.ccv_hit);
      r.growth_bytes = g.delta;
      r.growth_until = g.until;
    }
    const int64_t growth = r.growth_bytes;
    bool preempted_self = false;
    while (!pool.fits(growth)) {
      preempted_self = replica.running.back() == slot;
      preempt_newest(replica, events);
      if (preempted_self) break;
    }
    if (preempted_self) break;  // it was the newest: nothing after it is running any more
    pool.allocate(growth);
    ++r.alloc_tokens;
    r.alloc_bytes += growth;
    batch.items.emplace_back(slot, 1, r.alloc_tokens, false);
    ++batch.decode_tokens;
    --budget;
  }

  // 2. The next chunk of prompts already admitted.
  for (uint32_t slot : replica.running) {
    if (budget == 0) break;
    Request& r = replica.at(slot);
    if (!r.in_prefill()) continue;
    const int64_t chunk = std::min(r.prefill_target - r.prefilled, budget);
    batch.items.emplace_back(slot, chunk, r.prefilled + chunk, true);
    batch.prefill_tokens += chunk;
    budget -= chunk;
  }

  // 3. Admissions, in arrival order.
  while (!replica.waiting.empty() &&
         static_cast<int64_t>(replica.running.size()) < config_.max_batch) {
    const uint32_t slot = replica.waiting.front();
    Request& r = replica.at(slot);
    const int64_t target = r.prefill_target;
    int64_t chunk = target;
    if (config_.chunked_prefill) {
      if (budget == 0) break;
      chunk = std::min(target, budget);
    } else if (target > budget && batch.prefill_tokens > 0) {
      break;
    }
    CcvMatch match;
    bool hit = r.ccv_hit;
    if (replica.ccv != nullptr && !r.looked_up) {
      replica.ccv->expire(now_ms);
      if (r.match_version != replica.ccv->version()) {
        r.match = replica.ccv->find(*r.ctx, now_ms);
        r.match_version = replica.ccv->version();
      }
      match = r.match;
      hit = match.hit;
    }
    const int64_t longest = r.input_tokens + std::max<int64_t>(r.output_tokens - 1, 0);
    if (pool.bytes_for(longest, hit) > pool.capacity()) {
      replica.waiting.pop_front();
      events.on_reject(r);
      continue;
    }
    const int64_t reserve = pool.bytes_for(target, hit);
    if (!pool.fits(reserve)) break;
    if (replica.ccv != nullptr && !r.looked_up) {
      replica.ccv->record_lookup(match);
      r.looked_up = true;
      r.ccv_hit = match.hit;
      r.similarity = match.similarity;
      events.on_lookup(r, now_ms);
    }
    replica.waiting.pop_front();
    replica.running.push_back(slot);
    pool.allocate(reserve);
    r.alloc_tokens = target;
    r.alloc_bytes = reserve;
    r.growth_until = 0;
    batch.items.emplace_back(slot, chunk, chunk, true);
    batch.prefill_tokens += chunk;
    budget -= std::min(chunk, budget);
  }
}

}  // namespace kvscope
