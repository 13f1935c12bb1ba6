#include "kernels/bench/timeline_summary.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <set>
#include <stdexcept>

namespace kvscope::kernels::bench {
namespace {

constexpr int64_t kFields = 4;  // start, waited, end, SM

Spread spread_of(std::vector<double> v) {
  Spread s;
  s.count = static_cast<int64_t>(v.size());
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.first = v.front();
  s.median = v[(v.size() - 1) / 2];
  s.last = v.back();
  return s;
}

std::string cell(const Spread& s) {
  if (s.count == 0) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f / %.1f / %.1f", s.first, s.median, s.last);
  return buf;
}

std::string cell2(const Spread& s) {
  if (s.count == 0) return "-";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f / %.1f", s.median, s.last);
  return buf;
}

// The stamps of kernel k, block b, field f, checked: the buffer's size, and no block ending
// before it starts; and the first start stamp of any block, which the times count from.
struct Stamps {
  const std::vector<uint64_t>& v;
  int64_t blocks;
  uint64_t t0 = std::numeric_limits<uint64_t>::max();
  Stamps(const std::vector<uint64_t>& stamps, int64_t blocks_per_kernel,
         const std::vector<std::string>& names)
      : v(stamps), blocks(blocks_per_kernel) {
    const size_t kernels = names.size();
    if (blocks <= 0 || v.size() != kernels * static_cast<size_t>(blocks * kFields))
      throw std::invalid_argument("timeline stamps: " + std::to_string(v.size()) +
                                  " stamps, expected " + std::to_string(kernels) + " kernels x " +
                                  std::to_string(blocks) + " blocks x 4");
    for (size_t i = 0; i < v.size(); i += kFields) {
      if (v[i] == 0) continue;
      t0 = std::min(t0, v[i]);
      if (v[i + 2] != 0 && v[i + 2] < v[i]) {
        const auto block = static_cast<int64_t>(i / kFields);
        throw std::invalid_argument("timeline stamps: " + names[size_t(block / blocks)] +
                                    " block " + std::to_string(block % blocks) +
                                    " ends before it starts");
      }
    }
  }
  uint64_t at(int64_t k, int64_t b, int64_t f) const {
    return v[static_cast<size_t>((k * blocks + b) * kFields + f)];
  }
  double us(uint64_t t) const { return static_cast<double>(t - t0) / 1e3; }
};

}  // namespace

std::vector<KernelTimeline> summarize_timeline(const std::vector<uint64_t>& stamps,
                                               int64_t blocks_per_kernel,
                                               const std::vector<std::string>& names) {
  const Stamps st(stamps, blocks_per_kernel, names);
  const int64_t kernels = static_cast<int64_t>(names.size());
  auto at = [&](int64_t k, int64_t b, int64_t f) { return st.at(k, b, f); };
  auto us = [&](uint64_t t) { return st.us(t); };

  std::vector<KernelTimeline> out;
  for (int64_t k = 0; k < kernels; ++k) {
    KernelTimeline t;
    t.name = names[static_cast<size_t>(k)];
    std::vector<double> start, waited, end, busy, after_wait;
    std::set<uint64_t> sms;
    for (int64_t b = 0; b < blocks_per_kernel; ++b) {
      const uint64_t s = at(k, b, 0), w = at(k, b, 1), e = at(k, b, 2);
      if (s == 0) continue;
      ++t.blocks;
      sms.insert(at(k, b, 3));
      start.push_back(us(s));
      if (w != 0) waited.push_back(us(w));
      if (e != 0) {
        end.push_back(us(e));
        busy.push_back(static_cast<double>(e - s) / 1e3);
      }
      if (w != 0 && e >= w) after_wait.push_back(static_cast<double>(e - w) / 1e3);
    }
    t.sms = static_cast<int64_t>(sms.size());
    t.start = spread_of(std::move(start));
    t.waited = spread_of(std::move(waited));
    t.end = spread_of(std::move(end));
    t.busy = spread_of(std::move(busy));
    t.after_wait = spread_of(std::move(after_wait));
    out.push_back(std::move(t));
  }
  return out;
}

std::string timeline_csv(const std::vector<uint64_t>& stamps, int64_t blocks_per_kernel,
                         const std::vector<std::string>& names, int run) {
  const Stamps st(stamps, blocks_per_kernel, names);
  auto us = [&](uint64_t t) {
    if (t == 0) return std::string();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", st.us(t));
    return std::string(buf);
  };
  std::string s;
  for (size_t k = 0; k < names.size(); ++k)
    for (int64_t b = 0; b < blocks_per_kernel; ++b) {
      const auto kk = static_cast<int64_t>(k);
      if (st.at(kk, b, 0) == 0) continue;
      s += std::to_string(run) + ',' + names[k] + ',' + std::to_string(b) + ',' +
           std::to_string(st.at(kk, b, 3)) + ',' + us(st.at(kk, b, 0)) + ',' + us(st.at(kk, b, 1)) +
           ',' + us(st.at(kk, b, 2)) + '\n';
    }
  return s;
}

std::string format_timeline(const std::vector<KernelTimeline>& kernels) {
  std::string s;
  char line[320];
  std::snprintf(line, sizeof line, "%-8s %6s %4s  %-24s %-24s %-24s %-14s %-14s\n", "kernel",
                "blocks", "SMs", "start first/med/last", "waited first/med/last",
                "end first/med/last", "busy med/max", "end-wait med/max");
  s += line;
  for (const auto& k : kernels) {
    if (k.blocks == 0) continue;
    std::snprintf(line, sizeof line, "%-8s %6lld %4lld  %-24s %-24s %-24s %-14s %-14s\n",
                  k.name.c_str(), static_cast<long long>(k.blocks), static_cast<long long>(k.sms),
                  cell(k.start).c_str(), cell(k.waited).c_str(), cell(k.end).c_str(),
                  cell2(k.busy).c_str(), cell2(k.after_wait).c_str());
    s += line;
  }
  return s;
}

}  // namespace kvscope::kernels::bench
