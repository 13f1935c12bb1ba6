#include "model/methods.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

#include "model/error.h"
#include "model/kv_format.h"
#include "model/shape.h"

namespace kvscope {

std::string_view method_name(Method m) {
  const KvFormatInfo& f = kv_format_info(m);
  return m.with_ccv ? f.ccv_name : f.method_name;
}

std::optional<Method> parse_method(std::string_view s) {
  if (s == "fourier+ccv") return Method::fourier_ccv;
  for (Method m : all_methods())
    if (method_name(m) == s) return m;
  return std::nullopt;
}

const std::vector<Method>& all_methods() {
  static const std::vector<Method> all = [] {
    std::vector<Method> v;
    const auto formats = kv_format_registry().size();
    for (bool ccv : {false, true})
      for (size_t f = 0; f < formats; ++f) v.push_back(Method{static_cast<uint8_t>(f), ccv});
    return v;
  }();
  return all;
}

size_t method_index(Method m) {
  const auto& all = all_methods();
  const auto it = std::find(all.begin(), all.end(), m);
  if (it == all.end()) throw std::logic_error("method_index: an unregistered KV format");
  return static_cast<size_t>(it - all.begin());
}

std::vector<int64_t> FourierConfig::resolve_dims(int64_t head_dim) const {
  validate(head_dim);
  std::vector<int64_t> dims = compressed_dims;
  if (dims.empty()) {
    const int64_t n = compressed_count < 0 ? head_dim / 2 : compressed_count;
    for (int64_t d = 0; d < n; ++d) dims.push_back(d);
  }
  std::sort(dims.begin(), dims.end());
  return dims;
}

int64_t FourierConfig::resolved_count(int64_t head_dim) const {
  if (!compressed_dims.empty()) return static_cast<int64_t>(resolve_dims(head_dim).size());
  validate(head_dim);
  return compressed_count < 0 ? head_dim / 2 : compressed_count;
}

void FourierConfig::validate(int64_t head_dim) const {
  const std::string src = "fourier config";
  if (m <= 0) throw InputError(src, "--fourier-m", "must be positive, got " + std::to_string(m));
  if (sink_tokens < 0) throw InputError(src, "--fourier-sink", "must not be negative");
  if (window_tokens < 0) throw InputError(src, "--fourier-window", "must not be negative");
  if (!compressed_dims.empty()) {
    std::vector<int64_t> d = compressed_dims;
    std::sort(d.begin(), d.end());
    if (std::adjacent_find(d.begin(), d.end()) != d.end())
      throw InputError(src, "--fourier-dims", "a dimension is listed twice");
    if (d.front() < 0 || d.back() >= head_dim)
      throw InputError(src, "--fourier-dims",
                       "dimensions must lie in [0, " + std::to_string(head_dim) + ")");
  } else if (compressed_count > head_dim) {
    throw InputError(src, "--fourier-dims",
                     std::to_string(compressed_count) + " compressed dims exceed head_dim " +
                         std::to_string(head_dim));
  }
}

std::string_view eviction_name(Eviction e) {
  switch (e) {
    case Eviction::lru:
      return "lru";
    case Eviction::lfu:
      return "lfu";
    case Eviction::ttl:
      return "ttl";
  }
  return "?";
}

std::optional<Eviction> parse_eviction(std::string_view s) {
  if (s == "lru") return Eviction::lru;
  if (s == "lfu") return Eviction::lfu;
  if (s == "ttl") return Eviction::ttl;
  return std::nullopt;
}

int64_t CcvConfig::resolved_d2(const ModelShape& shape) const {
  return d2 < 0 ? shape.d1() / 2 : d2;
}

void CcvConfig::validate(const ModelShape& shape) const {
  const std::string src = "ccv config";
  if (d2 == 0 || d2 < -1) throw InputError(src, "--d2", "must be positive");
  if (l_eff < 0 || l_eff > shape.layers)
    throw InputError(src, "--l-eff",
                     "must lie in [0, " + std::to_string(shape.layers) + "] for " + shape.name);
  if (!(threshold > 0.0 && threshold <= 1.0))
    throw InputError(src, "--threshold", "must lie in (0, 1]");
  if (budget_bytes < 0) throw InputError(src, "--ccv-budget", "must not be negative");
  if (!(ttl_s > 0.0)) throw InputError(src, "--ccv-ttl", "must be positive");
}

std::optional<double> parse_threshold(std::string_view s) {
  if (s == "aggressive") return 0.7;
  if (s == "balanced") return 0.8;
  if (s == "conservative") return 0.9;
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !(v > 0.0 && v <= 1.0)) return std::nullopt;
  return v;
}

}  // namespace kvscope
