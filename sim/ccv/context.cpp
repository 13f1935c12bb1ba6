#include "sim/ccv/context.h"

#include <algorithm>
#include <cmath>

#include <boost/container_hash/hash.hpp>

namespace kvscope {

namespace {
// Token-derived block hashes start from their own seed, apart from trace hash_ids.
constexpr std::size_t kTokenChainSeed = 0x6b7673636f7065ULL;  // "kvscope"

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return s;
}
}  // namespace

ContextSignature context_signature(const TraceRecord& r) {
  ContextSignature c;
  if (!r.ctx.empty()) {
    c.vec = r.ctx;
    c.norm = std::sqrt(dot(c.vec, c.vec));
    return c;
  }
  if (!r.tokens.empty()) {
    std::size_t chain = kTokenChainSeed;
    const auto bs = static_cast<size_t>(r.block_size);
    for (size_t start = 0; start < r.tokens.size(); start += bs) {
      const auto first = r.tokens.begin() + static_cast<std::ptrdiff_t>(start);
      const auto last =
          r.tokens.begin() + static_cast<std::ptrdiff_t>(std::min(start + bs, r.tokens.size()));
      boost::hash_range(chain, first, last);  // chain now covers every token up to `last`
      c.blocks.push_back(chain);
    }
  } else {
    c.blocks = r.hash_ids;
  }
  std::sort(c.blocks.begin(), c.blocks.end());
  c.blocks.erase(std::unique(c.blocks.begin(), c.blocks.end()), c.blocks.end());
  return c;
}

double context_similarity(const ContextSignature& a, const ContextSignature& b) {
  if (a.dense() != b.dense() || a.empty() || b.empty()) return 0.0;
  if (a.dense()) {
    if (a.vec.size() != b.vec.size()) return 0.0;
    return dot(a.vec, b.vec) / (a.norm * b.norm);
  }
  size_t common = 0;
  for (size_t i = 0, j = 0; i < a.blocks.size() && j < b.blocks.size();) {
    if (a.blocks[i] < b.blocks[j]) {
      ++i;
    } else if (b.blocks[j] < a.blocks[i]) {
      ++j;
    } else {
      ++common, ++i, ++j;
    }
  }
  return static_cast<double>(common) /
         std::sqrt(static_cast<double>(a.blocks.size()) * static_cast<double>(b.blocks.size()));
}

}  // namespace kvscope
