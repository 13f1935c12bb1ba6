#include "sim/plan/plan_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "model/dtype.h"
#include "sim/report/svg_chart.h"

namespace kvscope {

namespace {

using report::BarChart;
using report::Document;
using report::Figure;
using report::LineChart;
using report::Series;
using report::Table;

// ---- Formatting for people (the CSV carries exact values) ----

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// Three significant figures without exponents for everyday magnitudes.
std::string readable(double v) {
  if (!std::isfinite(v)) return "—";
  const double a = std::abs(v);
  if (a >= 1000) return fmt("%.0f", v);
  if (a >= 100) return fmt("%.1f", v);
  if (a >= 1) return fmt("%.2f", v);
  if (a == 0) return "0";
  return fmt("%.3g", v);
}

std::string grouped(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string bytes_text(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  double v = b;
  while (std::abs(v) >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt("%.0f B", v) : fmt("%.2f ", v) + units[u];
}

std::string percent(double f) { return fmt("%.1f%%", 100 * f); }

std::string context_text(int64_t tokens) {
  return tokens < 0 ? "no memory limit" : grouped(tokens);
}

std::string ms_text(double ms) {
  return ms >= 1000 ? fmt("%.3g s", ms / 1000) : readable(ms) + " ms";
}

std::string method_text(Method m) { return std::string(method_name(m)); }

// One colour per method in every chart, whichever methods a plan has.
std::string method_colour(Method m) {
  const auto& all = all_methods();
  return report::series_colour(
      static_cast<size_t>(std::find(all.begin(), all.end(), m) - all.begin()));
}

const RatePoint* best_or_first(const RateSearch& s) {
  if (s.best) return &*s.best;
  return s.points.empty() ? nullptr : &s.points.front();
}

int64_t headroom_bytes(const MethodSummary& s) { return s.kv_capacity_bytes - s.peak_kv_bytes; }
double headroom_fraction(const MethodSummary& s) {
  return s.kv_capacity_bytes > 0
             ? static_cast<double>(headroom_bytes(s)) / static_cast<double>(s.kv_capacity_bytes)
             : 0.0;
}

std::string gpus_text(int64_t g) {
  if (g == 0) return "—";
  if (g < 0) return "not reachable";
  return std::to_string(g);
}

// ---- CSV rows built from (column, value) pairs so header and values cannot drift ----

struct RowBuilder {
  std::vector<std::string> header, row;
  void add(const std::string& name, std::string value) {
    header.push_back(name);
    row.push_back(std::move(value));
  }
  void num(const std::string& name, double v) { add(name, exact_number(v)); }
  void integer(const std::string& name, int64_t v) { add(name, std::to_string(v)); }
};

void add_percentiles(RowBuilder& b, const std::string& prefix, const Percentiles& p) {
  b.num(prefix + "_p50", p.p50);
  b.num(prefix + "_p90", p.p90);
  b.num(prefix + "_p99", p.p99);
  b.num(prefix + "_mean", p.mean);
}

void add_config(RowBuilder& b, Method m, const MethodConfig& c) {
  b.add("method", method_text(m));
  b.add("search", search_label(m, c));
  b.add("threshold", uses_ccv(m) ? exact_number(c.ccv.threshold) : "");
  b.add("l_eff", uses_ccv(m) ? std::to_string(c.ccv.l_eff) : "");
  b.add("fourier_m", uses_fourier(m) ? std::to_string(c.fourier.m) : "");
}

void add_summary(RowBuilder& b, const MethodSummary& s) {
  b.integer("requests", s.requests);
  b.integer("rejected", s.rejected);
  add_percentiles(b, "ttft_ms", s.ttft_ms);
  add_percentiles(b, "tbt_ms", s.tbt_ms);
  add_percentiles(b, "e2e_ms", s.e2e_ms);
  b.num("makespan_s", s.makespan_s);
  b.num("throughput_tokens_per_s", s.throughput_tokens_per_s);
  b.integer("peak_kv_bytes", s.peak_kv_bytes);
  b.num("mean_kv_bytes", s.mean_kv_bytes);
  b.integer("kv_capacity_bytes", s.kv_capacity_bytes);
  b.integer("peak_ccv_cache_bytes", s.peak_ccv_cache_bytes);
  b.num("hit_rate", s.hit_rate);
  b.integer("ccv_lookups", s.ccv_lookups);
  b.integer("ccv_hits", s.ccv_hits);
  b.integer("preemptions", s.preemptions);
}

// The main answers of one search (shared by the methods and sweep tables).
void add_answers(RowBuilder& b, const MethodPlan& mp) {
  const RateSearch& s = mp.search;
  b.num("base_rate_per_s", s.base_rate_per_s);
  b.num("max_rate_scale", s.max_rate_scale);
  b.num("max_rate_per_s", s.max_rate_per_s);
  b.add("rate_is_lower_bound", s.hit_scale_cap ? "true" : "false");
  b.add("slo_missed_at_any_rate", s.rate_independent ? "true" : "false");
  b.integer("gpus_for_target", mp.gpus_for_target);
  const RatePoint* at = best_or_first(s);
  b.add("answer_from", s.best ? "max_rate" : "scale_1_slo_missed");
  b.num("tokens_per_s_per_gpu", s.best ? s.best->summary.throughput_tokens_per_s : 0.0);
  b.num("hit_rate", at ? at->summary.hit_rate : 0.0);
  b.integer("rejected_requests", at ? at->summary.rejected : 0);
  b.integer("peak_kv_bytes", at ? at->summary.peak_kv_bytes : 0);
  b.integer("replay_kv_capacity_bytes", at ? at->summary.kv_capacity_bytes : 0);
  b.integer("headroom_bytes", at ? headroom_bytes(at->summary) : 0);
  b.num("headroom_fraction", at ? headroom_fraction(at->summary) : 0.0);
  b.num("ttft_ms_at_slo_percentile", at ? at->ttft_ms : 0.0);
  b.num("tbt_ms_at_slo_percentile", at ? at->tbt_ms : 0.0);
  const GpuBudget& g = mp.memory.budget;
  b.integer("gpu_memory_bytes", g.gpu_memory_bytes);
  b.integer("weight_bytes", g.weight_bytes);
  b.integer("ccv_layer_bytes", g.ccv_layer_bytes);
  b.integer("ccv_cache_bytes", g.ccv_cache_bytes);
  b.integer("kv_capacity_bytes", g.kv_capacity_bytes);
  b.integer("max_context_miss_tokens", mp.memory.max_context_miss);
  b.integer("max_context_hit_tokens", mp.memory.max_context_hit);
  b.integer("trace_mean_context_tokens", mp.at_trace_mean.context_tokens);
  b.integer("max_batch_miss_at_trace_mean", mp.at_trace_mean.max_batch_miss);
  b.integer("max_batch_hit_at_trace_mean", mp.at_trace_mean.max_batch_hit);
  b.integer("max_batch_at_p_at_trace_mean", mp.at_trace_mean.max_batch_at_p);
}

// Every distinct search once: the methods' own, then the sweep's other ones.
std::vector<const MethodPlan*> distinct_searches(const PlanResult& plan) {
  std::vector<const MethodPlan*> out;
  std::set<std::string> seen;
  auto add = [&](const MethodPlan& mp) {
    if (seen.insert(search_label(mp.method, mp.search.config)).second) out.push_back(&mp);
  };
  for (const auto& mp : plan.methods) add(mp);
  for (const auto& r : plan.sweep) add(r.plan);
  return out;
}

}  // namespace

std::vector<CsvTable> plan_csv_tables(const PlanResult& plan,
                                      const std::optional<CheckSummary>& check) {
  std::vector<CsvTable> out;
  {
    CsvTable t{"methods", {}, {}};
    for (const auto& mp : plan.methods) {
      RowBuilder b;
      add_config(b, mp.method, mp.search.config);
      add_answers(b, mp);
      t.header = b.header;
      t.rows.push_back(b.row);
    }
    out.push_back(t);
  }
  {
    CsvTable t{"memory", {}, {}};
    for (const auto& mp : plan.methods) {
      for (const auto& f : mp.memory.batches) {
        RowBuilder b;
        add_config(b, mp.method, mp.search.config);
        b.integer("context_tokens", f.context_tokens);
        b.integer("sequence_bytes_miss", f.sequence_bytes_miss);
        b.integer("sequence_bytes_hit", f.sequence_bytes_hit);
        b.integer("kv_capacity_bytes", mp.memory.budget.kv_capacity_bytes);
        b.integer("max_batch_miss", f.max_batch_miss);
        b.integer("max_batch_hit", f.max_batch_hit);
        b.num("p", mp.memory.p);
        b.integer("max_batch_at_p", f.max_batch_at_p);
        t.header = b.header;
        t.rows.push_back(b.row);
      }
    }
    out.push_back(t);
  }
  {
    CsvTable t{"runs", {}, {}};
    for (const MethodPlan* mp : distinct_searches(plan)) {
      int index = 0;
      for (const auto& p : mp->search.points) {
        RowBuilder b;
        add_config(b, mp->method, mp->search.config);
        b.integer("step", index++);
        b.num("rate_scale", p.rate_scale);
        b.num("offered_rate_per_s", p.offered_rate_per_s);
        b.num("ttft_ms_at_slo_percentile", p.ttft_ms);
        b.num("tbt_ms_at_slo_percentile", p.tbt_ms);
        b.add("meets_slo", p.meets_slo ? "true" : "false");
        add_summary(b, p.summary);
        t.header = b.header;
        t.rows.push_back(b.row);
      }
    }
    out.push_back(t);
  }
  {
    CsvTable t{"sweep", {}, {}};
    for (const auto& r : plan.sweep) {
      RowBuilder b;
      b.add("axis", std::string(sweep_axis_name(r.axis)));
      b.num("value", r.value);
      add_config(b, r.plan.method, r.plan.search.config);
      add_answers(b, r.plan);
      t.header = b.header;
      t.rows.push_back(b.row);
    }
    if (t.rows.empty()) {
      RowBuilder b;  // header only, so readers find the columns
      b.add("axis", "");
      b.num("value", 0);
      t.header = b.header;
    }
    out.push_back(t);
  }
  if (check) {
    CsvTable t{"fidelity",
               {"kind", "method", "step_kind", "steps", "median_rel_error", "p90_rel_error",
                "max_rel_error", "predicted_bytes", "allocated_bytes"},
               {}};
    for (const auto& l : check->latency)
      t.rows.push_back({"latency", l.method, l.step_kind, std::to_string(l.steps),
                        exact_number(l.median_rel_error), exact_number(l.p90_rel_error),
                        exact_number(l.max_rel_error), "", ""});
    for (const auto& m : check->memory)
      t.rows.push_back({"memory", m.method, "", "", "", "", "", std::to_string(m.predicted_bytes),
                        std::to_string(m.allocated_bytes)});
    out.push_back(t);
  }
  return out;
}

void write_csv(const CsvTable& table, std::ostream& out) {
  auto cell = [&](const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) {
      out << s;
      return;
    }
    out << '"';
    for (char c : s) {
      if (c == '"') out << '"';
      out << c;
    }
    out << '"';
  };
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i) out << ',';
      cell(cells[i]);
    }
    out << '\n';
  };
  line(table.header);
  for (const auto& r : table.rows) line(r);
}

namespace {

// ---- The report's sections ----

void answers_section(Document& d, const PlanResult& plan) {
  const PlanConfig& c = plan.config;
  const std::string pct(percentile_name(c.slo.percentile));
  d.heading(1, "Answers");
  std::ostringstream intro;
  intro
      << "One GPU with " << bytes_text(static_cast<double>(c.replay.gpu_memory_bytes)) << ", model "
      << c.replay.model.name << ", SLO at the " << pct
      << ": time to first token <= " << ms_text(c.slo.ttft_ms)
      << " and time between tokens <= " << ms_text(c.slo.tbt_ms)
      << ". Rates are the highest found by replaying the trace at scaled arrival rates (bisection "
         "to "
      << percent(c.limits.tolerance) << "); memory limits are exact byte counts.";
  if (c.target_rate_per_s > 0)
    intro << " GPUs for the target of " << readable(c.target_rate_per_s)
          << " requests/s = ceil(target / rate per GPU).";
  d.paragraph(intro.str());

  Table t;
  t.caption = "Request rate within the SLO, one GPU";
  t.header = {"method",           "max rate (req/s)", "x trace rate", "GPUs for target",
              "tokens/s per GPU", "p (hit rate)",     "TTFT " + pct,  "TBT " + pct};
  t.numeric = {false, true, true, true, true, true, true, true};
  for (const auto& mp : plan.methods) {
    const RateSearch& s = mp.search;
    const RatePoint* at = best_or_first(s);
    std::string rate = s.best ? readable(s.max_rate_per_s) : "SLO missed";
    if (s.hit_scale_cap) rate = ">= " + rate;
    t.rows.push_back({method_text(mp.method), rate, s.best ? readable(s.max_rate_scale) : "—",
                      c.target_rate_per_s > 0 ? gpus_text(mp.gpus_for_target) : "—",
                      s.best ? readable(s.best->summary.throughput_tokens_per_s) : "—",
                      at ? fmt("%.3f", at->summary.hit_rate) : "—", at ? ms_text(at->ttft_ms) : "—",
                      at ? ms_text(at->tbt_ms) : "—"});
  }
  d.table(t);

  Table m;
  const int64_t mean_ctx =
      plan.methods.empty() ? 0 : plan.methods.front().at_trace_mean.context_tokens;
  m.caption = "Memory, one GPU (at the max rate; batch at the trace's mean request length, " +
              grouped(mean_ctx) + " tokens)";
  m.header = {"method",
              "KV capacity",
              "peak KV",
              "headroom",
              "max batch (all miss)",
              "max batch (at p)",
              "longest context (miss)",
              "longest context (CCV hit)"};
  m.numeric = {false, true, true, true, true, true, true, true};
  for (const auto& mp : plan.methods) {
    const RatePoint* at = best_or_first(mp.search);
    m.rows.push_back({method_text(mp.method),
                      bytes_text(static_cast<double>(mp.memory.budget.kv_capacity_bytes)),
                      at ? bytes_text(static_cast<double>(at->summary.peak_kv_bytes)) : "—",
                      at ? percent(headroom_fraction(at->summary)) : "—",
                      grouped(mp.at_trace_mean.max_batch_miss),
                      grouped(mp.at_trace_mean.max_batch_at_p),
                      context_text(mp.memory.max_context_miss),
                      uses_ccv(mp.method) ? context_text(mp.memory.max_context_hit) : "—"});
  }
  d.table(m);

  // One sentence per method against the baseline, when it was planned.
  const MethodPlan* base = nullptr;
  for (const auto& mp : plan.methods)
    if (mp.method == Method::baseline) base = &mp;
  std::vector<std::string> lines;
  for (const auto& mp : plan.methods) {
    std::ostringstream s;
    s << method_text(mp.method) << ": ";
    if (!mp.search.best) {
      const RatePoint& low = mp.search.points.back();
      s << "misses the SLO even at " << readable(low.rate_scale) << "x the trace's rate ("
        << readable(low.offered_rate_per_s) << " req/s), where " << pct << " TTFT is "
        << ms_text(low.ttft_ms) << " and " << pct << " TBT " << ms_text(low.tbt_ms);
      if (mp.search.rate_independent)
        s << "; halving the rate changed neither, so no rate meets it (requests sharing a "
             "timestamp still arrive together, and each long prompt takes its own time)";
    } else {
      s << (mp.search.hit_scale_cap ? "at least " : "") << readable(mp.search.max_rate_per_s)
        << " req/s per GPU (" << readable(mp.search.max_rate_scale) << "x the trace's rate)";
      if (base && base != &mp && base->search.best && base->search.max_rate_per_s > 0)
        s << ", " << fmt("%.2f", mp.search.max_rate_per_s / base->search.max_rate_per_s)
          << "x baseline";
    }
    const MethodSummary& at = best_or_first(mp.search)->summary;
    if (at.rejected > 0)
      s << "; " << grouped(at.rejected) << " of the trace's requests can never fit this GPU's KV "
        << "pool and are not served (latency percentiles leave them out)";
    s << "; p = " << fmt("%.3f", at.hit_rate) << "; longest context "
      << context_text(mp.memory.max_context_miss) << " tokens";
    if (uses_ccv(mp.method))
      s << " (" << context_text(mp.memory.max_context_hit) << " on a CCV hit)";
    s << ".";
    lines.push_back(s.str());
  }
  d.bullets(lines);
}

void charts_section(Document& d, const PlanResult& plan) {
  const PlanConfig& c = plan.config;
  const std::string pct(percentile_name(c.slo.percentile));
  d.heading(1, "Charts");
  {
    BarChart b;
    b.title = "Highest request rate one GPU sustains within the SLO";
    b.y_label = "requests/s";
    b.series_names = {"req/s at " + pct + " SLO"};
    b.values.resize(1);
    for (const auto& mp : plan.methods) {
      b.categories.push_back(method_text(mp.method));
      b.category_colours.push_back(method_colour(mp.method));
      b.values[0].push_back(mp.search.max_rate_per_s);
    }
    d.figure({"rate",
              "Highest sustained request rate per GPU by method (bars at 0: SLO missed at every "
              "rate tried).",
              report::svg_bar_chart(b)});
  }
  for (int which = 0; which < 2; ++which) {
    LineChart l;
    l.title = which == 0 ? pct + " time to first token vs offered rate"
                         : pct + " time between tokens vs offered rate";
    l.x_label = "offered rate (requests/s)";
    l.y_label = which == 0 ? "TTFT (s)" : "TBT (ms)";
    const double unit = which == 0 ? 1e-3 : 1.0;  // TTFT in seconds, TBT in milliseconds
    l.log_x = true;
    l.log_y = true;
    for (const auto& mp : plan.methods) {
      std::vector<RatePoint> pts = mp.search.points;
      std::sort(pts.begin(), pts.end(),
                [](const RatePoint& a, const RatePoint& b) { return a.rate_scale < b.rate_scale; });
      Series s{method_text(mp.method), {}, {}, method_colour(mp.method)};
      for (const auto& p : pts) {
        s.x.push_back(p.offered_rate_per_s);
        s.y.push_back(unit * (which == 0 ? p.ttft_ms : p.tbt_ms));
      }
      l.series.push_back(s);
    }
    l.references.push_back({"SLO", unit * (which == 0 ? c.slo.ttft_ms : c.slo.tbt_ms)});
    d.figure({which == 0 ? "ttft" : "tbt",
              "Every replay of the rate search; the dashed line is the SLO. The highest rate "
              "under the line is the answer.",
              report::svg_line_chart(l)});
  }
  {
    BarChart b;
    b.title = "Longest context one sequence can hold on one GPU";
    b.y_label = "tokens";
    b.log_y = true;
    b.series_names = {"every layer holds KV (miss)", "CCV hit (L_eff layers hold KV)"};
    b.values.resize(2);
    for (const auto& mp : plan.methods) {
      b.categories.push_back(method_text(mp.method));
      b.values[0].push_back(static_cast<double>(mp.memory.max_context_miss));
      b.values[1].push_back(uses_ccv(mp.method) ? static_cast<double>(mp.memory.max_context_hit)
                                                : std::nan(""));
    }
    d.figure({"context",
              "Longest context by memory alone (exact bytes; no bar: no memory limit "
              "or not applicable).",
              report::svg_bar_chart(b)});
  }
  {
    LineChart l;
    l.title = "Largest batch that fits vs context length (every sequence a miss)";
    l.x_label = "context (tokens)";
    l.y_label = "sequences";
    l.log_x = true;
    l.log_y = true;
    for (const auto& mp : plan.methods) {
      Series s{method_text(mp.method), {}, {}, method_colour(mp.method)};
      for (const auto& f : mp.memory.batches) {
        s.x.push_back(static_cast<double>(f.context_tokens));
        s.y.push_back(static_cast<double>(f.max_batch_miss));
      }
      l.series.push_back(s);
    }
    d.figure({"batch",
              "Largest batch by memory alone; the scheduler's own cap (" +
                  std::to_string(c.replay.scheduler.max_batch) + ") is not applied here.",
              report::svg_line_chart(l)});
  }
}

void sweep_section(Document& d, const PlanResult& plan) {
  d.heading(1, "Sensitivity");
  if (plan.sweep.empty()) {
    d.paragraph("No sweep was run (--no-sweep, or no method uses the swept parameters).");
    return;
  }
  d.paragraph(
      "Each row repeats the rate search and the memory fit with one parameter changed "
      "and the others as given under Inputs.");
  const std::pair<SweepAxis, const char*> axes[] = {
      {SweepAxis::threshold, "CCV threshold"},
      {SweepAxis::l_eff, "L_eff (layers)"},
      {SweepAxis::fourier_m, "Fourier M (coefficients)"}};
  for (const auto& [axis, label] : axes) {
    std::map<Method, Series> by_method;
    std::map<Method, Series> p_by_method;
    Table t;
    t.caption = std::string("Sweep over ") + label;
    t.header = {"method",
                label,
                "max rate (req/s)",
                "tokens/s per GPU",
                "p",
                "headroom",
                "longest context (miss / hit)",
                "max batch @ mean ctx (miss)"};
    t.numeric = {false, true, true, true, true, true, true, true};
    for (const auto& r : plan.sweep) {
      if (r.axis != axis) continue;
      const MethodPlan& mp = r.plan;
      const RatePoint* at = best_or_first(mp.search);
      auto& s = by_method[mp.method];
      s.name = method_text(mp.method);
      s.colour = method_colour(mp.method);
      s.x.push_back(r.value);
      s.y.push_back(mp.search.max_rate_per_s);
      auto& ps = p_by_method[mp.method];
      ps.name = s.name;
      ps.colour = s.colour;
      ps.x.push_back(r.value);
      ps.y.push_back(at ? at->summary.hit_rate : std::nan(""));
      t.rows.push_back(
          {method_text(mp.method), readable(r.value),
           mp.search.best ? readable(mp.search.max_rate_per_s) : "SLO missed",
           mp.search.best ? readable(mp.search.best->summary.throughput_tokens_per_s) : "—",
           at ? fmt("%.3f", at->summary.hit_rate) : "—",
           at ? percent(headroom_fraction(at->summary)) : "—",
           context_text(mp.memory.max_context_miss) + " / " +
               context_text(mp.memory.max_context_hit),
           grouped(mp.at_trace_mean.max_batch_miss)});
    }
    if (t.rows.empty()) continue;
    LineChart l;
    l.title = std::string("Sustained rate vs ") + label;
    l.x_label = label;
    l.y_label = "requests/s per GPU";
    for (auto& [m, s] : by_method) l.series.push_back(s);
    d.figure({std::string("sweep-") + std::string(sweep_axis_name(axis)),
              std::string("Highest sustained rate as ") + label + " varies.",
              report::svg_line_chart(l)});
    if (axis == SweepAxis::threshold) {
      LineChart pl;
      pl.title = "Measured hit rate p vs CCV threshold";
      pl.x_label = label;
      pl.y_label = "p";
      for (auto& [m, s] : p_by_method) pl.series.push_back(s);
      d.figure({"sweep-p", "The CCV hit rate measured on the trace at the sustained rate.",
                report::svg_line_chart(pl)});
    }
    d.table(t);
  }
}

void memory_section(Document& d, const PlanResult& plan) {
  d.heading(1, "Memory on one GPU");
  Table budget;
  budget.caption = "Where one GPU's memory goes";
  budget.header = {"method",           "GPU memory", "weights", "CCV layer (W_c, b_c)",
                   "CCV cache budget", "KV capacity"};
  budget.numeric = {false, true, true, true, true, true};
  for (const auto& mp : plan.methods) {
    const GpuBudget& g = mp.memory.budget;
    budget.rows.push_back({method_text(mp.method),
                           bytes_text(static_cast<double>(g.gpu_memory_bytes)),
                           bytes_text(static_cast<double>(g.weight_bytes)),
                           bytes_text(static_cast<double>(g.ccv_layer_bytes)),
                           bytes_text(static_cast<double>(g.ccv_cache_bytes)),
                           bytes_text(static_cast<double>(g.kv_capacity_bytes))});
  }
  d.table(budget);
  Table t;
  t.caption = "Largest batch that fits, every sequence a miss (at the measured p in brackets)";
  t.header = {"context (tokens)"};
  t.numeric = {true};
  for (const auto& mp : plan.methods) {
    t.header.push_back(method_text(mp.method));
    t.numeric.push_back(true);
  }
  if (!plan.methods.empty()) {
    for (size_t i = 0; i < plan.methods.front().memory.batches.size(); ++i) {
      std::vector<std::string> row = {
          grouped(plan.methods.front().memory.batches[i].context_tokens)};
      for (const auto& mp : plan.methods) {
        const BatchFit& f = mp.memory.batches[i];
        std::string cell = grouped(f.max_batch_miss);
        if (uses_ccv(mp.method)) cell += " (" + grouped(f.max_batch_at_p) + ")";
        row.push_back(cell);
      }
      t.rows.push_back(row);
    }
  }
  d.table(t);
}

void inputs_section(Document& d, const PlanResult& plan, const ReportContext& ctx) {
  const PlanConfig& c = plan.config;
  const ModelShape& m = c.replay.model;
  const MethodConfig& mc = c.replay.method_config;
  d.heading(1, "Inputs");
  auto kv_table = [&](const std::string& caption,
                      const std::vector<std::pair<std::string, std::string>>& rows) {
    Table t;
    t.caption = caption;
    t.header = {"", "value"};
    for (const auto& [k, v] : rows) t.rows.push_back({k, v});
    d.table(t);
  };
  kv_table("Model", {{"name", m.name},
                     {"family", m.family},
                     {"layers", std::to_string(m.layers)},
                     {"hidden (d_model)", std::to_string(m.hidden)},
                     {"heads / KV heads x head dim", std::to_string(m.heads) + " / " +
                                                         std::to_string(m.kv_heads) + " x " +
                                                         std::to_string(m.head_dim)},
                     {"d1 (attention output width)", std::to_string(m.d1())},
                     {"MLP width", std::to_string(m.intermediate)},
                     {"vocabulary", std::to_string(m.vocab)},
                     {"dtype", std::string(dtype_name(m.dtype))},
                     {"weights", bytes_text(static_cast<double>(model_weight_bytes(m)))}});
  std::vector<std::pair<std::string, std::string>> cost = {{"cost model", plan.cost_model}};
  for (const auto& kv : ctx.cost_details) cost.push_back(kv);
  cost.push_back(
      {"GPU memory planned", bytes_text(static_cast<double>(c.replay.gpu_memory_bytes))});
  kv_table("Hardware and pricing", cost);
  const TraceStats& ts = plan.trace;
  const double n = static_cast<double>(std::max<int64_t>(1, ts.requests));
  kv_table(
      "Trace (the replayed part, at its own rate)",
      {{"path", ts.path},
       {"format", ts.format},
       {"requests replayed",
        grouped(ts.requests) + (c.replay.max_requests > 0
                                    ? " (first " + grouped(c.replay.max_requests) + " asked for)"
                                    : " (whole trace)")},
       {"records skipped", grouped(ts.skipped_records)},
       {"input tokens (total / mean)",
        grouped(ts.input_tokens) + " / " + readable(static_cast<double>(ts.input_tokens) / n)},
       {"output tokens (total / mean)",
        grouped(ts.output_tokens) + " / " + readable(static_cast<double>(ts.output_tokens) / n)},
       {"arrival span", readable(ts.duration_s) + " s"},
       {"request rate",
        readable(ts.duration_s > 0 ? static_cast<double>(ts.requests) / ts.duration_s : 0) +
            " requests/s"}});
  std::string methods;
  for (Method me : c.methods) methods += (methods.empty() ? "" : ", ") + method_text(me);
  auto join = [](const auto& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + exact_number(static_cast<double>(x));
    return s;
  };
  kv_table(
      "Parameters",
      {{"methods", methods},
       {"SLO", std::string(percentile_name(c.slo.percentile)) + " TTFT <= " +
                   ms_text(c.slo.ttft_ms) + ", " + std::string(percentile_name(c.slo.percentile)) +
                   " TBT <= " + ms_text(c.slo.tbt_ms)},
       {"target rate",
        c.target_rate_per_s > 0 ? readable(c.target_rate_per_s) + " requests/s" : "none"},
       {"Fourier", "M = " + std::to_string(mc.fourier.m) + " coefficients on " +
                       std::to_string(mc.fourier.resolve_dims(m.head_dim).size()) + " of " +
                       std::to_string(m.head_dim) + " head dims; sink " +
                       std::to_string(mc.fourier.sink_tokens) + ", window " +
                       std::to_string(mc.fourier.window_tokens) + " tokens exact"},
       {"CCV", "d2 = " + std::to_string(mc.ccv.resolved_d2(m)) + ", L_eff = " +
                   std::to_string(mc.ccv.l_eff) + ", threshold " + exact_number(mc.ccv.threshold) +
                   ", cache " + bytes_text(static_cast<double>(mc.ccv.budget_bytes)) + " (" +
                   std::string(eviction_name(mc.ccv.eviction)) + ")"},
       {"scheduler", "max batch " + std::to_string(c.replay.scheduler.max_batch) +
                         ", token budget " + std::to_string(c.replay.scheduler.token_budget) +
                         " per step, chunked prefill " +
                         (c.replay.scheduler.chunked_prefill ? "on" : "off")},
       {"rate search",
        "from 1x the trace's rate, doubling/halving to bracket, then bisection "
        "to " +
            percent(c.limits.tolerance) + "; " + std::to_string(plan.replays) + " replays in " +
            readable(plan.wall_s) + " s on " + std::to_string(c.jobs) + " threads"},
       {"sweep", c.run_sweep ? "threshold " + join(c.sweep.thresholds) + "; L_eff " +
                                   join(c.sweep.l_eff) + "; Fourier M " + join(c.sweep.fourier_m)
                             : "off"},
       {"generated", ctx.generated_at + " by kvscope " + ctx.kvscope_version},
       {"command", ctx.command_line}});
}

void assumptions_section(Document& d, const PlanResult& plan) {
  const PlanConfig& c = plan.config;
  d.heading(1, "Assumptions");
  d.bullets({
      "Latency is predicted, not measured: every step is priced by " + plan.cost_model +
          " with the full-layer model (QKV and O projections, MLP, norms, attention). The paper's "
          "model prices attention only (T_sa, T_l, T_cos); it leaves out the dense layers, which "
          "dominate decode steps, and kernel launch overheads.",
      "One GPU holds the whole model (no tensor or pipeline parallelism). GPUs for a target rate "
      "assume independent replicas and a balancer that splits the trace evenly, so each sees "
      "the same mix at target / GPUs requests/s.",
      "GPU memory is weights + KV cache + (CCV methods) the CCV layer and the CCV cache budget. "
      "Activations, the CUDA context, allocator fragmentation and framework workspaces are not "
      "counted: leave margin beyond the headroom shown.",
      "A CCV hit lets the remaining layers skip attention and hold no KV for that sequence; the "
      "hit probability p is measured on the trace from prefix-block similarity (DESIGN.md), not "
      "from model activations.",
      "Output quality is not modelled: neither the Fourier approximation (smaller M, more "
      "compressed dims) nor CCV reuse (lower thresholds) is charged for accuracy loss.",
      "The rate search scales inter-arrival times and keeps the request mix and order; it assumes "
      "the SLO holds below a rate and fails above it. " +
          std::string(c.replay.max_requests > 0
                          ? "Only the first " + grouped(c.replay.max_requests) +
                                " requests were replayed; a short prefix builds less queueing "
                                "than the full trace."
                          : "The whole trace was replayed."),
      "Arrivals are replayed at their recorded timestamps (scaled); requests sharing a "
      "timestamp arrive together at every rate. Traces with coarse timestamps (the Mooncake "
      "conversation trace: 12,031 requests on 1,180 distinct timestamps) keep bursts that no rate "
      "reduction removes, which "
      "raises TTFT percentiles at low load.",
      "The longest context is a memory bound only; it ignores the model's trained position "
      "limit.",
  });
}

void fidelity_section(Document& d, const ReportContext& ctx) {
  d.heading(1, "Fidelity");
  if (!ctx.check) {
    d.paragraph(
        "No kvscope check result was given (--check), so these predictions are not "
        "compared with measured kernels here.");
    return;
  }
  const CheckSummary& s = *ctx.check;
  d.paragraph("From " + s.path + ": model " + s.model + " on " + s.device + " (" + s.backend +
              " backend), " + s.date + ", first " + grouped(s.requests) + " requests of " +
              s.trace + ". Command: " + s.command +
              ". Targets: median error <= " + fmt("%g%%", 100 * kTargetMedianRelError) +
              ", p90 <= " + fmt("%g%%", 100 * kTargetP90RelError) + ".");
  Table t;
  t.caption = "Step latency, |predicted - measured| / measured";
  t.header = {"method", "step kind", "steps", "median", "p90", "max"};
  t.numeric = {false, false, true, true, true, true};
  for (const auto& l : s.latency)
    t.rows.push_back({l.method, l.step_kind, grouped(l.steps), percent(l.median_rel_error),
                      percent(l.p90_rel_error), percent(l.max_rel_error)});
  d.table(t);
  if (!s.memory.empty()) {
    Table m;
    m.caption = "KV memory, predicted vs allocated";
    m.header = {"method", "predicted", "allocated", "difference (bytes)"};
    m.numeric = {false, true, true, true};
    for (const auto& r : s.memory)
      m.rows.push_back({r.method, grouped(r.predicted_bytes), grouped(r.allocated_bytes),
                        grouped(r.predicted_bytes - r.allocated_bytes)});
    d.table(m);
  }
}

}  // namespace

report::Document plan_document(const PlanResult& plan, const ReportContext& ctx,
                               const std::vector<std::string>& csv_files) {
  Document d;
  d.title = "kvscope capacity plan: " + plan.config.replay.model.name + " on " +
            (ctx.cost_details.empty() ? plan.cost_model : ctx.cost_details.front().second);
  answers_section(d, plan);
  charts_section(d, plan);
  memory_section(d, plan);
  sweep_section(d, plan);
  inputs_section(d, plan, ctx);
  assumptions_section(d, plan);
  fidelity_section(d, ctx);
  d.heading(1, "Data");
  std::vector<std::string> files = csv_files;
  d.paragraph("Every number above, in full precision, is in these CSV files beside the report:");
  d.bullets(files);
  return d;
}

}  // namespace kvscope
