#include "sim/replay/replay.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>

#include "model/error.h"
#include "sim/engine/engine.h"

namespace kvscope {

namespace {

void validate(const ReplayConfig& c) {
  const std::string src = "replay config";
  if (c.methods.empty()) throw InputError(src, "--method", "no method to replay");
  for (size_t i = 0; i < c.methods.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (c.methods[i] == c.methods[j])
        throw InputError(src, "--method",
                         std::string(method_name(c.methods[i])) + " is listed twice");
  if (c.scheduler.max_batch < 1) throw InputError(src, "--max-batch", "must be at least 1");
  if (c.scheduler.token_budget < 1) throw InputError(src, "--token-budget", "must be at least 1");
  if (c.scheduler.token_budget > (int64_t{1} << 24))
    throw InputError(src, "--token-budget", "more than 16M tokens per step is not a GPU step");
  if (c.scheduler.max_batch > (int64_t{1} << 20))
    throw InputError(src, "--max-batch", "more than 1M sequences per step is not a GPU step");
  if (!(c.rate_scale > 0) || !std::isfinite(c.rate_scale))
    throw InputError(src, "--rate-scale", "must be a positive number");
  if (!(c.length_scale > 0) || !std::isfinite(c.length_scale))
    throw InputError(src, "--length-scale", "must be a positive number");
  if (!(c.hit_window_s > 0) || !std::isfinite(c.hit_window_s))
    throw InputError(src, "hit_window_s", "must be a positive number of seconds");
  if (c.model.layers <= 0) throw InputError(src, "--model", "no model shape given");
  // Only the configuration of a method that runs must make sense.
  bool ccv = false;
  for (Method m : c.methods) {
    make_kv_format(m, c.model, c.method_config);  // validates the format's parameters
    ccv = ccv || uses_ccv(m);
  }
  if (ccv) c.method_config.ccv.validate(c.model);
}

}  // namespace

void scale_lengths(TraceRecord& rec, double scale) {
  auto scaled = [&](int64_t n) {
    if (n == 0) return n;
    return std::max<int64_t>(1, static_cast<int64_t>(std::llround(static_cast<double>(n) * scale)));
  };
  rec.input_tokens = scaled(rec.input_tokens);
  rec.output_tokens = scaled(rec.output_tokens);
}

ReplayResult run_replay(const std::string& trace_path, const ReplayConfig& config,
                        const OpCostModel& costs, const ProgressFn& progress,
                        const std::atomic<bool>* cancel) {
  validate(config);
  std::vector<std::unique_ptr<MethodReplay>> replays;
  bool any_ccv = false;
  for (Method m : config.methods) {
    replays.push_back(std::make_unique<MethodReplay>(m, config, costs));
    any_ccv = any_ccv || uses_ccv(m);
  }

  const auto reader = open_trace(trace_path, config.format, config.bad_records);
  std::error_code ec;
  const auto file_bytes = static_cast<double>(std::filesystem::file_size(trace_path, ec));
  ReplayResult result;
  result.trace.path = trace_path;
  result.trace.format = std::string(trace_format_name(reader->format()));

  TraceRecord rec;
  double first_ts = 0, last_ts = 0;
  int64_t id = 0;
  auto cancelled = [&] { return cancel != nullptr && cancel->load(std::memory_order_relaxed); };
  while ((config.max_requests < 0 || id < config.max_requests) && reader->next(rec)) {
    if (config.length_scale != 1.0) scale_lengths(rec, config.length_scale);
    if (id == 0) first_ts = rec.timestamp_ms;
    last_ts = rec.timestamp_ms;
    const double arrival = (rec.timestamp_ms - first_ts) / config.rate_scale;
    std::shared_ptr<const ContextSignature> ctx;
    if (any_ccv) ctx = std::make_shared<const ContextSignature>(context_signature(rec));
    for (auto& r : replays) {
      if (!r->run_until(arrival, cancel)) break;
      r->arrive(rec, id, arrival, ctx);
    }
    ++id;
    result.trace.input_tokens += rec.input_tokens;
    result.trace.output_tokens += rec.output_tokens;
    if ((id & 1023) == 0) {
      if (cancelled()) break;
      if (progress && file_bytes > 0)
        progress(0.95 * static_cast<double>(reader->bytes_read()) / file_bytes,
                 "replayed " + std::to_string(id) + " requests");
    }
  }
  result.trace.requests = id;
  result.trace.skipped_records = reader->skipped();
  result.trace.duration_s = (last_ts - first_ts) / 1e3;

  for (size_t i = 0; i < replays.size() && !cancelled(); ++i) {
    if (progress)
      progress(0.95 + 0.05 * static_cast<double>(i) / static_cast<double>(replays.size()),
               "draining " + std::string(method_name(replays[i]->method())));
    replays[i]->run_until(std::numeric_limits<double>::infinity(), cancel);
  }
  result.cancelled = cancelled();

  for (auto& r : replays) result.methods.push_back(r->finish());
  const MethodSummary* base = nullptr;
  for (const auto& m : result.methods)
    if (m.summary.method == Method::baseline) base = &m.summary;
  if (base != nullptr) {
    for (auto& m : result.methods) {
      m.summary.has_baseline = true;
      m.summary.time_saved_vs_baseline_ms = base->busy_full_ms - m.summary.busy_full_ms;
      m.summary.time_saved_vs_baseline_paper_ms = base->busy_paper_ms - m.summary.busy_paper_ms;
    }
  }
  if (progress) progress(1.0, "done");
  return result;
}

}  // namespace kvscope
