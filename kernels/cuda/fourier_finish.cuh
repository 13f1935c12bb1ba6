// The Fourier decode's finish (fourier_attention.cu): merging the partial records of the middle
// splits (fourier_decode.cuh) and of the sink and window splits, and applying the merged R to the
// value coefficients.
#pragma once

#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/decode.cuh"
#include "kernels/cuda/fourier_decode.cuh"
#include "kernels/cuda/timeline.cuh"

namespace kvscope::kernels::cuda {

// The partial records of a head (its middle splits, then the edge splits) are merged by
// fourier_finish_kernel, whose blocks do one of three jobs, with enough blocks and independent
// loads that none waits on one split at a time:
//  - merge O of the kept dims (written to the output) or R (to a buffer), each merged value
//    summed over the splits by 4 threads;
//  - apply, a block per 16 compressed dims: R . Vc / sqrt(L) plus the edge splits' exact part,
//    each Vc element read once for all query columns; R merged by the block itself from the
//    splits (in L2, just written) or read from the buffer.
// With few splits (kFusedSplits, e.g. batch 8) one launch does it all, the apply blocks merging
// R themselves: one launch and one dependency fewer on the decode's critical path. With many
// (batch 1 has a split per SM) each of a head's apply blocks would read every split's R, so
// one launch merges O and R and a second applies.
struct FourierMergeParams {
  const float* partial;  // [heads][splits][rec]
  const void* vc;        // value coefficients [heads, M, C]
  void* o;               // [B, Hq, q_len, D]
  float* rmerged;        // [heads][8][MP], the two-launch path only
  int64_t kv_heads, group, q_len, head_dim;
  int64_t splits, rec, DK, MP, M, C, L;
  int64_t middle_splits;  // splits [0, middle_splits) hold R; the rest are the edge's
  int16_t kdim[256];
  int16_t cdim[256];
};

constexpr int kMergeThreads = 256;
constexpr int kMergeOut = 64;  // merged values per block
constexpr int kMergeWays = kMergeThreads / kMergeOut;
// The apply blocks sum over M coefficients rather than over the splits: more ways per value and
// fewer values per block, so a batch-1 call has 4 blocks per head instead of 1.
constexpr int kApplyOut = 16;
constexpr int kApplyWays = kMergeThreads / kApplyOut;
constexpr int64_t kFusedSplits = 32;  // up to this many splits, the apply blocks merge R

// w[j][s] = 2^(m_s - m) / l for column j < ncols and split s: a warp per column, lanes over the
// splits (each lane rescales only its own entries).
__device__ __forceinline__ void split_weights(const float* part, int64_t splits, int64_t rec,
                                              int ncols, float* w) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int j = warp; j < ncols; j += blockDim.x / 32) {
    if (splits <= 32) {  // a lane per split: both of its loads in one round
      const bool ok = lane < splits;
      const float ms = ok ? __ldcg(part + lane * rec + j) : -INFINITY;
      const float ls = ok ? __ldcg(part + lane * rec + kDecCols + j) : 0.f;
      const float mx = warp_max(ms);
      const float f = ok ? exp2f(ms - (mx == -INFINITY ? 0.f : mx)) : 0.f;
      const float l = warp_sum(f * ls);
      if (ok) w[j * splits + lane] = f * (l > 0.f ? 1.f / l : 0.f);
      continue;
    }
    float m = -INFINITY;
    for (int64_t s = lane; s < splits; s += 32) m = fmaxf(m, __ldcg(part + s * rec + j));
    m = warp_max(m);
    const float base = m == -INFINITY ? 0.f : m;
    float l = 0.f;
    for (int64_t s = lane; s < splits; s += 32) {
      const float f = exp2f(__ldcg(part + s * rec + j) - base);
      w[j * splits + s] = f;
      l += f * __ldcg(part + s * rec + kDecCols + j);
    }
    l = warp_sum(l);
    const float inv_l = l > 0.f ? 1.f / l : 0.f;
    for (int64_t s = lane; s < splits; s += 32) w[j * splits + s] *= inv_l;
  }
}

template <class T>
__device__ __forceinline__ T* output_row(const FourierMergeParams& p, int64_t head, int j) {
  const int64_t b = head / p.kv_heads, kvh = head % p.kv_heads;
  const int64_t qh = kvh * p.group + j / p.q_len, qi = j % p.q_len;
  return static_cast<T*>(p.o) + ((b * p.kv_heads * p.group + qh) * p.q_len + qi) * p.head_dim;
}

// Block `blk` of the merged values: kMergeOut of them, kMergeWays threads each; O of the kept
// dims (to the output), or with `r` R (to p.rmerged, in k order).
template <class T>
__device__ __forceinline__ void merge_block(const FourierMergeParams& p, int64_t head,
                                            const float* part, const float* w, int64_t blk, bool r,
                                            float* red) {
  const int ncols = static_cast<int>(p.group * p.q_len);
  const int64_t X = r ? p.MP : p.DK;
  const int o = threadIdx.x % kMergeOut, way = threadIdx.x / kMergeOut;
  const int64_t y = blk * kMergeOut + o;
  const bool ok = y < ncols * X;
  const int j = ok ? static_cast<int>(y / X) : 0;
  const int64_t x = ok ? y % X : 0;
  const int64_t off = (r ? dec_rec_r(p.DK) : dec_rec_o()) + j * X + x;
  const int64_t splits = r ? p.middle_splits : p.splits;  // only the middle splits have an R
  float acc = 0.f;
  if (ok) {
#pragma unroll 8
    for (int64_t s = way; s < splits; s += kMergeWays)
      acc = fmaf(w[j * p.splits + s], __ldcg(part + s * p.rec + off), acc);
  }
  red[way * kMergeOut + o] = acc;
  __syncthreads();
  if (way != 0 || !ok) return;
  float sum = 0.f;
#pragma unroll
  for (int v = 0; v < kMergeWays; ++v) sum += red[v * kMergeOut + o];
  if (r)
    p.rmerged[(head * kDecCols + j) * p.MP + x] = sum;
  else
    output_row<T>(p, head, j)[p.kdim[x]] = from_f32<T>(sum);
}

// The finish's staging: an apply block copies its Vc columns into shared memory before the
// kernel waits for the splits (cp.async; they are an input of the call), and the edge splits'
// exact part of its dims right after the wait, copied while the split weights and R are merged;
// so the product and the exact part read shared memory instead of waiting on L2 once more each
// after R is merged (1-3 us off the issue's decode against Vc prefetched into L2,
// kernels/BENCHMARKS.md, 2026-12-05). The host runs it where C is whole kApplyOut-column blocks
// of 16-bit values and Vc is 16-byte aligned (fourier_attention.cu, fast_t).
constexpr int kFinishMaxEdgeSplits = 8;  // at least edge_mma_kernel's blocks per head
template <class T>
struct FinishStage {
  T* vc;         // [min(M, L)][kApplyOut]: Vc's rows, this block's columns
  float* exact;  // [edge split][kDecCols][kApplyOut]: the edge splits' exact part, these columns
};
template <class T>
inline size_t finish_stage_bytes(int64_t MP) {
  return size_t(kFinishMaxEdgeSplits) * kDecCols * kApplyOut * sizeof(float) +
         size_t(MP) * kApplyOut * sizeof(T);
}
template <class T>
__device__ __forceinline__ void stage_apply_vc(const FourierMergeParams& p, int64_t head,
                                               int64_t blk, T* vs) {
  constexpr int kChunks = kApplyOut * int(sizeof(T)) / 16;  // 16-byte pieces of a row
  const int kmax = static_cast<int>(p.M < p.L ? p.M : p.L);
  const T* vc = static_cast<const T*>(p.vc) + head * p.M * p.C + blk * kApplyOut;
  for (int i = threadIdx.x; i < kmax * kChunks; i += kMergeThreads) {
    const int k = i / kChunks, h = i % kChunks;
    cp_async16(vs + k * kApplyOut + h * (16 / sizeof(T)), vc + k * p.C + h * (16 / sizeof(T)),
               true);
  }
  cp_async_commit();
}
template <class T>
__device__ __forceinline__ void stage_apply_exact(const FourierMergeParams& p, const float* part,
                                                  int64_t blk, float* ex) {
  const int ncols = static_cast<int>(p.group * p.q_len);
  const int middle = static_cast<int>(p.middle_splits), edges = static_cast<int>(p.splits) - middle;
  const float* src = part + middle * p.rec + dec_rec_oc(p.DK, p.MP) + blk * kApplyOut;
  constexpr int kChunks = kApplyOut / 4;  // 16-byte pieces of a column's kApplyOut floats
  for (int i = threadIdx.x; i < edges * ncols * kChunks; i += kMergeThreads) {
    const int h = i % kChunks, j = (i / kChunks) % ncols, e = i / (kChunks * ncols);
    cp_async16(ex + (e * kDecCols + j) * kApplyOut + 4 * h, src + e * p.rec + j * p.C + 4 * h,
               true);
  }
  cp_async_commit();
}

// Block `blk` of the compressed dims: R (merged over the splits here, or read from p.rmerged
// with `premerged`) into shared memory, then kApplyOut dims c of R . Vc, kApplyWays threads each.
// Vc's columns and the edge splits' exact part come from `st` (FinishStage).
// A thread merges its kRPerThread values of R at once, every split's loads of them in flight
// together: merged one value at a time, the loop waited on L2 for each of them in turn.
constexpr int kRPerThread = kDecCols * 256 / kMergeThreads;
template <class T>
__device__ __forceinline__ void apply_block(const FourierMergeParams& p, int64_t head,
                                            const float* part, const float* w, int64_t blk,
                                            bool premerged, float* r, float* red,
                                            FinishStage<T> st) {
  const int ncols = static_cast<int>(p.group * p.q_len);
  const int64_t kmax = p.M < p.L ? p.M : p.L;
  const int64_t r_off = dec_rec_r(p.DK);
  const int n = kDecCols * static_cast<int>(p.MP);
  // Value u of this thread: R[j][k] at i = threadIdx.x + u kMergeThreads, j = i >> mp_log2 (MP
  // is a power of two), k = i % MP; merged where j is a column and k < kmax (bit u of `live`).
  const int mp = static_cast<int>(p.MP), splits = static_cast<int>(p.splits);
  const int middle = static_cast<int>(p.middle_splits);  // the splits with an R
  const int mp_log2 = __ffs(mp) - 1;
  float acc[kRPerThread];
  unsigned live = 0;
#pragma unroll
  for (int u = 0; u < kRPerThread; ++u) {
    const int i = static_cast<int>(threadIdx.x) + u * kMergeThreads;
    if (i < n && (i >> mp_log2) < ncols && (i & (mp - 1)) < kmax) live |= 1u << u;
    acc[u] = 0.f;
    if (premerged && (live >> u & 1u)) acc[u] = __ldcg(p.rmerged + head * kDecCols * p.MP + i);
  }
  if (!premerged) {
    const float* ps = part + r_off + threadIdx.x;
#pragma unroll 4
    for (int s = 0; s < middle; ++s, ps += p.rec) {
#pragma unroll
      for (int u = 0; u < kRPerThread; ++u)
        if (live >> u & 1u) {
          const int j = (static_cast<int>(threadIdx.x) + u * kMergeThreads) >> mp_log2;
          acc[u] = fmaf(w[j * splits + s], __ldcg(ps + u * kMergeThreads), acc[u]);
        }
    }
  }
#pragma unroll
  for (int u = 0; u < kRPerThread; ++u) {
    const int i = static_cast<int>(threadIdx.x) + u * kMergeThreads;
    if (i < n) r[i] = acc[u];
  }
  cp_async_wait<0>();  // this thread's copies; the barrier shows them all
  __syncthreads();
  const int o = threadIdx.x % kApplyOut, way = threadIdx.x / kApplyOut;
  const int64_t c = blk * kApplyOut + o;
  float sum_j[kDecCols] = {};
  if (c < p.C) {
#pragma unroll 8
    for (int64_t k = way; k < kmax; k += kApplyWays) {
      const float v = to_f32(st.vc[k * kApplyOut + o]);
#pragma unroll
      for (int j = 0; j < kDecCols; ++j) sum_j[j] = fmaf(r[j * mp + k], v, sum_j[j]);
    }
  }
#pragma unroll
  for (int j = 0; j < kDecCols; ++j) red[(way * kDecCols + j) * kApplyOut + o] = sum_j[j];
  __syncthreads();
  if (way != 0 || c >= p.C) return;
  const float inv_sqrt_l = p.L > 0 ? rsqrtf(static_cast<float>(p.L)) : 0.f;
  // The exact part of the compressed dims, the edge splits' only: every column's loads of a
  // split issued together, before any store (the stores to the output could alias the records,
  // so loads after one were not moved ahead of it and each waited on L2 in turn).
  float exact[kDecCols] = {};
#pragma unroll 2
  for (int e = middle; e < splits; ++e) {
#pragma unroll
    for (int j = 0; j < kDecCols; ++j)
      if (j < ncols)
        exact[j] = fmaf(w[j * splits + e], st.exact[((e - middle) * kDecCols + j) * kApplyOut + o],
                        exact[j]);
  }
#pragma unroll
  for (int j = 0; j < kDecCols; ++j) {
    if (j >= ncols) break;
    float sum = 0.f;
#pragma unroll
    for (int v = 0; v < kApplyWays; ++v) sum += red[(v * kDecCols + j) * kApplyOut + o];
    sum = fmaf(sum, inv_sqrt_l, exact[j]);
    output_row<T>(p, head, j)[p.cdim[c]] = from_f32<T>(sum);
  }
}

// Shared memory of fourier_finish_kernel: the split weights, then R and the apply's partial
// sums (or the kept dims' partial sums, which fit in the same space), then FinishStage.
__host__ __device__ inline int64_t finish_rest_floats(int64_t MP) {
  const int64_t apply = kDecCols * MP + int64_t(kApplyWays) * kDecCols * kApplyOut;
  const int64_t kept = int64_t(kMergeWays) * kMergeOut;
  return apply > kept ? apply : kept;
}
inline size_t finish_smem_bytes(int64_t splits, int64_t MP) {
  return size_t(kDecCols * splits + finish_rest_floats(MP)) * sizeof(float);
}

// grid (heads, kept_blocks + r_blocks + apply_blocks): kept_blocks merge O, r_blocks merge R
// into p.rmerged, the rest apply (R from p.rmerged with `premerged`, else merged by each block).
template <class T>
__global__ void __launch_bounds__(kMergeThreads)
    fourier_finish_kernel(const FourierMergeParams p, int64_t kept_blocks, int64_t r_blocks,
                          bool premerged) {
  extern __shared__ __align__(16) float fsh[];
  float* w = fsh;                         // [8][splits]
  float* rest = w + kDecCols * p.splits;  // R [8][MP] and the partial sums
  FinishStage<T> st{};
  st.exact = rest + finish_rest_floats(p.MP);
  st.vc = reinterpret_cast<T*>(st.exact + kFinishMaxEdgeSplits * kDecCols * kApplyOut);
  const int64_t head = blockIdx.x;
  const int ncols = static_cast<int>(p.group * p.q_len);
  const float* part = p.partial + head * p.splits * p.rec;
  const int64_t y = blockIdx.y, apply = y - kept_blocks - r_blocks;
  const auto stamped_as = premerged ? DecodeTimeline::apply : DecodeTimeline::finish;
  timeline_stamp(stamped_as, DecodeTimeline::start);
  if (apply >= 0) stage_apply_vc<T>(p, head, apply, st.vc);
  // The partial records (and R, premerged) are the kernels' before this one: read after here.
  grid_dependency_wait();
  timeline_stamp(stamped_as, DecodeTimeline::waited);
  allow_dependent_launch();  // e.g. a GEMV of the output, which waits for this kernel in turn
  if (apply >= 0) stage_apply_exact<T>(p, part, apply, st.exact);
  split_weights(part, p.splits, p.rec, ncols, w);
  __syncthreads();
  if (y < kept_blocks)
    merge_block<T>(p, head, part, w, y, false, rest);
  else if (y < kept_blocks + r_blocks)
    merge_block<T>(p, head, part, w, y - kept_blocks, true, rest);
  else
    apply_block<T>(p, head, part, w, apply, premerged, rest, rest + kDecCols * p.MP, st);
  timeline_stamp(stamped_as, DecodeTimeline::end);
}

}  // namespace kvscope::kernels::cuda
