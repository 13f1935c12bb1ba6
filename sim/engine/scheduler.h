// Continuous batching, first come first served (vLLM's default policy), one step at a time:
//   1. every running sequence past its prompt decodes one token; when its KV does not fit, the
//      most recently admitted running sequence is preempted (recomputed later), possibly itself;
//   2. running sequences still in their prompt get the next chunk of it (chunked prefill);
//   3. waiting requests are admitted in arrival order while a sequence slot, step tokens and KV
//      for their whole prompt are free (the prompt's KV is reserved at admission, so prefill
//      chunks never run out of memory); the first that does not fit stops admission, so a
//      large request is not starved by smaller ones behind it.
// Without chunked prefill a prompt runs whole in one step; one longer than the token budget
// runs alone as the step's only prefill (it could never run otherwise).
// CCV methods look a request up in the CCV cache when it is first admitted; a hit reserves KV
// for the first L_eff layers only. A request whose KV at its longest could not fit an empty
// pool is rejected rather than left to wait forever.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "sim/ccv/ccv_cache.h"
#include "sim/engine/kv_pool.h"
#include "sim/engine/request.h"
#include "sim/replay/replay.h"

namespace kvscope {

// The state a replica's scheduler and its event loop share.
struct Replica {
  std::vector<Request> slots;  // requests held, by slot
  std::vector<uint32_t> free_slots;
  std::deque<uint32_t> waiting;   // arrival order; preempted requests return to the front
  std::vector<uint32_t> running;  // admission order
  KvPool pool;
  CcvCache* ccv = nullptr;  // CCV methods only

  Request& at(uint32_t slot) { return slots[slot]; }
  bool has_work() const { return !waiting.empty() || !running.empty(); }
};

// What the scheduler reports as it decides.
class SchedulerEvents {
 public:
  virtual ~SchedulerEvents() = default;
  virtual void on_preempt(Request& r) = 0;
  virtual void on_reject(
      Request& r) = 0;  // the request is out of the queue; its slot is freed after
  virtual void on_lookup(Request& r, double now_ms) = 0;
};

class Scheduler {
 public:
  explicit Scheduler(const SchedulerConfig& config) : config_(config) {}

  // Fills `batch` with the step starting at now_ms; allocates the KV it needs.
  void schedule(Replica& replica, double now_ms, Batch& batch, SchedulerEvents& events) const;

 private:
  void preempt_newest(Replica& replica, SchedulerEvents& events) const;
  SchedulerConfig config_;
};

}  // namespace kvscope
