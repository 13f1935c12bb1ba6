// Helpers shared by the CPU backend's operation files.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include <Eigen/Core>

#include "kernels/backend.h"
#include "kernels/convert.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace kvscope::kernels::cpu {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMap = Eigen::Map<RowMat>;
using ConstRowMap = Eigen::Map<const RowMat>;

inline int thread_count() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Below this much work (elements touched or FLOPs) a parallel region costs more than it saves:
// on a shared, oversubscribed machine a barrier can wait a whole scheduler time slice.
constexpr double kParallelMinWork = 1 << 20;

inline size_t esize(DType t) { return static_cast<size_t>(dtype_bytes(t)); }

// A tensor viewed as f32: the buffer itself when it already is f32, else a converted copy
// (converted in parallel chunks, since for bf16 this is a pass over the whole tensor).
class F32View {
 public:
  F32View(DType t, const DeviceBuffer& buf, size_t count) {
    if (t == DType::f32) {
      ptr_ = static_cast<const float*>(buf.data());
      return;
    }
    copy_.resize(count);
    const auto* src = static_cast<const std::byte*>(buf.data());
    const int64_t chunk = 1 << 16, n = static_cast<int64_t>(count);
    const int64_t chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (static_cast <double>(n) >= kParallelMinWork)
    for (int64_t i = 0; i < chunks; ++i) {
      const int64_t off = i * chunk, len = std::min(chunk, n - off);
      to_f32(t, src + static_cast<size_t>(off) * esize(t), copy_.data() + off,
             static_cast<size_t>(len));
    }
    ptr_ = copy_.data();
  }
  const float* data() const { return ptr_; }

 private:
  const float* ptr_ = nullptr;
  std::vector<float> copy_;
};

// `count` elements of `buf` from element `offset` as f32: a pointer into the buffer when it is
// f32, else converted into `scratch`. Attention converts each job's own K/V rows this way, in
// parallel and while they are hot in cache, instead of a whole-tensor pass up front.
inline const float* f32_slice(DType t, const DeviceBuffer& buf, size_t offset, size_t count,
                              std::vector<float>& scratch) {
  if (t == DType::f32) return static_cast<const float*>(buf.data()) + offset;
  scratch.resize(count);
  to_f32(t, static_cast<const std::byte*>(buf.data()) + offset * esize(t), scratch.data(), count);
  return scratch.data();
}

// The token held in edge slot `slot`, or -1 when the slot is unused (backend.h, "Edge slots").
inline int64_t edge_token(const FourierLayout& f, int64_t tokens, int64_t slot) {
  if (f.middle(tokens) == 0) return slot < tokens ? slot : -1;
  return slot < f.sink ? slot : tokens - f.window + (slot - f.sink);
}

// The dims of head_dim that are not compressed, in order.
inline std::vector<int64_t> kept_dims(const FourierLayout& f, int64_t head_dim) {
  std::vector<int64_t> kept;
  size_t c = 0;
  for (int64_t d = 0; d < head_dim; ++d) {
    if (c < f.compressed_dims.size() && f.compressed_dims[c] == d)
      ++c;
    else
      kept.push_back(d);
  }
  return kept;
}

// In place over s[0, total): scale, softmax over the first `valid` entries, zeros after.
inline void scaled_masked_softmax(float* s, int64_t valid, int64_t total, float scale) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < valid; ++j) mx = std::max(mx, s[j] * scale);
  float sum = 0.0f;
  for (int64_t j = 0; j < valid; ++j) {
    s[j] = std::exp(s[j] * scale - mx);
    sum += s[j];
  }
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < valid; ++j) s[j] *= inv;
  for (int64_t j = valid; j < total; ++j) s[j] = 0.0f;
}

}  // namespace kvscope::kernels::cpu

namespace kvscope::kernels::cpu {

// Attention splits into independent jobs of (batch, KV head, block of queries), each holding
// every query head of the KV head's GQA group, so the K/V rows are read once per job and the
// score matrix has group * block rows (decode: group rows). f(b, kv_head, q0, nq).
template <class F>
void for_each_attention_job(const AttentionArgs& a, F&& f) {
  const int64_t group = a.q_heads / a.kv_heads;
  const int64_t block = std::max<int64_t>(1, 128 / group);
  const int64_t blocks = (a.q_len + block - 1) / block;
  const int64_t jobs = a.batch * a.kv_heads * blocks;
  const double flops = 4.0 * static_cast<double>(a.batch * a.q_heads * a.q_len) *
                       static_cast<double>(a.tokens * a.head_dim);
#pragma omp parallel for schedule(dynamic, 1) if (jobs > 1 && flops >= 4 * kParallelMinWork)
  for (int64_t j = 0; j < jobs; ++j) {
    const int64_t qb = j % blocks, bg = j / blocks;
    const int64_t q0 = qb * block;
    f(bg / a.kv_heads, bg % a.kv_heads, q0, std::min(block, a.q_len - q0));
  }
}

// Loads the job's query rows (row = head_in_group * nq + i) as f32 [group * nq, head_dim].
inline void load_queries(const AttentionArgs& a, const std::byte* q, int64_t b, int64_t g,
                         int64_t q0, int64_t nq, RowMat& out) {
  const int64_t group = a.q_heads / a.kv_heads, d = a.head_dim;
  out.resize(group * nq, d);
  for (int64_t h = 0; h < group; ++h) {
    const int64_t head = g * group + h;
    const size_t off = static_cast<size_t>(((b * a.q_heads + head) * a.q_len + q0) * d);
    to_f32(a.dtype, q + off * esize(a.dtype), out.data() + h * nq * d, static_cast<size_t>(nq * d));
  }
}

// Stores the job's output rows in the same order.
inline void store_outputs(const AttentionArgs& a, const RowMat& o, int64_t b, int64_t g, int64_t q0,
                          int64_t nq, std::byte* out) {
  const int64_t group = a.q_heads / a.kv_heads, d = a.head_dim;
  for (int64_t h = 0; h < group; ++h) {
    const int64_t head = g * group + h;
    const size_t off = static_cast<size_t>(((b * a.q_heads + head) * a.q_len + q0) * d);
    from_f32(a.dtype, o.data() + h * nq * d, out + off * esize(a.dtype),
             static_cast<size_t>(nq * d));
  }
}

// Keys visible to query i of the job (causal: up to its own position; queries are the last
// q_len of the tokens).
inline int64_t visible_keys(const AttentionArgs& a, int64_t q_index) {
  return a.causal ? a.tokens - a.q_len + q_index + 1 : a.tokens;
}

}  // namespace kvscope::kernels::cpu
