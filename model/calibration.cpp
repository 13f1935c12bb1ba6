#include "model/calibration.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <sstream>

#include <Eigen/Dense>
#include <nlohmann/json.hpp>

#include "model/error.h"
#include "model/hardware.h"

namespace kvscope {
namespace {

using nlohmann::json;

const json& need(const json& obj, const std::string& key, const std::string& source,
                 const std::string& path) {
  if (!obj.is_object() || !obj.contains(key)) throw InputError(source, path + key, "missing");
  return obj.at(key);
}

std::string need_string(const json& obj, const std::string& key, const std::string& source,
                        const std::string& path) {
  const json& v = need(obj, key, source, path);
  if (!v.is_string()) throw InputError(source, path + key, "must be a string");
  return v.get<std::string>();
}

double need_positive(const json& obj, const std::string& key, const std::string& source,
                     const std::string& path) {
  const json& v = need(obj, key, source, path);
  if (!v.is_number() || !(v.get<double>() > 0) || !std::isfinite(v.get<double>()))
    throw InputError(source, path + key, "must be a positive number");
  return v.get<double>();
}

double unit_to_ms(const std::string& unit, const std::string& source, const std::string& field) {
  if (unit == "ns") return 1e-6;
  if (unit == "us") return 1e-3;
  if (unit == "ms") return 1.0;
  if (unit == "s") return 1e3;
  throw InputError(source, field, "unknown time unit '" + unit + "' (ns, us, ms, s)");
}

// "family/axis:value/.../min_time:0.050/manual_time" -> family and integer axes.
ProfileRow parse_name(const std::string& name, const std::string& source,
                      const std::string& field) {
  ProfileRow r;
  r.name = name;
  std::stringstream in(name);
  std::string part;
  std::getline(in, r.family, '/');
  if (r.family.empty()) throw InputError(source, field, "benchmark name is empty");
  while (std::getline(in, part, '/')) {
    const auto colon = part.find(':');
    if (colon == std::string::npos) continue;  // manual_time, real_time, threads...
    const std::string key = part.substr(0, colon), value = part.substr(colon + 1);
    if (key == "min_time" || key == "min_warmup_time" || key == "iterations" || key == "repeats" ||
        key == "threads")
      continue;
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != value.size() || value.empty())
      throw InputError(source, field, "axis '" + key + "' of '" + name + "' is not an integer");
    r.args[key] = v;
  }
  return r;
}

int64_t arg(const CalibrationProfile& p, const ProfileRow& r, const std::string& key) {
  const auto it = r.args.find(key);
  if (it == r.args.end())
    throw InputError(p.source, "benchmarks." + r.name,
                     "family " + r.family + " needs axis '" + key + "'");
  return it->second;
}

DType dtype_arg(const CalibrationProfile& p, const ProfileRow& r) {
  return arg(p, r, "bf16") ? DType::bf16 : DType::f32;
}

AttentionShape attention_shape(const CalibrationProfile& p, const ProfileRow& r, bool prefill) {
  AttentionShape a;
  a.dtype = dtype_arg(p, r);
  a.batch = arg(p, r, "batch");
  a.q_heads = arg(p, r, "q_heads");
  a.kv_heads = arg(p, r, "kv_heads");
  a.head_dim = arg(p, r, "head_dim");
  a.kv_len = arg(p, r, "tokens");
  a.q_len = prefill ? a.kv_len : 1;
  a.causal = true;
  return a;
}

}  // namespace

CalibrationProfile parse_profile(const json& j, const std::string& source) {
  CalibrationProfile p;
  p.source = source;
  if (!j.is_object()) throw InputError(source, "", "a calibration profile is a JSON object");
  const json& d = need(j, "device", source, "");
  p.device.backend = need_string(d, "backend", source, "device.");
  if (p.device.backend != "cpu" && p.device.backend != "cuda")
    throw InputError(source, "device.backend", "must be \"cpu\" or \"cuda\"");
  p.device.name = need_string(d, "name", source, "device.");
  p.device.driver = d.value("driver", std::string());
  p.device.date = need_string(d, "date", source, "device.");
  p.device.multiprocessors = d.value("multiprocessors", int64_t{0});
  p.device.memory_bytes = d.value("memory_bytes", int64_t{0});
  p.device.copy_bytes_per_s = need_positive(d, "copy_bytes_per_s", source, "device.");
  p.device.gemm_flops_per_s_bf16 = need_positive(d, "gemm_flops_per_s_bf16", source, "device.");
  p.device.gemm_flops_per_s_f32 = need_positive(d, "gemm_flops_per_s_f32", source, "device.");
  if (j.contains("kvscope") && j["kvscope"].is_object()) {
    p.fourier_sink = j["kvscope"].value("fourier_sink", int64_t{4});
    p.fourier_window = j["kvscope"].value("fourier_window", int64_t{64});
  }
  const json& rows = need(j, "benchmarks", source, "");
  if (!rows.is_array()) throw InputError(source, "benchmarks", "must be an array");
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& b = rows[i];
    const std::string where = "benchmarks[" + std::to_string(i) + "].";
    if (b.value("run_type", std::string("iteration")) != "iteration") continue;
    if (b.value("error_occurred", false) || b.value("skipped", false)) continue;
    ProfileRow r = parse_name(need_string(b, "name", source, where), source, where + "name");
    const double t = need_positive(b, "real_time", source, where);
    r.time_ms =
        t * unit_to_ms(need_string(b, "time_unit", source, where), source, where + "time_unit");
    p.rows.push_back(std::move(r));
  }
  if (p.rows.empty()) throw InputError(source, "benchmarks", "no measured rows");
  return p;
}

CalibrationProfile load_profile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path, "--profile", "cannot open the calibration profile");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::parse_error& e) {
    throw InputError(path, "", std::string("not valid JSON: ") + e.what());
  }
  return parse_profile(j, path);
}

std::optional<Work> row_work(const CalibrationProfile& p, const ProfileRow& r) {
  const std::string& f = r.family;
  // Step families (kernels/bench/step_bench.h): the same work counts, with q_len an axis.
  if (f == "step_copy") return Work{0.0, 2.0 * static_cast<double>(arg(p, r, "kib") << 10)};
  if (f == "step_gemm")
    return gemm_work(GemmShape{arg(p, r, "rows"), arg(p, r, "out"), arg(p, r, "in"),
                               arg(p, r, "bias") != 0, dtype_arg(p, r)});
  if (f == "step_attention" || f == "step_fourier_attention") {
    AttentionShape a = attention_shape(p, r, false);
    a.q_len = arg(p, r, "q_len");
    if (f == "step_attention") return attention_work(a);
    return fourier_attention_work(FourierAttentionShape{a, arg(p, r, "cdims"), arg(p, r, "m"),
                                                        p.fourier_sink + p.fourier_window});
  }
  if (f == "step_fourier_compress" || f == "step_fourier_reconstruct")
    return fourier_compress_work(FourierCompressShape{
        arg(p, r, "heads"), arg(p, r, "tokens"), arg(p, r, "head_dim"), arg(p, r, "cdims"),
        arg(p, r, "m"), p.fourier_sink + p.fourier_window, dtype_arg(p, r)});
  if (f == "step_cosine_rows")
    return cosine_work(arg(p, r, "rows"), arg(p, r, "dim"), dtype_arg(p, r));
  if (f == "copy") return Work{0.0, 2.0 * static_cast<double>(arg(p, r, "mib") << 20)};
  if (f == "attention_decode" || f == "attention_prefill")
    return attention_work(attention_shape(p, r, f == "attention_prefill"));
  if (f == "fourier_attention_decode" || f == "fourier_attention_prefill")
    return fourier_attention_work(FourierAttentionShape{
        attention_shape(p, r, f == "fourier_attention_prefill"), arg(p, r, "cdims"), arg(p, r, "m"),
        p.fourier_sink + p.fourier_window});
  if (f == "gemm")
    return gemm_work(GemmShape{arg(p, r, "rows"), arg(p, r, "out"), arg(p, r, "in"),
                               arg(p, r, "bias") != 0, dtype_arg(p, r)});
  if (f == "cosine_rows" || f == "cosine_whole")
    return cosine_work(arg(p, r, "rows"), arg(p, r, "dim"), dtype_arg(p, r));
  if (f == "fourier_compress" || f == "fourier_reconstruct")
    return fourier_compress_work(FourierCompressShape{
        arg(p, r, "heads"), arg(p, r, "tokens"), arg(p, r, "head_dim"), arg(p, r, "cdims"),
        arg(p, r, "m"), p.fourier_sink + p.fourier_window, dtype_arg(p, r)});
  return std::nullopt;
}

bool step_axes(const CalibrationProfile& p, const ProfileRow& r, StepAxes& out) {
  const std::string& f = r.family;
  auto a = [&](const char* k) { return arg(p, r, k); };
  const int64_t exact = p.fourier_sink + p.fourier_window;
  out = StepAxes{};
  if (f == "step_copy") {
    out.inner = a("kib");
  } else if (f == "step_gemm") {
    out.key = {a("bf16"), a("out"), a("in"), a("bias")};
    out.inner = a("rows");
  } else if (f == "step_attention") {
    out.key = {a("bf16"), a("batch"), a("q_heads"), a("kv_heads"), a("head_dim")};
    out.outer = a("q_len");
    out.inner = a("tokens");
  } else if (f == "step_fourier_attention") {
    out.key = {a("bf16"),     a("batch"), a("q_heads"), a("kv_heads"),
               a("head_dim"), a("cdims"), a("m"),       exact};
    out.outer = a("q_len");
    out.inner = a("tokens");
  } else if (f == "step_fourier_compress" || f == "step_fourier_reconstruct") {
    out.key = {a("bf16"), a("heads"), a("head_dim"), a("cdims"), a("m"), exact};
    out.inner = a("tokens");
  } else if (f == "step_cosine_rows") {
    out.key = {a("bf16"), a("dim")};
    out.inner = a("rows");
  } else {
    return false;
  }
  return true;
}

namespace {
// Linear interpolation of y over log(x) in sorted (x, y) points; the end values outside them.
double interp_log(const std::vector<std::pair<int64_t, double>>& pts, int64_t x) {
  if (pts.empty()) return 0.0;
  if (x <= pts.front().first) return pts.front().second;
  if (x >= pts.back().first) return pts.back().second;
  const auto hi = std::lower_bound(pts.begin(), pts.end(), x,
                                   [](const auto& p, int64_t v) { return p.first < v; });
  if (hi->first == x) return hi->second;
  const auto lo = hi - 1;
  const double t = std::log(static_cast<double>(x) / static_cast<double>(lo->first)) /
                   std::log(static_cast<double>(hi->first) / static_cast<double>(lo->first));
  return lo->second + t * (hi->second - lo->second);
}
}  // namespace

double StepGrid::log_ratio(int64_t outer, int64_t inner) const {
  if (points.empty()) return 0.0;
  auto hi = points.lower_bound(outer);
  if (hi == points.end()) return interp_log(std::prev(hi)->second, inner);
  if (hi->first == outer || hi == points.begin()) return interp_log(hi->second, inner);
  const auto lo = std::prev(hi);
  const double a = interp_log(lo->second, inner), b = interp_log(hi->second, inner);
  // outer values are >= 1 for 2-D tables (q_len); 1-D tables have the single outer value 0.
  const double t = std::log(static_cast<double>(outer) / static_cast<double>(lo->first)) /
                   std::log(static_cast<double>(hi->first) / static_cast<double>(lo->first));
  return a + t * (b - a);
}

double OpFit::predict_ms(const Work& w) const {
  return overhead_ms + (flops_per_ms > 0 ? w.flops / flops_per_ms : 0.0) +
         (bytes_per_ms > 0 ? w.bytes / bytes_per_ms : 0.0);
}

OpFit fit_family(const std::string& family, const std::vector<Work>& work,
                 const std::vector<double>& time_ms) {
  const Eigen::Index n = static_cast<Eigen::Index>(work.size());
  // Relative error: divide each row (and its target) by the measured time.
  Eigen::MatrixXd a(n, 3);
  for (Eigen::Index i = 0; i < n; ++i) {
    const double t = time_ms[static_cast<size_t>(i)];
    a(i, 0) = 1.0 / t;
    a(i, 1) = work[static_cast<size_t>(i)].flops / t;
    a(i, 2) = work[static_cast<size_t>(i)].bytes / t;
  }
  const Eigen::VectorXd ones = Eigen::VectorXd::Ones(n);
  // Columns scaled to unit norm so FLOPs (~1e12) and the constant (~1) condition alike.
  Eigen::Vector3d scale;
  for (int c = 0; c < 3; ++c) scale(c) = a.col(c).norm() > 0 ? a.col(c).norm() : 1.0;
  Eigen::Vector3d best = Eigen::Vector3d::Zero();
  double best_res = ones.squaredNorm();  // all-zero model: every residual is -1
  for (int mask = 1; mask < 8; ++mask) {
    std::vector<int> cols;
    for (int c = 0; c < 3; ++c)
      if (mask & (1 << c) && a.col(c).norm() > 0) cols.push_back(c);
    if (cols.empty() || static_cast<Eigen::Index>(cols.size()) > n) continue;
    Eigen::MatrixXd sub(n, static_cast<Eigen::Index>(cols.size()));
    for (size_t k = 0; k < cols.size(); ++k)
      sub.col(static_cast<Eigen::Index>(k)) = a.col(cols[k]) / scale(cols[k]);
    const Eigen::VectorXd x = sub.colPivHouseholderQr().solve(ones);
    if ((x.array() < 0).any() || !x.allFinite()) continue;
    const double res = (sub * x - ones).squaredNorm();
    if (res < best_res) {
      best_res = res;
      best.setZero();
      for (size_t k = 0; k < cols.size(); ++k)
        best(cols[k]) = x(static_cast<Eigen::Index>(k)) / scale(cols[k]);
    }
  }
  OpFit f;
  f.family = family;
  f.rows = n;
  f.overhead_ms = best(0);
  f.flops_per_ms = best(1) > 0 ? 1.0 / best(1) : 0.0;
  f.bytes_per_ms = best(2) > 0 ? 1.0 / best(2) : 0.0;
  double sq = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    const double t = time_ms[static_cast<size_t>(i)];
    const double rel = (f.predict_ms(work[static_cast<size_t>(i)]) - t) / t;
    sq += rel * rel;
    f.max_rel_residual = std::max(f.max_rel_residual, std::abs(rel));
  }
  f.rms_rel_residual = n > 0 ? std::sqrt(sq / static_cast<double>(n)) : 0.0;
  return f;
}

const std::vector<std::string>& CalibratedCostModel::required_families() {
  static const std::vector<std::string> f = {"attention_prefill",
                                             "attention_decode",
                                             "fourier_attention_decode",
                                             "gemm",
                                             "cosine_rows",
                                             "copy"};
  return f;
}

CalibratedCostModel::CalibratedCostModel(const CalibrationProfile& p)
    : source_(p.source), device_(p.device) {
  std::map<std::string, std::pair<std::vector<Work>, std::vector<double>>> by_family;
  for (const ProfileRow& r : p.rows) {
    const std::optional<Work> w = row_work(p, r);
    if (!w) continue;
    by_family[r.family].first.push_back(*w);
    by_family[r.family].second.push_back(r.time_ms);
  }
  for (const std::string& f : required_families()) {
    const auto it = by_family.find(f);
    const size_t n = it == by_family.end() ? 0 : it->second.second.size();
    if (n < 3)
      throw InputError(p.source, "benchmarks",
                       "needs at least 3 measured rows of family '" + f + "' to fit, found " +
                           std::to_string(n) + " (run `kvscope calibrate` without --filter)");
  }
  for (const auto& [family, data] : by_family)
    fits_.emplace(family, fit_family(family, data.first, data.second));

  // Step tables: each measured point's ratio to its family's fit, by fixed axes.
  for (const ProfileRow& r : p.rows) {
    StepAxes ax;
    if (!step_axes(p, r, ax)) continue;
    StepTable& t = steps_[r.family];
    t.fit = fits_.at(r.family);
    const double base = std::max(t.fit.predict_ms(*row_work(p, r)), 1e-12);
    auto& pts = t.grids[ax.key].points[ax.outer];
    pts.emplace_back(ax.inner, std::log(r.time_ms / base));
    ++t.rows;
  }
  for (auto& [family, t] : steps_)
    for (auto& [key, grid] : t.grids)
      for (auto& [outer, pts] : grid.points) {
        // Repeated measurements of one point: their mean log ratio.
        std::sort(pts.begin(), pts.end());
        std::vector<std::pair<int64_t, double>> merged;
        for (size_t i = 0; i < pts.size();) {
          size_t j = i;
          double sum = 0;
          for (; j < pts.size() && pts[j].first == pts[i].first; ++j) sum += pts[j].second;
          merged.emplace_back(pts[i].first, sum / static_cast<double>(j - i));
          i = j;
        }
        pts = std::move(merged);
      }
}

double CalibratedCostModel::step_price(const std::string& family, const std::vector<int64_t>& key,
                                       int64_t outer, int64_t inner, const Work& w) const {
  const auto t = steps_.find(family);
  if (t == steps_.end()) return -1.0;
  const auto g = t->second.grids.find(key);
  if (g == t->second.grids.end()) return -1.0;
  const double base = std::max(t->second.fit.predict_ms(w), 1e-12);
  return base * std::exp(g->second.log_ratio(outer, inner));
}

const OpFit& CalibratedCostModel::fit(const std::string& family) const {
  const auto it = fits_.find(family);
  if (it == fits_.end())
    throw InputError(source_, "benchmarks", "no fit for family '" + family + "'");
  return it->second;
}

std::string CalibratedCostModel::describe() const {
  double worst = 0;
  for (const std::string& f : required_families()) worst = std::max(worst, fit(f).rms_rel_residual);
  std::ostringstream s;
  s << "calibrated(" << device_.name << " [" << device_.backend << "], " << source_ << ", "
    << device_.date << "; worst fit rms residual " << std::fixed << std::setprecision(1)
    << 100.0 * worst << "%)";
  return s.str();
}

namespace {
int64_t bf16_flag(DType t) { return t == DType::bf16 ? 1 : 0; }
}  // namespace

double CalibratedCostModel::attention_ms(const AttentionShape& a) const {
  const Work w = attention_work(a);
  const double step =
      step_price("step_attention", {bf16_flag(a.dtype), a.batch, a.q_heads, a.kv_heads, a.head_dim},
                 a.q_len, a.kv_len, w);
  if (step >= 0) return step;
  return fit(a.q_len == 1 ? "attention_decode" : "attention_prefill").predict_ms(w);
}

double CalibratedCostModel::fourier_attention_ms(const FourierAttentionShape& f) const {
  const Work w = fourier_attention_work(f);
  const AttentionShape& a = f.attn;
  const double step = step_price("step_fourier_attention",
                                 {bf16_flag(a.dtype), a.batch, a.q_heads, a.kv_heads, a.head_dim,
                                  f.compressed_dims, f.m, f.exact_tokens},
                                 a.q_len, a.kv_len, w);
  if (step >= 0) return step;
  const bool prefill = f.attn.q_len > 1 && fits_.count("fourier_attention_prefill");
  return fit(prefill ? "fourier_attention_prefill" : "fourier_attention_decode").predict_ms(w);
}

double CalibratedCostModel::gemm_ms(const GemmShape& g) const {
  const Work w = gemm_work(g);
  const double step =
      step_price("step_gemm", {bf16_flag(g.dtype), g.out, g.in, g.bias ? 1 : 0}, 0, g.rows, w);
  return step >= 0 ? step : fit("gemm").predict_ms(w);
}

double CalibratedCostModel::cosine_ms(int64_t rows, int64_t dim, DType t) const {
  const Work w = cosine_work(rows, dim, t);
  const double step = step_price("step_cosine_rows", {bf16_flag(t), dim}, 0, rows, w);
  return step >= 0 ? step : fit("cosine_rows").predict_ms(w);
}

double CalibratedCostModel::elementwise_ms(double bytes) const {
  const Work w{0.0, bytes};
  // step_copy's axis is the copied size in KiB; a copy moves twice that (read and write).
  const auto kib = std::max<int64_t>(1, std::llround(bytes / 2048.0));
  const double step = step_price("step_copy", {}, 0, kib, w);
  return step >= 0 ? step : fit("copy").predict_ms(w);
}

double CalibratedCostModel::fourier_compress_ms(const FourierCompressShape& s) const {
  const Work w = fourier_compress_work(s);
  const double step =
      step_price("step_fourier_compress",
                 {bf16_flag(s.dtype), s.heads, s.head_dim, s.compressed_dims, s.m, s.exact_tokens},
                 0, s.tokens, w);
  if (step >= 0) return step;
  if (fits_.count("fourier_compress")) return fit("fourier_compress").predict_ms(w);
  return OpCostModel::fourier_compress_ms(s);
}

double CalibratedCostModel::fourier_reconstruct_ms(const FourierCompressShape& s) const {
  const Work w = fourier_compress_work(s);
  const double step =
      step_price("step_fourier_reconstruct",
                 {bf16_flag(s.dtype), s.heads, s.head_dim, s.compressed_dims, s.m, s.exact_tokens},
                 0, s.tokens, w);
  if (step >= 0) return step;
  if (fits_.count("fourier_reconstruct")) return fit("fourier_reconstruct").predict_ms(w);
  return OpCostModel::fourier_reconstruct_ms(s);
}

std::string CalibratedCostModel::fit_report() const {
  std::ostringstream s;
  s << "fits of " << source_ << " (" << device_.name << ", " << device_.date
    << "): time = overhead + FLOPs / rate + bytes / rate\n";
  s << std::left << std::setw(28) << "family" << std::right << std::setw(6) << "rows"
    << std::setw(14) << "overhead ms" << std::setw(14) << "GFLOP/s" << std::setw(12) << "GB/s"
    << std::setw(10) << "rms res" << std::setw(10) << "max res"
    << "\n";
  auto rate = [](double per_ms) {
    std::ostringstream r;
    if (per_ms > 0)
      r << std::setprecision(4) << per_ms * 1e3 / 1e9;
    else
      r << "-";
    return r.str();
  };
  for (const auto& [family, f] : fits_) {
    s << std::left << std::setw(28) << family << std::right << std::setw(6) << f.rows
      << std::setw(14) << std::setprecision(4) << std::fixed << f.overhead_ms << std::setw(14)
      << rate(f.flops_per_ms) << std::setw(12) << rate(f.bytes_per_ms) << std::setw(9)
      << std::setprecision(1) << 100.0 * f.rms_rel_residual << "%" << std::setw(9)
      << 100.0 * f.max_rel_residual << "%\n";
  }
  s << "(-: that term did not help the fit and is left out; residuals relative to measured)\n";
  if (!steps_.empty()) {
    s << "step tables (measured at the model's shapes; priced as fit x interpolated ratio):\n";
    for (const auto& [family, t] : steps_)
      s << "  " << std::left << std::setw(26) << family << std::right << std::setw(6) << t.rows
        << " points at " << t.grids.size() << " shape(s)\n";
  }
  return s.str();
}

void check_profile_matches(const CalibrationProfile& p, const std::string& preset) {
  const HardwareProfile hw = hardware_preset(preset);  // throws for an unknown name
  std::string lower = p.device.name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  bool ok = false;
  if (hw.name == "cpu-2core")
    ok = p.device.backend == "cpu";
  else if (hw.name == "h100-sxm")
    ok = p.device.backend == "cuda" && lower.find("h100") != std::string::npos;
  else if (hw.name == "h200")
    ok = p.device.backend == "cuda" && lower.find("h200") != std::string::npos;
  if (!ok)
    throw InputError(p.source, "--gpu",
                     "the profile was measured on '" + p.device.name + "' (" + p.device.backend +
                         " backend), not on " + preset +
                         "; drop --gpu or give a profile measured there");
}

}  // namespace kvscope
