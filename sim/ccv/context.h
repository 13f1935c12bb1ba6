// What a replay knows of a request's context, and how alike two contexts are.
//
// A trace has no activations, so "similar context" is defined on what the trace has
// (DESIGN.md, "Similarity of contexts in a replay"):
//   - by default the set of the request's prefix blocks (Mooncake hash_ids); two contexts are
//     as similar as the cosine of their block-indicator vectors, |A n B| / sqrt(|A| |B|);
//   - with token ids, the same over blocks of block_size tokens, each hashed together with
//     everything before it (so equal blocks mean equal prefixes, as in Mooncake);
//   - with a context vector, the cosine of the vectors.
#pragma once

#include <cstdint>
#include <vector>

#include "sim/trace/trace.h"

namespace kvscope {

struct ContextSignature {
  std::vector<uint64_t> blocks;  // sorted, unique
  std::vector<float> vec;        // a context vector; when set, blocks is empty
  double norm = 0;               // |vec|

  bool dense() const { return !vec.empty(); }
  bool empty() const { return blocks.empty() && vec.empty(); }
};

ContextSignature context_signature(const TraceRecord& r);

// The cosine defined above; 0 between a block set and a vector, or with an empty context.
// The CCV cache finds the best match faster (an inverted index); this is the definition.
double context_similarity(const ContextSignature& a, const ContextSignature& b);

}  // namespace kvscope
