#include "sim/engine/kv_pool.h"

#include <algorithm>

namespace kvscope {

namespace {
// Lengths tabulated per pool; longer ones (absurd but valid) are computed each time.
constexpr int64_t kTabulatedTokens = int64_t{1} << 21;
}  // namespace

KvPool::KvPool(const ModelShape& shape, Method method, const MethodConfig& config,
               int64_t capacity_bytes)
    : format_(make_kv_format(method, shape, config)),
      layers_{layers_holding_kv(shape, method, config.ccv, false),
              layers_holding_kv(shape, method, config.ccv, true)},
      capacity_(capacity_bytes) {}

// sequence_kv_bytes() of model/memory.h, with the format bound once for the pool.
int64_t KvPool::direct(int64_t tokens, bool ccv_hit) const {
  return layers_[ccv_hit ? 1 : 0] * format_->layer_bytes(tokens);
}

void KvPool::extend(Table& t, bool ccv_hit, int64_t to) const {
  if (t.frontier < 0) {
    t.frontier = 0;
    t.frontier_bytes = direct(0, ccv_hit);
  }
  for (int64_t u = t.frontier; u < to; ++u) {
    const int64_t next = direct(u + 1, ccv_hit);
    const int64_t delta = next - t.frontier_bytes;
    if (t.runs.empty() || t.runs.back().delta != delta)
      t.runs.push_back(Run{u, t.frontier_bytes, delta});
    t.frontier_bytes = next;
  }
  t.frontier = std::max(t.frontier, to);
}

const KvPool::Run& KvPool::run_at(const Table& t, int64_t tokens) const {
  const auto it = std::upper_bound(t.runs.begin(), t.runs.end(), tokens,
                                   [](int64_t v, const Run& r) { return v < r.start; });
  return *(it - 1);
}

int64_t KvPool::bytes_for(int64_t tokens, bool ccv_hit) const {
  if (tokens >= kTabulatedTokens) return direct(tokens, ccv_hit);
  Table& t = tables_[ccv_hit ? 1 : 0];
  if (tokens > t.frontier)
    extend(t, ccv_hit, std::min(std::max(tokens, 2 * t.frontier), kTabulatedTokens));
  if (tokens == 0) return t.runs.empty() ? t.frontier_bytes : t.runs.front().bytes_at_start;
  const Run& r = run_at(t, tokens - 1);  // covers tokens - 1 -> tokens
  return r.bytes_at_start + (tokens - r.start) * r.delta;
}

KvPool::Growth KvPool::growth(int64_t tokens, bool ccv_hit) const {
  if (tokens + 1 >= kTabulatedTokens)
    return Growth{direct(tokens + 1, ccv_hit) - direct(tokens, ccv_hit), tokens + 1};
  Table& t = tables_[ccv_hit ? 1 : 0];
  if (tokens + 1 > t.frontier)
    extend(t, ccv_hit, std::min(std::max(tokens + 1, 2 * t.frontier), kTabulatedTokens));
  const auto it = std::upper_bound(t.runs.begin(), t.runs.end(), tokens,
                                   [](int64_t v, const Run& r) { return v < r.start; });
  const Run& r = *(it - 1);
  const int64_t until = it == t.runs.end() ? t.frontier : it->start;
  return Growth{r.delta, until};
}

}  // namespace kvscope
