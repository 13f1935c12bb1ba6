#include "sim/plan/plan.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "model/error.h"
#include "model/kv_format.h"

namespace kvscope {

// ---- Memory ---------------------------------------------------------------------------------

GpuBudget gpu_budget(const ModelShape& s, Method method, const MethodConfig& cfg,
                     int64_t gpu_memory_bytes) {
  GpuBudget b;
  b.gpu_memory_bytes = gpu_memory_bytes;
  b.weight_bytes = model_weight_bytes(s);
  if (uses_ccv(method)) {
    b.ccv_layer_bytes = ccv_layer_weight_bytes(s, cfg.ccv);
    b.ccv_cache_bytes = cfg.ccv.budget_bytes;
  }
  b.kv_capacity_bytes = gpu_memory_bytes - b.weight_bytes - b.ccv_layer_bytes - b.ccv_cache_bytes;
  return b;
}

namespace {

// Sequences longer than this are not searched: a context of 2^40 tokens is no answer a plan
// needs, and it keeps every byte count below 2^63 for any shape kvscope reads.
constexpr int64_t kMaxContextTokens = int64_t{1} << 40;

// The largest n in [0, kMaxContextTokens] with fits(n), for a monotone fits with fits(0);
// -1 when even kMaxContextTokens fits (memory sets no limit).
int64_t largest_fitting(const std::function<bool(int64_t)>& fits) {
  if (fits(kMaxContextTokens)) return -1;
  int64_t lo = 0, hi = kMaxContextTokens;  // fits(lo), !fits(hi)
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace

MemoryFit fit_memory(const ModelShape& s, Method method, const MethodConfig& cfg,
                     int64_t gpu_memory_bytes, const std::vector<int64_t>& contexts_tokens,
                     double p) {
  MemoryFit fit;
  fit.budget = gpu_budget(s, method, cfg, gpu_memory_bytes);
  fit.p = p;
  const int64_t cap = std::max<int64_t>(0, fit.budget.kv_capacity_bytes);
  for (int64_t n : contexts_tokens) {
    BatchFit b;
    b.context_tokens = n;
    b.sequence_bytes_miss = sequence_kv_bytes(s, method, cfg, n, false);
    b.sequence_bytes_hit = sequence_kv_bytes(s, method, cfg, n, true);
    b.max_batch_miss = b.sequence_bytes_miss > 0 ? cap / b.sequence_bytes_miss : 0;
    b.max_batch_hit = b.sequence_bytes_hit > 0 ? cap / b.sequence_bytes_hit : 0;
    const double expected = expected_sequence_kv_bytes(s, method, cfg, n, p);
    b.max_batch_at_p =
        expected > 0 ? static_cast<int64_t>(std::floor(static_cast<double>(cap) / expected)) : 0;
    fit.batches.push_back(b);
  }
  fit.max_context_miss = largest_fitting(
      [&](int64_t n) { return sequence_kv_bytes(s, method, cfg, n, false) <= cap; });
  if (uses_ccv(method)) {
    fit.max_context_hit = largest_fitting([&](int64_t n) {
      return sequence_kv_bytes(s, method, cfg, n, true) <= cap &&
             ccv_entry_bytes(s, cfg.ccv, n) <= cfg.ccv.budget_bytes;
    });
  } else {
    fit.max_context_hit = fit.max_context_miss;
  }
  return fit;
}

// ---- Rate search ----------------------------------------------------------------------------

std::string_view percentile_name(SloPercentile p) {
  switch (p) {
    case SloPercentile::p50:
      return "p50";
    case SloPercentile::p90:
      return "p90";
    case SloPercentile::p99:
      return "p99";
  }
  return "?";
}

std::optional<SloPercentile> parse_percentile(std::string_view s) {
  if (!s.empty() && (s.front() == 'p' || s.front() == 'P')) s.remove_prefix(1);
  if (s == "50") return SloPercentile::p50;
  if (s == "90") return SloPercentile::p90;
  if (s == "99") return SloPercentile::p99;
  return std::nullopt;
}

double at_percentile(const Percentiles& v, SloPercentile p) {
  switch (p) {
    case SloPercentile::p50:
      return v.p50;
    case SloPercentile::p90:
      return v.p90;
    case SloPercentile::p99:
      return v.p99;
  }
  return v.p90;
}

int64_t gpus_needed(double target_per_s, double per_gpu_per_s) {
  if (!(per_gpu_per_s > 0)) return -1;
  // A hair of slack so that e.g. 10 / (10/3) is 3 GPUs, not 4, despite rounding.
  return static_cast<int64_t>(std::ceil(target_per_s / per_gpu_per_s * (1 - 1e-12)));
}

RateSearch search_max_rate(const std::string& trace_path, const ReplayConfig& base, Method method,
                           const MethodConfig& cfg, const Slo& slo, const RateSearchLimits& limits,
                           const OpCostModel& costs, const ReplayFn& replay,
                           const std::atomic<bool>* cancel,
                           const std::function<void()>& on_replay) {
  RateSearch out;
  out.method = method;
  out.config = cfg;
  ReplayConfig rc = base;
  rc.methods = {method};
  rc.method_config = cfg;
  rc.keep_steps = false;  // the search needs summaries only
  rc.keep_requests = false;

  auto run = [&](double scale) -> const RatePoint& {
    if (cancel && cancel->load()) throw Cancelled();
    rc.rate_scale = scale;
    const ReplayResult r = replay(trace_path, rc, costs, {}, cancel);
    if (r.cancelled) throw Cancelled();
    if (r.methods.size() != 1 || r.methods[0].summary.method != method)
      throw std::logic_error("replay returned results for other methods than asked");
    if (out.points.empty()) {
      // The trace's own rate, from the replay at scale 1 (always the first).
      out.trace = r.trace;
      if (!(r.trace.duration_s > 0) || r.trace.requests < 2)
        throw InputError(trace_path, "timestamp",
                         "the replayed requests span no time, so they define no request rate; "
                         "replay more of the trace (--requests)");
      out.base_rate_per_s = static_cast<double>(r.trace.requests) / r.trace.duration_s;
    }
    RatePoint p;
    p.rate_scale = scale;
    p.offered_rate_per_s = scale * out.base_rate_per_s;
    p.summary = r.methods[0].summary;
    p.ttft_ms = at_percentile(p.summary.ttft_ms, slo.percentile);
    p.tbt_ms = at_percentile(p.summary.tbt_ms, slo.percentile);
    p.meets_slo = p.ttft_ms <= slo.ttft_ms && p.tbt_ms <= slo.tbt_ms;
    out.points.push_back(p);
    if (on_replay) on_replay();
    return out.points.back();
  };

  // Bracket: lo met the SLO, hi did not (0 = not found yet); grow or shrink by 2 from scale 1.
  double lo = 0, hi = 0;
  if (run(1.0).meets_slo) {
    lo = 1.0;
    for (double s = 2.0; s <= limits.max_scale; s *= 2) {
      if (!run(s).meets_slo) {
        hi = s;
        break;
      }
      lo = s;
    }
    out.hit_scale_cap = hi == 0;
  } else {
    hi = 1.0;
    for (double s = 0.5; s >= limits.min_scale; s /= 2) {
      const RatePoint& p = run(s);
      if (p.meets_slo) {
        lo = s;
        break;
      }
      hi = s;
      // Latency no longer depends on the rate: lower rates cannot meet the SLO either.
      const RatePoint& before = out.points[out.points.size() - 2];
      if (p.ttft_ms == before.ttft_ms && p.tbt_ms == before.tbt_ms) {
        out.rate_independent = true;
        break;
      }
    }
  }
  // Bisection in log space: the answer is a rate, and its relative precision is what matters.
  if (lo > 0 && hi > 0) {
    while (hi / lo - 1 > limits.tolerance) {
      const double mid = std::sqrt(lo * hi);
      (run(mid).meets_slo ? lo : hi) = mid;
    }
  }
  out.max_rate_scale = lo;
  out.max_rate_per_s = lo * out.base_rate_per_s;
  if (lo > 0) {
    for (const auto& p : out.points)
      if (p.rate_scale == lo) out.best = p;
  }
  return out;
}

// ---- The plan -------------------------------------------------------------------------------

std::string_view sweep_axis_name(SweepAxis a) {
  switch (a) {
    case SweepAxis::threshold:
      return "threshold";
    case SweepAxis::fourier_m:
      return "fourier_m";
    case SweepAxis::l_eff:
      return "l_eff";
  }
  return "?";
}

namespace {

struct Task {
  Method method;
  MethodConfig cfg;
};

}  // namespace

// Searches that differ only in parameters their method ignores are the same search.
std::string search_label(Method m, const MethodConfig& c) {
  std::ostringstream s;
  s << method_name(m);
  if (uses_fourier(m)) s << " fourier_m=" << c.fourier.m;
  if (uses_ccv(m)) s << " threshold=" << exact_number(c.ccv.threshold) << " l_eff=" << c.ccv.l_eff;
  return s.str();
}

PlanResult make_plan(const PlanConfig& config, const OpCostModel& costs, const ReplayFn& replay,
                     const PlanProgressFn& progress, const std::atomic<bool>* cancel) {
  const auto started = std::chrono::steady_clock::now();
  if (config.methods.empty()) throw InputError("plan", "--methods", "no method to plan for");
  if (!(config.limits.tolerance > 0))
    throw InputError("plan", "--rate-tolerance", "must be positive");
  const ModelShape& shape = config.replay.model;
  // Like run_replay, only the parameters of methods that run must be valid.
  for (Method m : config.methods) {
    make_kv_format(m, shape, config.replay.method_config);  // validates the format's parameters
    if (uses_ccv(m)) config.replay.method_config.ccv.validate(shape);
  }

  // Every search to run, without duplicates; rows point into it.
  std::vector<Task> tasks;
  std::map<std::string, size_t> index;
  auto task_for = [&](Method m, const MethodConfig& c) {
    const auto [it, fresh] = index.try_emplace(search_label(m, c), tasks.size());
    if (fresh) tasks.push_back({m, c});
    return it->second;
  };
  std::vector<size_t> method_task;
  for (Method m : config.methods) method_task.push_back(task_for(m, config.replay.method_config));
  struct RowSpec {
    SweepAxis axis;
    double value;
    size_t task;
  };
  std::vector<RowSpec> rows;
  if (config.run_sweep) {
    for (Method m : config.methods) {
      MethodConfig c = config.replay.method_config;
      if (uses_ccv(m)) {
        for (double t : config.sweep.thresholds) {
          MethodConfig v = c;
          v.ccv.threshold = t;
          v.ccv.validate(shape);
          rows.push_back({SweepAxis::threshold, t, task_for(m, v)});
        }
        for (int64_t l : config.sweep.l_eff) {
          MethodConfig v = c;
          v.ccv.l_eff = l;
          v.ccv.validate(shape);
          rows.push_back({SweepAxis::l_eff, static_cast<double>(l), task_for(m, v)});
        }
      }
      if (uses_fourier(m)) {
        for (int64_t fm : config.sweep.fourier_m) {
          MethodConfig v = c;
          v.fourier.m = fm;
          v.fourier.validate(shape.head_dim);
          rows.push_back({SweepAxis::fourier_m, static_cast<double>(fm), task_for(m, v)});
        }
      }
    }
  }

  // Run the searches `jobs` at a time. Each search is sequential (bisection); searches are
  // independent, and run_replay is reentrant.
  std::vector<MethodPlan> done(tasks.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;  // guards first_error and the progress counters
  std::exception_ptr first_error;
  PlanProgress prog;
  prog.searches_total = static_cast<int64_t>(tasks.size());

  auto worker = [&] {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= tasks.size() || failed.load()) return;
      try {
        const Task& t = tasks[i];
        auto on_replay = [&] {
          if (failed.load()) throw Cancelled();
          std::lock_guard lock(mu);
          ++prog.replays_done;
          if (progress) progress(prog);
        };
        MethodPlan mp;
        mp.method = t.method;
        mp.search = search_max_rate(config.trace_path, config.replay, t.method, t.cfg, config.slo,
                                    config.limits, costs, replay, cancel, on_replay);
        const RatePoint& at = mp.search.best ? *mp.search.best : mp.search.points.front();
        mp.memory = fit_memory(shape, t.method, t.cfg, config.replay.gpu_memory_bytes,
                               config.batch_contexts_tokens, at.summary.hit_rate);
        const TraceStats& ts = mp.search.trace;
        const int64_t mean_context = std::max<int64_t>(
            1, std::llround(static_cast<double>(ts.input_tokens + ts.output_tokens) /
                            static_cast<double>(std::max<int64_t>(1, ts.requests))));
        mp.at_trace_mean = fit_memory(shape, t.method, t.cfg, config.replay.gpu_memory_bytes,
                                      {mean_context}, at.summary.hit_rate)
                               .batches.front();
        if (config.target_rate_per_s > 0)
          mp.gpus_for_target = gpus_needed(config.target_rate_per_s, mp.search.max_rate_per_s);
        done[i] = std::move(mp);
        std::lock_guard lock(mu);
        ++prog.searches_done;
        std::ostringstream note;
        note << method_name(t.method) << ": ";
        if (done[i].search.best)
          note << done[i].search.max_rate_per_s << " req/s";
        else
          note << "SLO missed";
        prog.note = note.str();
        if (progress) progress(prog);
      } catch (...) {
        std::lock_guard lock(mu);
        if (!failed.exchange(true)) first_error = std::current_exception();
        return;
      }
    }
  };
  const int jobs = std::max(1, std::min<int>(config.jobs, static_cast<int>(tasks.size())));
  std::vector<std::thread> pool;
  for (int j = 0; j < jobs; ++j) pool.emplace_back(worker);
  for (auto& th : pool) th.join();
  if (first_error) std::rethrow_exception(first_error);
  if (cancel && cancel->load()) throw Cancelled();

  PlanResult out;
  out.config = config;
  out.cost_model = costs.describe();
  for (size_t i : method_task) out.methods.push_back(done[i]);
  for (const auto& r : rows) out.sweep.push_back({r.axis, r.value, done[r.task]});
  out.trace = out.methods.front().search.trace;
  out.replays = prog.replays_done;
  out.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return out;
}

}  // namespace kvscope
