#include "sim/check/check.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "model/error.h"
#include "sim/check/executor.h"
#include "sim/engine/engine.h"
#include "sim/engine/step_pricer.h"
#include "sim/trace/trace.h"

namespace kvscope::check {

std::string_view step_kind_name(StepKind k) {
  switch (k) {
    case StepKind::prefill:
      return "prefill";
    case StepKind::decode:
      return "decode";
    case StepKind::mixed:
      return "mixed";
  }
  return "?";
}

StepKind kind_of(const ObservedStep& s) {
  bool prefill = false, decode = false;
  for (const auto& it : s.items) (it.prefill ? prefill : decode) = true;
  if (prefill && decode) return StepKind::mixed;
  return prefill ? StepKind::prefill : StepKind::decode;
}

std::vector<size_t> sample_steps(const std::vector<StepKind>& kinds, int64_t max_steps) {
  std::vector<size_t> out;
  if (max_steps <= 0 || static_cast<size_t>(max_steps) >= kinds.size()) {
    for (size_t i = 0; i < kinds.size(); ++i) out.push_back(i);
    return out;
  }
  std::vector<std::vector<size_t>> groups(3);
  for (size_t i = 0; i < kinds.size(); ++i) groups[static_cast<size_t>(kinds[i])].push_back(i);
  std::sort(groups.begin(), groups.end(),
            [](const auto& a, const auto& b) { return a.size() < b.size(); });
  int64_t left = max_steps;
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& idx = groups[g];
    const int64_t share = left / static_cast<int64_t>(groups.size() - g);
    const auto take =
        static_cast<size_t>(std::min<int64_t>(share, static_cast<int64_t>(idx.size())));
    for (size_t j = 0; j < take; ++j)
      out.push_back(
          idx[static_cast<size_t>((static_cast<double>(j) + 0.5) * static_cast<double>(idx.size()) /
                                  static_cast<double>(take))]);
    left -= static_cast<int64_t>(take);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<size_t> interleaved_order(size_t n) {
  std::vector<size_t> out;
  size_t bits = 0;
  while ((size_t{1} << bits) < n) ++bits;
  for (size_t i = 0; i < (size_t{1} << bits); ++i) {
    size_t r = 0;
    for (size_t b = 0; b < bits; ++b)
      if (i & (size_t{1} << b)) r |= size_t{1} << (bits - 1 - b);
    if (r < n) out.push_back(r);
  }
  return out;
}

void fill_error_stats(std::vector<double> e, ErrorStats& out) {
  out.steps = static_cast<int64_t>(e.size());
  if (e.empty()) return;
  std::sort(e.begin(), e.end());
  const size_t n = e.size();
  out.median = n % 2 ? e[n / 2] : 0.5 * (e[n / 2 - 1] + e[n / 2]);
  out.p90 = e[static_cast<size_t>(std::ceil(0.9 * static_cast<double>(n))) - 1];
  out.max = e.back();
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

CheckStep describe(const ObservedStep& s) {
  CheckStep c;
  c.method = s.method;
  c.index = s.index;
  c.kind = kind_of(s);
  c.predicted_ms = s.full_ms;
  c.pred_attention_ms = s.attention_ms;
  c.pred_dense_ms = s.dense_ms;
  c.pred_ccv_ms = s.ccv_ms;
  c.pred_other_ms = s.other_ms;
  c.predicted_kv_bytes = s.kv_in_step_bytes;
  c.items = s.items;
  int64_t min_kv = std::numeric_limits<int64_t>::max(), max_dkv = 0, sum_dkv = 0;
  std::ostringstream chunks;
  int listed = 0;
  for (const auto& it : s.items) {
    c.max_kv = std::max(c.max_kv, it.kv_len);
    c.hits += it.ccv_hit ? 1 : 0;
    if (it.prefill) {
      ++c.prefill_seqs;
      c.prefill_tokens += it.q_tokens;
      if (listed++ < 4)
        chunks << (listed > 1 ? ", " : "") << it.q_tokens << "@" << it.kv_len
               << (it.ccv_hit ? " hit" : "");
    } else {
      ++c.decode_seqs;
      c.decode_tokens += 1;
      min_kv = std::min(min_kv, it.kv_len);
      max_dkv = std::max(max_dkv, it.kv_len);
      sum_dkv += it.kv_len;
    }
  }
  std::ostringstream d;
  if (c.decode_seqs > 0) {
    c.mean_decode_kv = sum_dkv / c.decode_seqs;
    d << c.decode_seqs << " decode" << (c.decode_seqs > 1 ? "s" : "") << " kv " << min_kv << ".."
      << max_dkv << " (mean " << c.mean_decode_kv << ")";
  }
  if (c.prefill_seqs > 0) {
    if (c.decode_seqs > 0) d << "; ";
    d << "prefill " << chunks.str();
    if (listed > 4) d << " +" << listed - 4 << " more";
  }
  if (c.hits > 0) d << "; " << c.hits << " CCV hit" << (c.hits > 1 ? "s" : "");
  c.shape = d.str();
  return c;
}

ExecutorLimits limits_for(const std::string& trace, const ReplayConfig& rc) {
  ExecutorLimits l;
  l.max_seqs = rc.scheduler.max_batch;
  int64_t longest = 1, longest_prompt = 1;
  const auto reader = open_trace(trace, rc.format, rc.bad_records);
  TraceRecord rec;
  for (int64_t n = 0; (rc.max_requests < 0 || n < rc.max_requests) && reader->next(rec); ++n) {
    if (rc.length_scale != 1.0) scale_lengths(rec, rc.length_scale);
    longest = std::max(longest, rec.input_tokens + rec.output_tokens);
    longest_prompt = std::max(longest_prompt, rec.input_tokens + rec.output_tokens);
  }
  l.max_context = longest;
  // A step holds at most the token budget, except a prompt (recomputed with what it generated
  // after a preemption) that runs whole without chunked prefill.
  l.max_rows = rc.scheduler.chunked_prefill ? rc.scheduler.token_budget
                                            : std::max(rc.scheduler.token_budget, longest_prompt);
  return l;
}

}  // namespace

void summarize(CheckResult& res, const std::vector<Method>& methods) {
  res.latency.clear();
  for (Method m : methods) {
    for (const std::string kind : {"prefill", "decode", "mixed", "all"}) {
      std::vector<double> e;
      ErrorStats st;
      st.method = m;
      st.kind = kind;
      double signed_sum = 0;
      for (const CheckStep& c : res.steps) {
        if (c.method != m || (kind != "all" && step_kind_name(c.kind) != kind)) continue;
        e.push_back(c.rel_error());
        st.predicted_ms += c.predicted_ms;
        st.measured_ms += c.measured_ms;
        signed_sum += (c.predicted_ms - c.measured_ms) / c.measured_ms;
      }
      if (e.empty()) continue;
      st.mean_signed = signed_sum / static_cast<double>(e.size());
      fill_error_stats(std::move(e), st);
      res.latency.push_back(st);
    }
  }
  std::vector<MemoryStats> mem;
  for (Method m : methods) {
    MemoryStats st;
    st.method = m;
    for (const auto& old : res.memory)
      if (old.method == m) {
        st.weights_predicted_bytes = old.weights_predicted_bytes;
        st.weights_allocated_bytes = old.weights_allocated_bytes;
      }
    for (const CheckStep& c : res.steps) {
      if (c.method != m) continue;
      ++st.steps;
      st.equal_steps += c.allocated_kv_bytes == c.predicted_kv_bytes ? 1 : 0;
      st.max_abs_diff_bytes =
          std::max(st.max_abs_diff_bytes, std::abs(c.allocated_kv_bytes - c.predicted_kv_bytes));
      if (c.predicted_kv_bytes >= st.peak_predicted_bytes) {
        st.peak_predicted_bytes = c.predicted_kv_bytes;
        st.peak_allocated_bytes = c.allocated_kv_bytes;
      }
      st.device_peak_used_bytes = std::max(st.device_peak_used_bytes, c.device_used_bytes);
    }
    mem.push_back(st);
  }
  res.memory = std::move(mem);
}

CheckResult reprice_check(const std::string& path, const ReplayConfig& rc,
                          const OpCostModel& costs) {
  std::ifstream in(path);
  if (!in) throw InputError(path, "--reprice", "cannot open the steps of an earlier check");
  CheckResult res;
  res.cost_model = costs.describe();
  std::vector<std::unique_ptr<StepPricer>> pricers;
  for (Method m : rc.methods)
    pricers.push_back(
        std::make_unique<StepPricer>(costs, rc.model, m, rc.method_config,
                                     rc.scheduler.token_budget + rc.scheduler.max_batch, true));
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw InputError(path, n, "", std::string("not valid JSON: ") + e.what());
    }
    try {
      if (j.contains("header")) {
        const auto& h = j["header"];
        if (h.at("model").get<std::string>() != rc.model.name)
          throw InputError(
              path, n, "header.model",
              "measured for " + h.at("model").get<std::string>() + ", not " + rc.model.name);
        res.trace.path = h.at("trace").get<std::string>();
        res.trace.requests = h.at("requests").get<int64_t>();
        res.device.name = h.at("device").get<std::string>();
        res.device.backend = h.at("backend").get<std::string>();
        res.device.driver = h.value("driver", std::string());
        res.gpu_memory_bytes = h.value("gpu_memory_bytes", int64_t{0});
        res.replay_steps = h.value("replay_steps", std::vector<int64_t>{});
        for (const auto& w : h.at("weights")) {
          MemoryStats m;
          m.method = *parse_method(w.at("method").get<std::string>());
          m.weights_predicted_bytes = w.at("predicted_bytes");
          m.weights_allocated_bytes = w.at("allocated_bytes");
          res.memory.push_back(m);
        }
        continue;
      }
      const auto method = parse_method(j.at("method").get<std::string>());
      if (!method) throw InputError(path, n, "method", "unknown method");
      const auto pos = std::find(rc.methods.begin(), rc.methods.end(), *method);
      if (pos == rc.methods.end()) continue;  // a method not asked for now
      ObservedStep o;
      o.method = *method;
      o.index = j.at("step");
      o.kv_in_step_bytes = j.at("predicted_kv_bytes");
      for (const auto& it : j.at("items"))
        o.items.push_back(
            {it.at(0), it.at(1), it.at(2), it.at(3), it.at(4) != 0, it.at(5) != 0, it.at(6) != 0});
      const StepPrice p =
          pricers[static_cast<size_t>(pos - rc.methods.begin())]->price(step_shape(o, true, true));
      o.full_ms = p.full_ms;
      o.attention_ms = p.attention_ms;
      o.dense_ms = p.dense_ms;
      o.ccv_ms = p.ccv_ms;
      o.other_ms = p.other_ms;
      CheckStep c = describe(o);
      c.measured_ms = j.at("measured_ms");
      c.reps = j.at("reps");
      c.allocated_kv_bytes = j.at("allocated_kv_bytes");
      c.device_used_bytes = j.at("device_used_bytes");
      const auto& parts = j.at("measured_parts_ms");
      c.meas_attention_ms = parts.at(0);
      c.meas_dense_ms = parts.at(1);
      c.meas_ccv_ms = parts.at(2);
      c.meas_other_ms = parts.at(3);
      res.steps.push_back(std::move(c));
    } catch (const nlohmann::json::exception& e) {
      throw InputError(path, n, "", std::string("bad step record: ") + e.what());
    }
  }
  summarize(res, rc.methods);
  return res;
}

CheckResult run_check(const std::string& trace_path, const CheckConfig& cfg,
                      const OpCostModel& costs, const ProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  auto backend = kernels::make_backend(cfg.backend);
  CheckResult res;
  res.device = backend->info();
  res.cost_model = costs.describe();

  ReplayConfig rc = cfg.replay;
  rc.decode_attention_per_sequence = true;  // the executor attends sequence by sequence
  rc.price_lm_head = true;                  // and runs the LM head
  rc.keep_steps = false;
  rc.keep_requests = false;
  bool any_ccv = false;
  for (Method m : rc.methods) any_ccv = any_ccv || uses_ccv(m);
  const ExecutorLimits lim = limits_for(trace_path, rc);
  if (rc.gpu_memory_bytes <= 0) {
    const kernels::Backend::MemoryInfo mem = backend->device_memory();
    if (mem.free_bytes < 0)
      throw InputError("check config", "--gpu-mem",
                       "the " + cfg.backend + " backend cannot measure its free memory; give it");
    rc.gpu_memory_bytes = mem.free_bytes -
                          StepExecutor::scratch_bytes(rc.model, rc.method_config, any_ccv, lim) -
                          cfg.device_reserve_bytes;
  }
  res.gpu_memory_bytes = rc.gpu_memory_bytes;

  // 1. The replay, every step recorded as scheduled.
  std::vector<std::vector<ObservedStep>> recorded(rc.methods.size());
  rc.on_step = [&](const ObservedStep& s) {
    for (size_t i = 0; i < rc.methods.size(); ++i)
      if (rc.methods[i] == s.method) recorded[i].push_back(s);
  };
  const ReplayResult replay =
      run_replay(trace_path, rc, costs, [&](double f, const std::string& note) {
        if (progress) progress(0.02 * f, "replay: " + note);
      });
  res.trace = replay.trace;
  for (const auto& r : recorded) res.replay_steps.push_back(static_cast<int64_t>(r.size()));

  // 2. The same steps on the kernels.
  if (progress) progress(0.02, "allocating the model's weights");
  StepExecutor ex(*backend, rc.model, rc.method_config, any_ccv, lim);
  const int64_t base_bytes = backend->allocated_bytes();  // weights and scratch
  const auto run_start = std::chrono::steady_clock::now();

  std::vector<std::vector<size_t>> picks;
  size_t total = 0;
  for (const auto& r : recorded) {
    std::vector<StepKind> kinds;
    for (const auto& s : r) kinds.push_back(kind_of(s));
    picks.push_back(sample_steps(kinds, cfg.max_steps));
    total += picks.back().size();
  }
  size_t done = 0;
  for (size_t mi = 0; mi < rc.methods.size(); ++mi) {
    const Method m = rc.methods[mi];
    ex.set_method(m);
    MemoryStats mem;
    mem.method = m;
    mem.weights_predicted_bytes =
        model_weight_bytes(rc.model) +
        (uses_ccv(m) ? ccv_layer_weight_bytes(rc.model, rc.method_config.ccv) : 0);
    mem.weights_allocated_bytes =
        ex.model_weight_bytes() + (uses_ccv(m) ? ex.ccv_weight_bytes() : 0);
    const auto method_start = std::chrono::steady_clock::now();
    const double budget_s = cfg.time_budget_s > 0 ? (cfg.time_budget_s - seconds_since(run_start)) /
                                                        static_cast<double>(rc.methods.size() - mi)
                                                  : 0.0;
    const size_t first = res.steps.size();
    for (size_t order : interleaved_order(picks[mi].size())) {
      if (budget_s > 0 && seconds_since(method_start) > budget_s) {
        break;
      }
      const size_t idx = picks[mi][order];
      const ObservedStep& s = recorded[mi][idx];
      CheckStep c = describe(s);
      try {
        ex.hold(s.held);
        c.allocated_kv_bytes = backend->allocated_bytes() - base_bytes;
        if (c.allocated_kv_bytes != ex.cache_bytes())
          throw std::logic_error("check: the backend's allocation count and the caches disagree");
        const kernels::Backend::MemoryInfo dm = backend->device_memory();
        if (dm.free_bytes >= 0) c.device_used_bytes = dm.total_bytes - dm.free_bytes;
        c.reps = cfg.reps > 0 ? cfg.reps
                              : static_cast<int>(std::clamp(
                                    std::ceil(100.0 / std::max(c.predicted_ms, 1e-3)), 1.0, 5.0));
        c.measured_ms = backend->time_ms([&] { ex.run(s); }, cfg.warmup, c.reps);
        if (cfg.breakdown) {
          auto part = [&](unsigned p) {
            return backend->time_ms([&] { ex.run(s, p); }, cfg.warmup, c.reps);
          };
          c.meas_attention_ms = part(StepExecutor::kAttention);
          c.meas_dense_ms = part(StepExecutor::kDense);
          c.meas_ccv_ms = uses_ccv(m) ? part(StepExecutor::kCcv) : 0.0;
          c.meas_other_ms = part(StepExecutor::kOther);
        }
      } catch (const std::exception& e) {
        // A step the backend cannot run (out of memory, a shape it refuses) is reported, not
        // fatal: what ran is still worth its report.
        if (res.failed_steps++ == 0)
          res.first_failure =
              std::string(method_name(m)) + " step " + std::to_string(s.index) + ": " + e.what();
        ex.set_method(m);  // drop the caches: the next step holds what it needs afresh
        continue;
      }

      ++mem.steps;
      mem.equal_steps += c.allocated_kv_bytes == c.predicted_kv_bytes ? 1 : 0;
      mem.max_abs_diff_bytes =
          std::max(mem.max_abs_diff_bytes, std::abs(c.allocated_kv_bytes - c.predicted_kv_bytes));
      if (c.predicted_kv_bytes >= mem.peak_predicted_bytes) {
        mem.peak_predicted_bytes = c.predicted_kv_bytes;
        mem.peak_allocated_bytes = c.allocated_kv_bytes;
      }
      mem.device_peak_used_bytes = std::max(mem.device_peak_used_bytes, c.device_used_bytes);
      ++done;
      if (progress) {
        std::ostringstream note;
        note.setf(std::ios::fixed);
        note.precision(2);
        note << method_name(m) << " step " << s.index << " (" << step_kind_name(c.kind) << ", "
             << c.prefill_tokens + c.decode_tokens << " tokens): predicted " << c.predicted_ms
             << " ms, measured " << c.measured_ms << " ms";
        progress(0.02 + 0.98 * static_cast<double>(done) /
                            static_cast<double>(std::max<size_t>(total, 1)),
                 note.str());
      }
      res.steps.push_back(std::move(c));
    }
    std::sort(res.steps.begin() + static_cast<std::ptrdiff_t>(first), res.steps.end(),
              [](const CheckStep& a, const CheckStep& b) { return a.index < b.index; });
    ex.set_method(Method::baseline);  // frees the caches
    res.memory.push_back(mem);
  }

  // 3. Error statistics per method and kind, memory per method.
  summarize(res, rc.methods);
  res.wall_s = seconds_since(t0);
  return res;
}

}  // namespace kvscope::check
