#include "sim/report/replay_report.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "model/error.h"
#include "sim/io/atomic_file.h"
#include "sim/io/number_text.h"

namespace kvscope {

namespace {

// One row's cells, as CSV or as a JSON array, appended to a buffer that is flushed in chunks:
// the timeline of a long trace has hundreds of thousands of rows.
class Cells {
 public:
  Cells(std::string& buf, bool json) : buf_(buf), json_(json) {}
  void begin_row() {
    first_ = true;
    if (json_) buf_ += '[';
  }
  void end_row() { buf_ += json_ ? "]" : "\n"; }
  Cells& num(double v) {
    sep();
    if (!std::isfinite(v)) {
      if (json_) buf_ += "null";
      return *this;
    }
    append_exact_number(buf_, v);
    return *this;
  }
  Cells& num(int64_t v) {
    sep();
    char tmp[24];
    const auto res = std::to_chars(tmp, tmp + sizeof tmp, v);
    buf_.append(tmp, res.ptr);
    return *this;
  }
  Cells& flag(bool b) {
    sep();
    buf_ += json_ ? (b ? "true" : "false") : (b ? "1" : "0");
    return *this;
  }
  Cells& str(const std::string& s) {
    sep();
    if (json_) {
      buf_ += nlohmann::json(s).dump();
    } else if (s.find_first_of(",\"\n\r") == std::string::npos) {
      buf_ += s;
    } else {
      buf_ += '"';
      for (char ch : s) buf_ += ch == '"' ? std::string("\"\"") : std::string(1, ch);
      buf_ += '"';
    }
    return *this;
  }

 private:
  void sep() {
    if (!first_) buf_ += ',';
    first_ = false;
  }
  std::string& buf_;
  bool json_;
  bool first_ = true;
};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();  // an empty cell

const std::vector<std::string> kStepColumns = {
    "step",           "start_ms",      "full_ms",  "paper_ms",         "batch",
    "prefill_tokens", "decode_tokens", "kv_bytes", "kv_in_step_bytes", "ccv_cache_bytes",
    "hit_rate",       "attention_ms",  "dense_ms", "ccv_ms",           "other_ms",
    "waiting"};

void step_cells(Cells& c, int64_t i, const StepRecord& s) {
  c.num(i).num(s.start_ms).num(s.full_ms).num(s.paper_ms).num(s.batch).num(s.prefill_tokens);
  c.num(s.decode_tokens).num(s.kv_bytes).num(s.kv_in_step_bytes).num(s.ccv_cache_bytes);
  c.num(s.hit_rate).num(s.attention_ms).num(s.dense_ms).num(s.ccv_ms).num(s.other_ms);
  c.num(s.waiting);
}

const std::vector<std::string> kRequestColumns = {
    "id",          "trace_line", "session",    "arrival_ms",   "first_token_ms",
    "finish_ms",   "ttft_ms",    "e2e_ms",     "input_tokens", "output_tokens",
    "preemptions", "ccv_hit",    "similarity", "rejected"};

void request_cells(Cells& c, int64_t, const RequestRecord& r) {
  const bool served = !r.rejected;
  c.num(r.id).num(r.trace_line).str(r.session).num(r.arrival_ms);
  c.num(served ? r.first_token_ms : kNaN).num(served ? r.finish_ms : kNaN);
  c.num(served ? r.first_token_ms - r.arrival_ms : kNaN)
      .num(served ? r.finish_ms - r.arrival_ms : kNaN);
  c.num(r.input_tokens).num(r.output_tokens).num(r.preemptions).flag(r.ccv_hit).num(r.similarity);
  c.flag(r.rejected);
}

constexpr size_t kFlushBytes = size_t{1} << 20;

template <class Rec, class Fn>
void write_csv_table(std::ostream& out, const ReplayResult& r,
                     const std::vector<std::string>& columns,
                     const std::vector<Rec> MethodResult::*table, Fn cells) {
  std::string buf = "method";
  for (const auto& c : columns) buf += "," + c;
  buf += '\n';
  Cells row(buf, false);
  for (const auto& m : r.methods) {
    const std::string name(method_name(m.summary.method));
    const auto& recs = m.*table;
    for (size_t i = 0; i < recs.size(); ++i) {
      row.begin_row();
      row.str(name);
      cells(row, static_cast<int64_t>(i), recs[i]);
      row.end_row();
      if (buf.size() > kFlushBytes) out << buf, buf.clear();
    }
  }
  out << buf;
}

template <class Rec, class Fn>
void write_json_table(std::ostream& out, const ReplayResult& r,
                      const std::vector<std::string>& columns,
                      const std::vector<Rec> MethodResult::*table, Fn cells) {
  std::string buf = "{";
  Cells row(buf, true);
  for (size_t mi = 0; mi < r.methods.size(); ++mi) {
    const auto& m = r.methods[mi];
    if (mi) buf += ',';
    // Appended piece by piece: GCC 12 at -O3 warns falsely (-Wrestrict) on "literal" + string.
    buf += '\n';
    buf += nlohmann::json(std::string(method_name(m.summary.method))).dump();
    buf += ": {\"columns\": ";
    buf += nlohmann::json(columns).dump();
    buf += ", \"rows\": [";
    const auto& recs = m.*table;
    for (size_t i = 0; i < recs.size(); ++i) {
      buf += i ? ",\n" : "\n";
      row.begin_row();
      cells(row, static_cast<int64_t>(i), recs[i]);
      row.end_row();
      if (buf.size() > kFlushBytes) out << buf, buf.clear();
    }
    buf += "]}";
  }
  buf += "\n}\n";
  out << buf;
}

nlohmann::json percentiles_json(const Percentiles& p) {
  return {{"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}, {"mean", p.mean}};
}

std::string fixed(double v, int digits) {
  char tmp[64];
  std::snprintf(tmp, sizeof tmp, "%.*f", digits, v);
  return tmp;
}

std::string gib(double bytes) { return fixed(bytes / 1073741824.0, 2); }

}  // namespace

nlohmann::json replay_run_info(const ReplayConfig& c, const std::string& cost_model) {
  std::vector<std::string> methods;
  for (Method m : c.methods) methods.emplace_back(method_name(m));
  const auto& f = c.method_config.fourier;
  const auto& v = c.method_config.ccv;
  return {
      {"model", c.model.name},
      {"cost_model", cost_model},
      {"methods", methods},
      {"gpu_memory_bytes", c.gpu_memory_bytes},
      {"rate_scale", c.rate_scale},
      {"scheduler",
       {{"max_batch", c.scheduler.max_batch},
        {"token_budget", c.scheduler.token_budget},
        {"chunked_prefill", c.scheduler.chunked_prefill}}},
      {"fourier",
       {{"m", f.m},
        {"compressed_dims", f.resolved_count(c.model.head_dim)},
        {"sink_tokens", f.sink_tokens},
        {"window_tokens", f.window_tokens}}},
      {"ccv",
       {{"threshold", v.threshold},
        {"l_eff", v.l_eff},
        {"d2", v.resolved_d2(c.model)},
        {"budget_bytes", v.budget_bytes},
        {"eviction", std::string(eviction_name(v.eviction))},
        {"ttl_s", v.ttl_s}}},
      {"max_requests", c.max_requests},
      {"bad_records", c.bad_records == BadRecordPolicy::stop ? "stop" : "skip"},
      {"hit_window_s", c.hit_window_s},
  };
}

nlohmann::json summary_json(const MethodResult& m) {
  const MethodSummary& s = m.summary;
  nlohmann::json windows = nlohmann::json::array();
  for (const auto& w : m.hit_windows)
    windows.push_back(
        {{"start_s", w.start_s},
         {"lookups", w.lookups},
         {"hits", w.hits},
         {"p", w.lookups ? static_cast<double>(w.hits) / static_cast<double>(w.lookups) : 0.0}});
  nlohmann::json j = {
      {"method", std::string(method_name(s.method))},
      {"requests", s.requests},
      {"rejected", s.rejected},
      {"ttft_ms", percentiles_json(s.ttft_ms)},
      {"tbt_ms", percentiles_json(s.tbt_ms)},
      {"e2e_ms", percentiles_json(s.e2e_ms)},
      {"makespan_s", s.makespan_s},
      {"throughput_tokens_per_s", s.throughput_tokens_per_s},
      {"generated_tokens", s.generated_tokens},
      {"prefill_tokens", s.prefill_tokens},
      {"steps", s.steps},
      {"preemptions", s.preemptions},
      {"memory",
       {{"weight_bytes", s.weight_bytes},
        {"kv_capacity_bytes", s.kv_capacity_bytes},
        {"peak_kv_bytes", s.peak_kv_bytes},
        {"mean_kv_bytes", s.mean_kv_bytes},
        {"peak_ccv_cache_bytes", s.peak_ccv_cache_bytes},
        {"mean_ccv_cache_bytes", s.mean_ccv_cache_bytes},
        {"peak_total_bytes", s.peak_total_bytes}}},
      {"ccv",
       {{"hit_rate", s.hit_rate},
        {"lookups", s.ccv_lookups},
        {"hits", s.ccv_hits},
        {"insertions", s.ccv_insertions},
        {"evictions", s.ccv_evictions},
        {"expirations", s.ccv_expirations},
        {"hit_rate_over_time", windows}}},
      {"busy_full_ms", s.busy_full_ms},
      {"busy_paper_ms", s.busy_paper_ms},
  };
  if (s.has_baseline) {
    j["time_saved_vs_baseline_ms"] = s.time_saved_vs_baseline_ms;
    j["time_saved_vs_baseline_paper_ms"] = s.time_saved_vs_baseline_paper_ms;
  } else {
    j["time_saved_vs_baseline_ms"] = nullptr;
    j["time_saved_vs_baseline_paper_ms"] = nullptr;
  }
  return j;
}

nlohmann::json replay_summary_json(const ReplayResult& r, const nlohmann::json& run_info) {
  nlohmann::json methods = nlohmann::json::array();
  for (const auto& m : r.methods) methods.push_back(summary_json(m));
  return {{"run", run_info},
          {"trace",
           {{"path", r.trace.path},
            {"format", r.trace.format},
            {"requests", r.trace.requests},
            {"skipped_records", r.trace.skipped_records},
            {"input_tokens", r.trace.input_tokens},
            {"output_tokens", r.trace.output_tokens},
            {"duration_s", r.trace.duration_s}}},
          {"cancelled", r.cancelled},
          {"methods", methods}};
}

void write_summary_csv(std::ostream& out, const ReplayResult& r) {
  std::string buf =
      "method,requests,rejected,ttft_p50_ms,ttft_p90_ms,ttft_p99_ms,ttft_mean_ms,tbt_p50_ms,"
      "tbt_p90_ms,tbt_p99_ms,tbt_mean_ms,e2e_p50_ms,e2e_p90_ms,e2e_p99_ms,e2e_mean_ms,makespan_s,"
      "throughput_tokens_per_s,peak_kv_bytes,mean_kv_bytes,kv_capacity_bytes,"
      "peak_ccv_cache_bytes,mean_ccv_cache_bytes,peak_total_bytes,hit_rate,ccv_lookups,ccv_hits,"
      "ccv_evictions,ccv_expirations,preemptions,steps,busy_full_ms,busy_paper_ms,"
      "time_saved_vs_baseline_ms,time_saved_vs_baseline_paper_ms\n";
  Cells c(buf, false);
  for (const auto& m : r.methods) {
    const MethodSummary& s = m.summary;
    c.begin_row();
    c.str(std::string(method_name(s.method))).num(s.requests).num(s.rejected);
    for (const Percentiles* p : {&s.ttft_ms, &s.tbt_ms, &s.e2e_ms})
      c.num(p->p50).num(p->p90).num(p->p99).num(p->mean);
    c.num(s.makespan_s).num(s.throughput_tokens_per_s).num(s.peak_kv_bytes).num(s.mean_kv_bytes);
    c.num(s.kv_capacity_bytes).num(s.peak_ccv_cache_bytes).num(s.mean_ccv_cache_bytes);
    c.num(s.peak_total_bytes).num(s.hit_rate).num(s.ccv_lookups).num(s.ccv_hits);
    c.num(s.ccv_evictions).num(s.ccv_expirations).num(s.preemptions).num(s.steps);
    c.num(s.busy_full_ms).num(s.busy_paper_ms);
    c.num(s.has_baseline ? s.time_saved_vs_baseline_ms : kNaN);
    c.num(s.has_baseline ? s.time_saved_vs_baseline_paper_ms : kNaN);
    c.end_row();
  }
  out << buf;
}

void write_steps_csv(std::ostream& out, const ReplayResult& r) {
  write_csv_table(out, r, kStepColumns, &MethodResult::steps, step_cells);
}
void write_requests_csv(std::ostream& out, const ReplayResult& r) {
  write_csv_table(out, r, kRequestColumns, &MethodResult::requests, request_cells);
}
void write_steps_json(std::ostream& out, const ReplayResult& r) {
  write_json_table(out, r, kStepColumns, &MethodResult::steps, step_cells);
}
void write_requests_json(std::ostream& out, const ReplayResult& r) {
  write_json_table(out, r, kRequestColumns, &MethodResult::requests, request_cells);
}

void write_hit_rate_csv(std::ostream& out, const ReplayResult& r) {
  std::string buf = "method,start_s,lookups,hits,p\n";
  Cells c(buf, false);
  for (const auto& m : r.methods)
    for (const auto& w : m.hit_windows) {
      c.begin_row();
      c.str(std::string(method_name(m.summary.method))).num(w.start_s).num(w.lookups).num(w.hits);
      c.num(w.lookups ? static_cast<double>(w.hits) / static_cast<double>(w.lookups) : 0.0);
      c.end_row();
    }
  out << buf;
}

void write_replay_outputs(const std::string& dir, const ReplayResult& r,
                          const nlohmann::json& run_info) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir))
    throw InputError(dir, "--out", "cannot create the output directory: " + ec.message());
  const std::filesystem::path d(dir);
  auto write = [&](const char* name, auto fn) {
    write_file_atomically((d / name).string(), [&](std::ostream& out) { fn(out, r); });
  };
  write("summary.json", [&](std::ostream& out, const ReplayResult& res) {
    out << replay_summary_json(res, run_info).dump(2) << "\n";
  });
  write("summary.csv", write_summary_csv);
  write("hit_rate.csv", write_hit_rate_csv);
  bool steps = false, requests = false;
  for (const auto& m : r.methods) {
    steps = steps || !m.steps.empty();
    requests = requests || !m.requests.empty();
  }
  if (steps) {
    write("steps.csv", write_steps_csv);
    write("steps.json", write_steps_json);
  }
  if (requests) {
    write("requests.csv", write_requests_csv);
    write("requests.json", write_requests_json);
  }
}

void print_replay_summary(std::ostream& out, const ReplayResult& r, const nlohmann::json& info) {
  const auto& t = r.trace;
  out << "trace " << t.path << " (" << t.format << "): " << t.requests << " requests";
  if (t.skipped_records) out << " (" << t.skipped_records << " bad records skipped)";
  out << ", " << fixed(static_cast<double>(t.input_tokens) / 1e6, 2) << " M input / "
      << fixed(static_cast<double>(t.output_tokens) / 1e6, 2) << " M output tokens over "
      << fixed(t.duration_s, 1) << " s\n";
  const auto& sch = info.at("scheduler");
  out << "model " << info.at("model").get<std::string>() << ", "
      << info.at("cost_model").get<std::string>() << "\n"
      << "GPU memory " << gib(info.at("gpu_memory_bytes").get<double>()) << " GiB, rate x"
      << info.at("rate_scale").get<double>() << ", token budget "
      << sch.at("token_budget").get<int64_t>() << ", max batch "
      << sch.at("max_batch").get<int64_t>()
      << (sch.at("chunked_prefill").get<bool>() ? ", chunked prefill" : ", whole prefills") << "\n";
  const auto& ccv = info.at("ccv");
  out << "CCV threshold " << fixed(ccv.at("threshold").get<double>(), 2) << ", L_eff "
      << ccv.at("l_eff").get<int64_t>() << ", d2 " << ccv.at("d2").get<int64_t>() << ", cache "
      << gib(ccv.at("budget_bytes").get<double>()) << " GiB "
      << ccv.at("eviction").get<std::string>() << "; Fourier M "
      << info.at("fourier").at("m").get<int64_t>() << " on "
      << info.at("fourier").at("compressed_dims").get<int64_t>() << " dims\n";
  if (r.cancelled) out << "CANCELLED: the figures cover the part replayed\n";

  char line[512];
  std::snprintf(line, sizeof line, "\n%-12s %8s %28s %24s %18s %10s\n", "method", "served",
                "TTFT p50/p90/p99 (s)", "TBT p50/p90/p99 (ms)", "e2e p50/p99 (s)", "tok/s");
  out << line;
  for (const auto& m : r.methods) {
    const MethodSummary& s = m.summary;
    std::snprintf(
        line, sizeof line, "%-12s %8lld %28s %24s %18s %10.0f\n",
        std::string(method_name(s.method)).c_str(), static_cast<long long>(s.requests),
        (fixed(s.ttft_ms.p50 / 1e3, 2) + " / " + fixed(s.ttft_ms.p90 / 1e3, 2) + " / " +
         fixed(s.ttft_ms.p99 / 1e3, 2))
            .c_str(),
        (fixed(s.tbt_ms.p50, 1) + " / " + fixed(s.tbt_ms.p90, 1) + " / " + fixed(s.tbt_ms.p99, 1))
            .c_str(),
        (fixed(s.e2e_ms.p50 / 1e3, 1) + " / " + fixed(s.e2e_ms.p99 / 1e3, 1)).c_str(),
        s.throughput_tokens_per_s);
    out << line;
  }
  std::snprintf(line, sizeof line, "\n%-12s %9s %9s %9s %9s %7s %7s %11s %11s %11s %11s\n",
                "method", "peak GiB", "KV peak", "KV mean", "CCV peak", "p", "preempt",
                "busy full s", "busy paper", "saved full", "saved paper");
  out << line;
  for (const auto& m : r.methods) {
    const MethodSummary& s = m.summary;
    const bool ccv_method = uses_ccv(s.method);
    std::snprintf(line, sizeof line, "%-12s %9s %9s %9s %9s %7s %7lld %11.1f %11.1f %11s %11s\n",
                  std::string(method_name(s.method)).c_str(),
                  gib(static_cast<double>(s.peak_total_bytes)).c_str(),
                  gib(static_cast<double>(s.peak_kv_bytes)).c_str(), gib(s.mean_kv_bytes).c_str(),
                  ccv_method ? gib(static_cast<double>(s.peak_ccv_cache_bytes)).c_str() : "-",
                  ccv_method ? fixed(s.hit_rate, 3).c_str() : "-",
                  static_cast<long long>(s.preemptions), s.busy_full_ms / 1e3,
                  s.busy_paper_ms / 1e3,
                  s.has_baseline ? fixed(s.time_saved_vs_baseline_ms / 1e3, 1).c_str() : "-",
                  s.has_baseline ? fixed(s.time_saved_vs_baseline_paper_ms / 1e3, 1).c_str() : "-");
    out << line;
  }
  int64_t rejected = 0;
  for (const auto& m : r.methods) rejected += m.summary.rejected;
  out << "\nbusy = simulated GPU time; full = the full-layer model (drives the clock), paper = the "
         "paper's attention-only model.\np = CCV hits / lookups, measured on this trace; saved = "
         "baseline's busy time minus the method's.\n";
  if (rejected > 0)
    out << "warning: " << rejected
        << " request(s) could never fit the KV pool and were rejected (see requests.csv)\n";
}

}  // namespace kvscope
