#include "sim/engine/engine.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "model/error.h"

namespace kvscope {

int64_t resident_weight_bytes(const ReplayConfig& config, Method method) {
  int64_t w = model_weight_bytes(config.model);
  if (uses_ccv(method)) w += ccv_layer_weight_bytes(config.model, config.method_config.ccv);
  return w;
}

void add_to_step_shape(StepShape& shape, const ObservedStep::Item& item, bool decode_per_sequence,
                       bool lm_head) {
  const int hit = item.ccv_hit ? 1 : 0;
  if (item.prefill) {
    shape.chunks.push_back({item.q_tokens, item.kv_len, item.ccv_hit, item.cache_tokens});
  } else {
    ++shape.decode_seqs[hit];
    shape.decode_kv_sum[hit] += item.kv_len;
    if (decode_per_sequence) shape.decode_kv[hit].push_back(item.kv_len);
  }
  if (lm_head && item.emits) ++shape.emitting;
}

StepShape step_shape(const ObservedStep& step, bool decode_per_sequence, bool lm_head) {
  StepShape shape;
  for (const auto& item : step.items) add_to_step_shape(shape, item, decode_per_sequence, lm_head);
  return shape;
}

int64_t kv_capacity_bytes(const ReplayConfig& config, Method method) {
  int64_t left = config.gpu_memory_bytes - resident_weight_bytes(config, method);
  if (uses_ccv(method)) left -= config.method_config.ccv.budget_bytes;
  if (left <= 0)
    throw InputError(
        "replay config", "--gpu-mem",
        "no memory left for the KV cache of " + std::string(method_name(method)) + ": " +
            std::to_string(config.gpu_memory_bytes) + " bytes of GPU memory, " +
            std::to_string(resident_weight_bytes(config, method)) + " of weights" +
            (uses_ccv(method) ? ", " + std::to_string(config.method_config.ccv.budget_bytes) +
                                    " of CCV cache budget"
                              : std::string()));
  return left;
}

MethodReplay::MethodReplay(Method method, const ReplayConfig& config, const OpCostModel& costs)
    : method_(method),
      config_(config),
      ccv_(uses_ccv(method) ? std::make_unique<CcvCache>(config.method_config.ccv) : nullptr),
      replica_{
          {},
          {},
          {},
          {},
          KvPool(config.model, method, config.method_config, kv_capacity_bytes(config, method)),
          ccv_.get()},
      scheduler_(config.scheduler),
      pricer_(costs, config.model, method, config.method_config,
              config.scheduler.token_budget + config.scheduler.max_batch,
              config.decode_attention_per_sequence),
      metrics_(method, config),
      weight_bytes_(resident_weight_bytes(config, method)) {}

MethodReplay::~MethodReplay() = default;

void MethodReplay::arrive(const TraceRecord& rec, int64_t id, double arrival_ms,
                          std::shared_ptr<const ContextSignature> ctx) {
  if (!replica_.has_work()) now_ms_ = std::max(now_ms_, arrival_ms);
  uint32_t slot;
  if (!replica_.free_slots.empty()) {
    slot = replica_.free_slots.back();
    replica_.free_slots.pop_back();
  } else {
    slot = static_cast<uint32_t>(replica_.slots.size());
    replica_.slots.emplace_back();
  }
  Request& r = replica_.at(slot);
  r = Request{};
  r.id = id;
  r.line = rec.line;
  r.arrival_ms = arrival_ms;
  r.input_tokens = rec.input_tokens;
  r.output_tokens = rec.output_tokens;
  r.prefill_target = rec.input_tokens;
  if (ccv_) r.ctx = std::move(ctx);
  if (config_.keep_requests) r.session = rec.session;
  replica_.waiting.push_back(slot);
}

bool MethodReplay::run_until(double t_ms, const std::atomic<bool>* cancel) {
  int64_t n = 0;
  while (replica_.has_work() && now_ms_ < t_ms) {
    step();
    if ((++n & 4095) == 0 && cancel != nullptr && cancel->load(std::memory_order_relaxed))
      return false;
  }
  return true;
}

RequestRecord MethodReplay::record_of(const Request& r) const {
  RequestRecord rec;
  rec.id = r.id;
  rec.trace_line = r.line;
  rec.arrival_ms = r.arrival_ms;
  rec.input_tokens = r.input_tokens;
  rec.output_tokens = r.output_tokens;
  rec.preemptions = r.preemptions;
  rec.ccv_hit = r.ccv_hit;
  rec.similarity = r.similarity;
  rec.session = r.session;
  return rec;
}

void MethodReplay::on_preempt(Request&) { metrics_.preempted(); }

void MethodReplay::on_reject(Request& r) {
  RequestRecord rec = record_of(r);
  rec.rejected = true;
  metrics_.rejected(rec);
  rejected_.push_back(static_cast<uint32_t>(&r - replica_.slots.data()));
}

void MethodReplay::on_lookup(Request& r, double now_ms) { metrics_.lookup(now_ms, r.ccv_hit); }

void MethodReplay::emit_token(Request& r, double end_ms, int64_t& steady, double start_ms) {
  ++r.generated;
  if (r.first_token_ms < 0) {
    r.first_token_ms = end_ms;
  } else if (r.last_token_ms == start_ms) {
    ++steady;  // its previous token ended the previous step: the gap is this step's length
  } else {
    metrics_.token_gaps(end_ms - r.last_token_ms, 1);
  }
  r.last_token_ms = end_ms;
}

void MethodReplay::complete_prefill(Request& r, double end_ms) {
  // A miss computed the full context; its CCV now exists and updates the cache.
  if (ccv_ && !r.ccv_hit && !r.ccv_inserted && !r.ctx->empty()) {
    ccv_->insert(r.ctx, ccv_entry_bytes(config_.model, config_.method_config.ccv, r.input_tokens),
                 end_ms);
    r.ccv_inserted = true;
  }
  if (r.first_token_ms < 0 && r.output_tokens == 0) r.first_token_ms = end_ms;
}

void MethodReplay::retire(uint32_t slot, double finish_ms) {
  Request& r = replica_.at(slot);
  replica_.pool.release(r.alloc_bytes);
  RequestRecord rec = record_of(r);
  rec.first_token_ms = r.first_token_ms;
  rec.finish_ms = finish_ms;
  metrics_.finished(rec);
  r.ctx.reset();
  r.session.clear();
  replica_.free_slots.push_back(slot);
}

void MethodReplay::step() {
  const double start = now_ms_;
  const int64_t waiting = static_cast<int64_t>(replica_.waiting.size());
  scheduler_.schedule(replica_, start, batch_, *this);
  for (uint32_t slot : rejected_) {
    replica_.at(slot).ctx.reset();
    replica_.free_slots.push_back(slot);
  }
  rejected_.clear();
  if (batch_.items.empty()) {
    // Only rejections were possible (the queue held nothing that could ever run).
    if (replica_.has_work()) throw std::logic_error("replay: the scheduler formed an empty step");
    return;
  }
  const int64_t ccv_at_start = ccv_ ? ccv_->bytes() : 0;
  const int64_t kv_in_step = replica_.pool.used();

  shape_.clear();
  for (const BatchItem& it : batch_.items)
    add_to_step_shape(shape_, item_of(replica_.at(it.slot), it),
                      config_.decode_attention_per_sequence, config_.price_lm_head);
  const StepPrice price = pricer_.price(shape_);
  const double end = start + price.full_ms;
  if (config_.on_step) observe(start, kv_in_step, price);

  int64_t steady = 0, done = 0;
  for (const BatchItem& it : batch_.items) {
    Request& r = replica_.at(it.slot);
    if (it.prefill) {
      r.prefilled += it.q_tokens;
      metrics_.prefill_done(it.q_tokens);
      if (r.in_prefill()) continue;
      complete_prefill(r, end);
      if (r.generated < r.output_tokens) emit_token(r, end, steady, start);
    } else {
      emit_token(r, end, steady, start);
    }
    if (r.generated >= r.output_tokens) {
      retire(it.slot, end);
      r.prefill_target = -1;  // marks it for removal from `running` below
      ++done;
    }
  }
  metrics_.token_gaps(price.full_ms, static_cast<double>(steady));
  if (done > 0) {
    auto& run = replica_.running;
    run.erase(std::remove_if(run.begin(), run.end(),
                             [&](uint32_t s) { return replica_.at(s).prefill_target < 0; }),
              run.end());
  }

  StepRecord s;
  s.start_ms = start;
  s.paper_ms = price.paper_ms;
  s.full_ms = price.full_ms;
  s.batch = static_cast<int64_t>(batch_.items.size());
  s.prefill_tokens = batch_.prefill_tokens;
  s.decode_tokens = batch_.decode_tokens;
  s.kv_bytes = replica_.pool.used();
  s.ccv_cache_bytes = ccv_ ? ccv_->bytes() : 0;
  s.hit_rate = ccv_ ? ccv_->hit_rate() : 0.0;
  s.attention_ms = price.attention_ms;
  s.dense_ms = price.dense_ms;
  s.ccv_ms = price.ccv_ms;
  s.other_ms = price.other_ms;
  s.kv_in_step_bytes = kv_in_step;
  s.waiting = waiting;
  metrics_.step(s, ccv_at_start);
  now_ms_ = end;
  ++steps_seen_;
}

bool MethodReplay::emits(const Request& r, const BatchItem& it) {
  if (!it.prefill) return true;
  return r.prefilled + it.q_tokens >= r.prefill_target && r.generated < r.output_tokens;
}

ObservedStep::Item MethodReplay::item_of(const Request& r, const BatchItem& it) {
  return ObservedStep::Item{r.id,       it.q_tokens, it.kv_len,   r.alloc_tokens,
                            it.prefill, r.ccv_hit,   emits(r, it)};
}

void MethodReplay::observe(double start_ms, int64_t kv_in_step, const StepPrice& price) {
  ObservedStep& o = observed_;
  o.method = method_;
  o.index = steps_seen_;
  o.start_ms = start_ms;
  o.items.clear();
  for (const BatchItem& it : batch_.items) o.items.push_back(item_of(replica_.at(it.slot), it));
  o.held.clear();
  for (uint32_t slot : replica_.running) {
    const Request& r = replica_.at(slot);
    o.held.push_back(ObservedStep::Held{r.id, r.alloc_tokens, r.alloc_bytes, r.ccv_hit});
  }
  o.kv_in_step_bytes = kv_in_step;
  o.paper_ms = price.paper_ms;
  o.full_ms = price.full_ms;
  o.attention_ms = price.attention_ms;
  o.dense_ms = price.dense_ms;
  o.ccv_ms = price.ccv_ms;
  o.other_ms = price.other_ms;
  config_.on_step(o);
}

MethodResult MethodReplay::finish() {
  return metrics_.take(replica_.pool.capacity(), weight_bytes_, ccv_ ? &ccv_->stats() : nullptr);
}

}  // namespace kvscope
