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

}  // namespace

std::vector<KernelTimeline> summarize_timeline(const std::vector<uint64_t>& stamps,
                                               int64_t blocks_per_kernel,
                                               const std::vector<std::string>& names) {
  const int64_t kernels = static_cast<int64_t>(names.size());
  if (blocks_per_kernel <= 0 ||
      stamps.size() != static_cast<size_t>(kernels * blocks_per_kernel * kFields))
    throw std::invalid_argument("summarize_timeline: " + std::to_string(stamps.size()) +
                                " stamps, expected " + std::to_string(kernels) + " kernels x " +
                                std::to_string(blocks_per_kernel) + " blocks x 4");
  auto at = [&](int64_t k, int64_t b, int64_t f) {
    return stamps[static_cast<size_t>((k * blocks_per_kernel + b) * kFields + f)];
  };
  // Times count from the first block of any kernel.
  uint64_t t0 = std::numeric_limits<uint64_t>::max();
  for (int64_t k = 0; k < kernels; ++k)
    for (int64_t b = 0; b < blocks_per_kernel; ++b)
      if (at(k, b, 0) != 0) t0 = std::min(t0, at(k, b, 0));
  auto us = [&](uint64_t t) { return static_cast<double>(t - t0) / 1e3; };

  std::vector<KernelTimeline> out;
  for (int64_t k = 0; k < kernels; ++k) {
    KernelTimeline t;
    t.name = names[static_cast<size_t>(k)];
    std::vector<double> start, waited, end, busy, after_wait;
    std::set<uint64_t> sms;
    for (int64_t b = 0; b < blocks_per_kernel; ++b) {
      const uint64_t s = at(k, b, 0), w = at(k, b, 1), e = at(k, b, 2);
      if (s == 0) continue;
      if (e != 0 && e < s)
        throw std::invalid_argument("summarize_timeline: " + t.name + " block " +
                                    std::to_string(b) + " ends before it starts");
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
