// Attention over a Fourier-compressed K and V (backend.h op 3) without rebuilding K or V in
// global memory: the FlashFourierAttention analogue.
//  - decode (q_len * group <= 8): fourier_decode.cuh computes the middle tokens' scores from the
//    coefficients (P = Kc q_c, scores = B^T P) and accumulates the weights' DCT (R = B W), split
//    over the tokens, one basis tile for 8 KV heads; edge_mma_kernel does the sink and window
//    tokens exactly; fourier_finish_kernel merges the splits and applies R to the value
//    coefficients. Per token it reads only the kept dims of K and V.
//  - prefill: prefill.cuh with the key tiles assembled in shared memory.
//  - anything else (f32, other shapes, CudaOptions::simple_attention): one warp per query row on
//    CUDA cores, same algebra (P, R), the basis evaluated per (k, token).
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda/attention_dispatch.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/decode.cuh"
#include "kernels/cuda/fourier_decode.cuh"
#include "kernels/cuda/fourier_finish.cuh"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/prefill.cuh"

namespace kvscope::kernels::cuda {
namespace {

struct FParams {
  const void* q;
  const void *kk, *vk;  // kept [B*Hkv, T, DK]
  const void *ke, *ve;  // edge [B*Hkv, E, C]
  const void *kc, *vc;  // coeffs [B*Hkv, M, C]
  void* o;
  int64_t batch, kv_heads, group, q_len, tokens, head_dim;
  int64_t DK, C, M, L, sink, window;
  bool causal;
  float scale;
  int16_t kdim[256], cdim[256];
};

// Edge row of token t (sink or window), or -1 for a middle token.
__device__ __forceinline__ int64_t edge_row(int64_t t, int64_t L, int64_t sink) {
  if (L == 0) return t;
  if (t < sink) return t;
  if (t >= sink + L) return sink + (t - sink - L);
  return -1;
}

constexpr int kSimpleWarps = 4;

template <class T>
__global__ void __launch_bounds__(kSimpleWarps * 32) simple_fourier_kernel(const FParams p) {
  extern __shared__ __align__(16) float sh[];
  const int64_t rows = p.batch * p.kv_heads * p.group * p.q_len;
  const int w = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kSimpleWarps + w;
  const int64_t kmax = std::min(p.M, p.L);
  const int64_t MPw = p.M + 1;
  float* qs = sh + w * (p.head_dim + 3 * MPw);
  float* P = qs + p.head_dim;
  float* R = P + MPw;
  float* Bc = R + MPw;
  if (row >= rows) return;
  const int64_t qi = row % p.q_len, bqh = row / p.q_len;
  const int64_t b = bqh / (p.kv_heads * p.group), qh = bqh % (p.kv_heads * p.group);
  const int64_t head = b * p.kv_heads + qh / p.group;
  const T* q = static_cast<const T*>(p.q) + row * p.head_dim;
  for (int64_t d = lane; d < p.head_dim; d += 32) qs[d] = to_f32(q[d]);
  __syncwarp();
  const T* kc = static_cast<const T*>(p.kc) + head * p.M * p.C;
  const T* vc = static_cast<const T*>(p.vc) + head * p.M * p.C;
  const float inv_sqrt_l = p.L > 0 ? rsqrtf(static_cast<float>(p.L)) : 0.f;
  for (int64_t k = lane; k < p.M; k += 32) {
    float s = 0.f;
    if (k < kmax)
      for (int64_t c = 0; c < p.C; ++c) s = fmaf(qs[p.cdim[c]], to_f32(kc[k * p.C + c]), s);
    P[k] = s * inv_sqrt_l;
    R[k] = 0.f;
  }
  __syncwarp();
  const int64_t E = p.sink + p.window;
  const T* kk = static_cast<const T*>(p.kk) + head * p.tokens * p.DK;
  const T* vk = static_cast<const T*>(p.vk) + head * p.tokens * p.DK;
  const T* ke = static_cast<const T*>(p.ke) + head * E * p.C;
  const T* ve = static_cast<const T*>(p.ve) + head * E * p.C;
  float okept[8] = {}, oedge[8] = {};
  const int64_t qpos = p.tokens - p.q_len + qi;
  const int64_t end = p.causal ? min(p.tokens, qpos + 1) : p.tokens;
  const int64_t L4 = 4 * p.L;
  float m = -INFINITY, l = 0.f;
  for (int64_t t = 0; t < end; ++t) {
    const int64_t er = edge_row(t, p.L, p.sink);
    float s = 0.f;
    for (int64_t i = lane; i < p.DK; i += 32) s = fmaf(qs[p.kdim[i]], to_f32(kk[t * p.DK + i]), s);
    if (er < 0) {
      const int64_t n = t - p.sink;
      for (int64_t k = lane; k < p.M; k += 32) {
        float bk = 0.f;
        if (k < kmax) {
          const int64_t ph = ((2 * n + 1) * k) % L4;
          bk = (k == 0 ? 1.f : 1.41421356237309515f) *
               cospif(static_cast<float>(ph) / static_cast<float>(2 * p.L));
        }
        Bc[k] = bk;
        s = fmaf(bk, P[k], s);
      }
    } else {
      for (int64_t c = lane; c < p.C; c += 32) s = fmaf(qs[p.cdim[c]], to_f32(ke[er * p.C + c]), s);
    }
    s = warp_sum(s) * p.scale;
    const float mn = fmaxf(m, s);
    const float alpha = expf(m - mn), wt = expf(s - mn);
    l = l * alpha + wt;
    m = mn;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int64_t i = lane + 32 * j;
      okept[j] = okept[j] * alpha + (i < p.DK ? wt * to_f32(vk[t * p.DK + i]) : 0.f);
      oedge[j] = oedge[j] * alpha + (er >= 0 && i < p.C ? wt * to_f32(ve[er * p.C + i]) : 0.f);
    }
    for (int64_t k = lane; k < p.M; k += 32) R[k] = R[k] * alpha + (er < 0 ? wt * Bc[k] : 0.f);
  }
  __syncwarp();
  T* o = static_cast<T*>(p.o) + row * p.head_dim;
  const float inv_l = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int64_t i = lane + 32 * j;
    if (i < p.DK) o[p.kdim[i]] = from_f32<T>(okept[j] * inv_l);
    if (i < p.C) {
      float acc = 0.f;
      for (int64_t k = 0; k < kmax; ++k) acc = fmaf(R[k], to_f32(vc[k * p.C + i]), acc);
      o[p.cdim[i]] = from_f32<T>((acc * inv_sqrt_l + oedge[j]) * inv_l);
    }
  }
}

// Sink and window tokens, exactly. Block (head, e) of edge_mma_kernel takes edge rows
// [e rows_per_split, (e + 1) rows_per_split) of one (batch, kv head), for all its query columns
// at once, in chunks of kEdgeChunk rows: a chunk's K and V rows are copied into shared memory
// together (cp.async, every copy of a thread in flight at once), then come its scores, its
// softmax (a warp per column, a lane per token) and the weighted sum of its value rows; online
// softmax across chunks. Writes the partial record at split index first_split + e (log2-domain
// maxima, like the middle splits; no R, which the finish merges over the middle splits only).
// Many short blocks rather than one block per head: a middle block needs a whole SM, so it
// waits for every edge block on its SM to leave, and one block per head (14.5 us on an H200,
// latency-bound at 0.5 instructions per cycle) held 64 SMs for a tenth of the decode.
constexpr int kEdgeChunk = 32;  // = the warp size: the softmax takes a lane per token
constexpr int kEdgeThreads = 256;
constexpr int kEdgeMaxSplits = 8;
// Edge rows per block, and blocks per head, for E edge rows: whole chunks, at most
// kEdgeMaxSplits blocks (a long window takes several chunks per block).
struct EdgeSplit {
  int64_t splits, rows_per_split;
};
EdgeSplit edge_split(int64_t E) {
  const int64_t chunks = std::max<int64_t>(1, (E + kEdgeChunk - 1) / kEdgeChunk);
  const int64_t per = (chunks + kEdgeMaxSplits - 1) / kEdgeMaxSplits * kEdgeChunk;
  return {std::max<int64_t>(1, (E + per - 1) / per), per};
}

// Where one edge block's rows come from: its head's kept dims of K and V ([tokens, DK]) and
// its edge rows' compressed dims ([E, C]), whether they can be copied as 16-byte groups, its
// rows [r_begin, r_end) of the E edge rows (block (head, e) of the grid), and the token of each
// edge row.
template <class T>
struct EdgeRows {
  const T *kk, *vk, *ke, *ve;
  int64_t E, r_begin, r_end;
  bool vec;
  __device__ __forceinline__ EdgeRows(const FParams& p, int64_t head, int64_t rows_per_split)
      : E(p.sink + p.window),
        r_begin(int64_t(blockIdx.y) * rows_per_split),
        r_end(min(E, r_begin + rows_per_split)) {
    kk = static_cast<const T*>(p.kk) + head * p.tokens * p.DK;
    vk = static_cast<const T*>(p.vk) + head * p.tokens * p.DK;
    ke = static_cast<const T*>(p.ke) + head * E * p.C;
    ve = static_cast<const T*>(p.ve) + head * E * p.C;
    vec = p.DK % 8 == 0 && p.C % 8 == 0 &&
          ((reinterpret_cast<uintptr_t>(kk) | reinterpret_cast<uintptr_t>(vk) |
            reinterpret_cast<uintptr_t>(ke) | reinterpret_cast<uintptr_t>(ve)) %
           16) == 0;
  }
  // Token of edge row r, or -1 where the cache is shorter than the edge.
  __device__ __forceinline__ int64_t token(const FParams& p, int64_t r) const {
    if (p.tokens <= E) return r < p.tokens ? r : -1;
    return r < p.sink ? r : p.tokens - p.window + (r - p.sink);
  }
};

// One chunk's step of the online softmax for column j, a warp per column and a lane per row of
// the chunk: s is this lane's score in log2 units (-inf where masked or absent). The lane's
// weight goes to *w_out where `valid` (zero elsewhere); lane 0 folds the chunk into the running
// max and sum and writes alpha[j], the rescale of what was accumulated before it.
__device__ __forceinline__ void edge_softmax_step(float s, bool valid, float* w_out, float* mrun,
                                                  float* lrun, float* alpha, int j) {
  const float mold = mrun[j], mnew = fmaxf(mold, warp_max(s));
  const float base = mnew == -INFINITY ? 0.f : mnew;
  const float w = valid ? exp2f(s - base) : 0.f;
  if (valid) *w_out = w;
  const float sum = warp_sum(w);
  if (threadIdx.x % 32 == 0) {
    const float a = exp2f(mold - base);
    alpha[j] = a;
    mrun[j] = mnew;
    lrun[j] = lrun[j] * a + sum;
  }
}

// The end of a sink-and-window block, once its O is in its record `out`: the running maxima and
// sums of its columns into the record too. With wait_before_exit (launched after the middle
// kernel, whose records the finishing kernel reads after its wait for this grid) one block waits
// for the middle kernel, so that this grid finishes after it and the finishing kernel's wait
// covers both.
__device__ __forceinline__ void edge_block_end(float* out, const float* mrun, const float* lrun,
                                               int ncols, bool wait_before_exit) {
  if (threadIdx.x < ncols) {
    out[threadIdx.x] = mrun[threadIdx.x];
    out[kDecCols + threadIdx.x] = lrun[threadIdx.x];
  }
  timeline_stamp(DecodeTimeline::edge, DecodeTimeline::end);
  if (wait_before_exit && blockIdx.x == 0 && blockIdx.y == 0) {
    grid_dependency_wait();
    timeline_stamp(DecodeTimeline::edge, DecodeTimeline::waited);
  }
}

// Shared memory of edge_mma_kernel<T, X>: the chunk's K and V rows and the query columns, rows
// padded by 16 bytes so that the 8 rows an ldmatrix reads fall in 8 different bank groups; the
// scores (then weights) of each column, and per column the running max, sum and rescale.
template <class T, int X>
struct EdgeSmem {
  static constexpr int XS = X + 8;                                     // row stride (elements)
  static constexpr int SS = kEdgeChunk + 1;                            // score row stride (floats)
  static constexpr size_t rows = size_t(kEdgeChunk) * XS * sizeof(T);  // K, and again V
  static constexpr size_t q = size_t(kDecCols) * XS * sizeof(T);
  static constexpr size_t scores = size_t(kDecCols) * SS * sizeof(float);
  static constexpr size_t bytes = 2 * rows + q + scores + 3 * kDecCols * sizeof(float);
};

// The sink and window tokens on the tensor cores, per chunk
//   S^T[r, j]  = K[r, :] . Q[j, :]     two warps, one per 16 rows, X / 16 products each;
//   O^T[x, j] += V[r, x]^T W[r, j]      a warp per 16 of the X dims, two products each,
// with the softmax between them (a warp per column, a lane per row). Why the tensor cores: where
// the edge kernel runs after the middle one it has only the SMs the middle grid leaves free (4 of
// 132 at the issue's shape), and there the CUDA-core version (retired, kernels/BENCHMARKS.md)
// held the chain: on the H200 (2026-12-04) the decode at batch 8, N = 32768, M = 256 took 0.184
// ms whole and 0.179 ms without that kernel.
// X = DK + C = head_dim (the decode's tiled shapes: 64 or 128).
template <class T, int X>
__global__ void __launch_bounds__(kEdgeThreads)
    edge_mma_kernel(const FParams p, float* partial, int64_t splits, int64_t first_split,
                    int64_t rows_per_split, int64_t rec, int64_t MP, bool wait_before_exit) {
  using SM = EdgeSmem<T, X>;
  constexpr int XS = SM::XS, SS = SM::SS, X8 = X / 8;
  static_assert(kEdgeChunk == 32, "the softmax takes a lane per row, the scores two m16 tiles");
  // A warp per 16 dims of O; the scores take the dims two k16 steps at a time.
  static_assert(X % 32 == 0 && X / 16 <= kEdgeThreads / 32, "head_dim: a multiple of 32, <= 128");
  static_assert(kEdgeThreads / 32 >= kDecCols, "the softmax takes a warp per column");
  extern __shared__ __align__(16) unsigned char esh[];
  T* krows = reinterpret_cast<T*>(esh);                      // [kEdgeChunk][XS]
  T* vrows = krows + kEdgeChunk * XS;                        // [kEdgeChunk][XS]
  T* qs = vrows + kEdgeChunk * XS;                           // [8][XS], zero past ncols
  float* sc = reinterpret_cast<float*>(qs + kDecCols * XS);  // [8][SS] scores, then weights
  float* mrun = sc + kDecCols * SS;                          // [8] running max (log2)
  float* lrun = mrun + kDecCols;                             // [8] running sum
  float* alpha = lrun + kDecCols;                            // [8] rescale of this chunk
  const int64_t head = blockIdx.x;
  const int64_t b = head / p.kv_heads, kvh = head % p.kv_heads;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, tq = lane % 4;
  const int ncols = static_cast<int>(p.group * p.q_len), qlen = static_cast<int>(p.q_len);
  const int DK = static_cast<int>(p.DK);
  timeline_stamp(DecodeTimeline::edge, DecodeTimeline::start);
  const EdgeRows<T> src(p, head, rows_per_split);
  const float scale_log2 = p.scale * 1.4426950408889634f;
  // Nothing after this kernel in the decode's chain reads its output before the chain's own
  // waits (the grid after it finishes after this one, or, where this kernel runs after the
  // middle one, waits for this grid): let the next kernel start now.
  allow_dependent_launch();
  // All kEdgeChunk rows from r0 into krows and vrows, kept dims then compressed dims; zero past
  // the n rows of the chunk and where the cache is shorter than the edge, so the products over
  // the whole chunk see finite values. As 16-byte cp.async copies (complete at the chunk's wait)
  // where rows are whole 16-byte groups, else element copies.
  auto stage = [&](int64_t r0, int n) {
    if (src.vec) {
      const int DK8 = DK / 8;
      for (int i = threadIdx.x; i < kEdgeChunk * X8; i += kEdgeThreads) {
        const int rr = i / X8, x8 = i % X8;
        const int64_t t = rr < n ? src.token(p, r0 + rr) : -1;
        const bool ok = t >= 0;
        const int64_t kept = t * p.DK + 8 * x8, edge = (r0 + rr) * p.C + 8 * (x8 - DK8);
        cp_async16(krows + rr * XS + 8 * x8,
                   !ok        ? src.kk
                   : x8 < DK8 ? src.kk + kept
                              : src.ke + edge,
                   ok);
        cp_async16(vrows + rr * XS + 8 * x8,
                   !ok        ? src.vk
                   : x8 < DK8 ? src.vk + kept
                              : src.ve + edge,
                   ok);
      }
      cp_async_commit();
      return;
    }
    for (int i = threadIdx.x; i < kEdgeChunk * X; i += kEdgeThreads) {
      const int rr = i / X, x = i % X;
      const int64_t t = rr < n ? src.token(p, r0 + rr) : -1;
      T kv = from_f32<T>(0.f), vv = kv;
      if (t >= 0) {
        kv = x < DK ? src.kk[t * p.DK + x] : src.ke[(r0 + rr) * p.C + (x - DK)];
        vv = x < DK ? src.vk[t * p.DK + x] : src.ve[(r0 + rr) * p.C + (x - DK)];
      }
      krows[rr * XS + x] = kv;
      vrows[rr * XS + x] = vv;
    }
  };
  if (src.r_begin < src.r_end)
    stage(src.r_begin, static_cast<int>(min(int64_t(kEdgeChunk), src.r_end - src.r_begin)));
  // The query columns in row order (kept dims, then compressed dims) while the first chunk's
  // copies are in flight; zero rows past ncols. (32-bit column arithmetic: int64 division is a
  // long software routine, per element here.)
  for (int i = threadIdx.x; i < kDecCols * X; i += kEdgeThreads) {
    const int j = i / X, x = i % X;
    T v = from_f32<T>(0.f);
    if (j < ncols) {
      const int64_t qh = kvh * p.group + j / qlen, qi = j % qlen;
      const T* q = static_cast<const T*>(p.q) +
                   ((b * p.kv_heads * p.group + qh) * p.q_len + qi) * p.head_dim;
      v = q[x < DK ? p.kdim[x] : p.cdim[x - DK]];
    }
    qs[j * XS + x] = v;
  }
  if (threadIdx.x < kDecCols) {
    mrun[threadIdx.x] = -INFINITY;
    lrun[threadIdx.x] = 0.f;
  }
  // This warp's O^T fragment: dims 16 warp + g (+ 8), columns 2tq (+ 1); warps past X / 16 idle.
  float oacc[4] = {};
  const bool o_warp = warp < X / 16;
  for (int64_t r0 = src.r_begin; r0 < src.r_end; r0 += kEdgeChunk) {
    const int n = static_cast<int>(min(int64_t(kEdgeChunk), src.r_end - r0));
    if (r0 != src.r_begin) stage(r0, n);  // the first chunk's copies went out before the query
    if (src.vec) cp_async_wait<0>();
    __syncthreads();
    if (warp < 2) {  // scores of rows 16 warp .. + 15, two accumulators for a shorter chain
      float s2[2][4] = {};
      const int krow = 16 * warp + lane % 16;
#pragma unroll
      for (int ks = 0; ks < X / 16; ks += 2) {
        uint32_t qb[4];
        ldmatrix_x4(qb, qs + (lane % 8) * XS + 16 * ks + (lane / 8) * 8);
#pragma unroll
        for (int u = 0; u < 2; ++u) {
          uint32_t a[4];
          ldmatrix_x4(a, krows + krow * XS + 16 * (ks + u) + 8 * (lane / 16));
          const uint32_t bq[2] = {qb[2 * u], qb[2 * u + 1]};
          mma16816<T>(s2[u], a, bq);
        }
      }
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int rr = 16 * warp + g + 8 * (e / 2), j = 2 * tq + e % 2;
        const int64_t t = rr < n ? src.token(p, r0 + rr) : -1;
        const int64_t qpos = p.tokens - p.q_len + j % qlen;
        const bool ok = t >= 0 && j < ncols && !(p.causal && t > qpos);
        sc[j * SS + rr] = ok ? (s2[0][e] + s2[1][e]) * scale_log2 : -INFINITY;
      }
    }
    __syncthreads();
    if (warp < kDecCols) {  // a warp per column: the chunk's weights, the running max and sum
                            // (zero weights past ncols: finite values in every product below)
      const int j = warp;
      // -inf where masked, absent or past ncols: the weight is 0 there
      edge_softmax_step(sc[j * SS + lane], true, sc + j * SS + lane, mrun, lrun, alpha, j);
    }
    __syncthreads();
    if (o_warp) {
      oacc[0] *= alpha[2 * tq];
      oacc[1] *= alpha[2 * tq + 1];
      oacc[2] *= alpha[2 * tq];
      oacc[3] *= alpha[2 * tq + 1];
      const int vrow = (lane % 8) + (lane / 16) * 8;
#pragma unroll
      for (int kk16 = 0; kk16 < kEdgeChunk / 16; ++kk16) {
        uint32_t a[4];
        ldmatrix_x4_trans(a, vrows + (16 * kk16 + vrow) * XS + 16 * warp + 8 * ((lane / 8) % 2));
        const float* wr = sc + g * SS + 16 * kk16 + 2 * tq;
        const uint32_t wb[2] = {pack2<T>(wr[0], wr[1]), pack2<T>(wr[8], wr[9])};
        mma16816<T>(oacc, a, wb);
      }
    }
    __syncthreads();  // before the next chunk's copies overwrite the rows and the weights
  }
  float* out = partial + (head * splits + first_split + blockIdx.y) * rec;
  if (o_warp) {
    const int64_t o_off = dec_rec_o(), c_off = dec_rec_oc(p.DK, MP);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int x = 16 * warp + g + 8 * (e / 2), j = 2 * tq + e % 2;
      if (j < ncols) out[x < DK ? o_off + j * DK + x : c_off + j * p.C + (x - DK)] = oacc[e];
    }
  }
  edge_block_end(out, mrun, lrun, ncols, wait_before_exit);
}

FParams make_params(const AttentionArgs& a, const FourierLayout& f, const void* q,
                    const FourierPtrs& k, const FourierPtrs& v, void* o) {
  FParams p{};
  p.q = q;
  p.kk = k.kept;
  p.vk = v.kept;
  p.ke = k.edge;
  p.ve = v.edge;
  p.kc = k.coeffs;
  p.vc = v.coeffs;
  p.o = o;
  p.batch = a.batch;
  p.kv_heads = a.kv_heads;
  p.group = a.q_heads / a.kv_heads;
  p.q_len = a.q_len;
  p.tokens = a.tokens;
  p.head_dim = a.head_dim;
  p.C = static_cast<int64_t>(f.compressed_dims.size());
  p.DK = a.head_dim - p.C;
  p.M = f.m;
  p.L = f.middle(a.tokens);
  p.sink = f.sink;
  p.window = f.window;
  p.causal = a.causal;
  p.scale = 1.f / std::sqrt(static_cast<float>(a.head_dim));
  const std::vector<int> kd = kept_dims(a.head_dim, f.compressed_dims);
  for (size_t i = 0; i < kd.size(); ++i) p.kdim[i] = static_cast<int16_t>(kd[i]);
  for (size_t i = 0; i < f.compressed_dims.size(); ++i)
    p.cdim[i] = static_cast<int16_t>(f.compressed_dims[i]);
  return p;
}

template <class T>
void simple_t(Ctx& c, const FParams& p) {
  const int64_t rows = p.batch * p.kv_heads * p.group * p.q_len;
  const size_t smem = size_t(kSimpleWarps) * (p.head_dim + 3 * (p.M + 1)) * sizeof(float);
  if (smem > c.smem_optin)
    throw std::invalid_argument("fourier_attention: m too large (" + std::to_string(p.M) + ")");
  KVS_CUDA(cudaFuncSetAttribute(simple_fourier_kernel<T>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  simple_fourier_kernel<T>
      <<<unsigned((rows + kSimpleWarps - 1) / kSimpleWarps), kSimpleWarps * 32, smem, c.stream>>>(
          p);
  KVS_LAUNCH();
}

// Splits of the middle tokens per group of heads: about one block per SM in all, whole tiles.
// A split takes forward tokens of [0, (L + 1) / 2) and, with them, their mirrors L-1-t.
struct FourierSplit {
  int64_t splits, rows_per_split;
};
FourierSplit middle_split(int64_t head_groups, int64_t L, int64_t sms) {
  const int64_t forward = (L + 1) / 2;
  const int64_t tiles = std::max<int64_t>(1, (forward + kFdFwd - 1) / kFdFwd);
  int64_t splits = std::max<int64_t>(1, sms / std::max<int64_t>(head_groups, 1));
  splits = std::min(splits, tiles);
  const int64_t per = (tiles + splits - 1) / splits * kFdFwd;
  return {std::max<int64_t>(1, (forward + per - 1) / per), per};
}

template <class T, int DK, int MT, int HPW, int kStages>
void decode_t(Ctx& c, const FParams& f) {
  using SM = FourierDecodeSmem<T, DK, MT, HPW, kStages>;
  constexpr int MP = MT * 16;
  static_assert((MP & (MP - 1)) == 0, "fourier_finish_kernel indexes R's rows by a shift");
  const int64_t heads = f.batch * f.kv_heads;
  FourierDecodeParams p{};
  p.q = f.q;
  p.k = f.kk;
  p.v = f.vk;
  p.kc = f.kc;
  p.heads = heads;
  p.kv_heads = f.kv_heads;
  p.group = f.group;
  p.q_len = f.q_len;
  p.head_dim = f.head_dim;
  p.tokens = f.tokens;
  p.sink = f.sink;
  p.M = f.M;
  p.C = f.C;
  p.L = f.L;
  p.causal = f.causal;
  p.scale_log2 = f.scale * 1.4426950408889634f;
  for (int i = 0; i < 256; ++i) {
    p.kdim[i] = f.kdim[i];
    p.cdim[i] = f.cdim[i];
  }
  const int64_t head_groups = (heads + SM::kHeads - 1) / SM::kHeads;
  const FourierSplit sp = middle_split(head_groups, f.L, c.sms);
  const int64_t middle_splits = f.L > 0 ? sp.splits : 0;
  p.rows_per_split = sp.rows_per_split;
  const EdgeSplit ep = edge_split(f.sink + f.window);
  p.splits_total = middle_splits + ep.splits;  // the edge splits last
  p.rec = dec_rec_floats(DK, MP, f.C);
  p.partial = static_cast<float*>(
      c.scratch->get(size_t(heads) * p.splits_total * p.rec * sizeof(float), 0));
  // The sink and window tokens (edge_mma_kernel). The four kernels are one chain of programmatic
  // launches on the stream: each starts while the one before it drains and reads what that one
  // wrote only after griddepcontrol.wait. A middle block needs a whole SM, so where the middle
  // grid leaves SMs free the edge kernel goes after it: its blocks run on those SMs while the
  // middle kernel does, off the critical path (P comes first, a plain launch after whatever wrote
  // q). Where the middle grid fills the device, the edge kernel comes first (a plain launch; one
  // block of fourier_p_kernel waits for it before it exits).
  const unsigned skip = c.opt.fourier_decode_skip;  // timing only (CudaOptions)
  const bool edge_last = middle_splits > 0 && middle_splits * head_groups < c.sms;
  // The sink and window rows are head_dim = DK + C wide, twice DK in the tiled shapes.
  const auto edge = edge_mma_kernel<T, 2 * DK>;
  constexpr size_t edge_smem = EdgeSmem<T, 2 * DK>::bytes;
  KVS_CUDA(cudaFuncSetAttribute(edge, cudaFuncAttributeMaxDynamicSharedMemorySize, int(edge_smem)));
  const auto launch_edge = [&](bool after_middle) {
    const Launch l(c.stream, dim3(unsigned(heads), unsigned(ep.splits)), kEdgeThreads, edge_smem,
                   after_middle);
    KVS_CUDA(cudaLaunchKernelEx(&l.cfg, edge, f, p.partial, p.splits_total, middle_splits,
                                ep.rows_per_split, p.rec, int64_t(MP), after_middle));
    KVS_LAUNCH();
  };
  if (!edge_last && !(skip & CudaOptions::kSkipEdge)) launch_edge(false);
  if (middle_splits > 0) {
    auto* pm = static_cast<T*>(c.scratch->get(size_t(heads) * kDecCols * MP * sizeof(T), 1));
    if (!(skip & CudaOptions::kSkipP)) {
      const bool after_edge = !edge_last;
      const Launch l(c.stream, dim3(unsigned(heads), unsigned((MP + kPRows - 1) / kPRows)),
                     kPThreads, size_t(kDecCols) * (f.C + 1) * sizeof(float), after_edge);
      KVS_CUDA(cudaLaunchKernelEx(&l.cfg, fourier_p_kernel<T>, p, int64_t(MP), pm, after_edge));
      KVS_LAUNCH();
    }
    p.pmat = pm;
    const auto middle = fourier_decode_kernel<T, DK, MT, HPW, kStages>;
    KVS_CUDA(
        cudaFuncSetAttribute(middle, cudaFuncAttributeMaxDynamicSharedMemorySize, int(SM::bytes)));
    const Launch l(c.stream, dim3(unsigned(middle_splits), unsigned(head_groups)), kFdThreads,
                   SM::bytes, true);
    if (!(skip & CudaOptions::kSkipMiddle)) {
      KVS_CUDA(cudaLaunchKernelEx(&l.cfg, middle, p));
      KVS_LAUNCH();
    }
  }
  if (edge_last && !(skip & CudaOptions::kSkipEdge)) launch_edge(true);
  FourierMergeParams mp{};
  mp.partial = p.partial;
  mp.vc = f.vc;
  mp.o = f.o;
  mp.kv_heads = f.kv_heads;
  mp.group = f.group;
  mp.q_len = f.q_len;
  mp.head_dim = f.head_dim;
  mp.splits = p.splits_total;
  mp.middle_splits = middle_splits;
  mp.rec = p.rec;
  mp.DK = DK;
  mp.MP = MP;
  mp.M = f.M;
  mp.C = f.C;
  mp.L = f.L;
  for (int i = 0; i < 256; ++i) {
    mp.kdim[i] = f.kdim[i];
    mp.cdim[i] = f.cdim[i];
  }
  const int64_t ncols = f.group * f.q_len;
  const int64_t kept_blocks = (ncols * DK + kMergeOut - 1) / kMergeOut;
  const int64_t apply_blocks = (f.C + kApplyOut - 1) / kApplyOut;
  // The finishing launches wait (griddepcontrol.wait) before they read a record; the apply
  // blocks copy their Vc rows into shared memory before that (FinishStage; fast_t checks that
  // the rows are whole 16-byte groups of kApplyOut columns).
  static_assert(kEdgeMaxSplits <= kFinishMaxEdgeSplits, "the staged finish holds every edge split");
  const auto fin = fourier_finish_kernel<T>;
  const size_t finish_smem = finish_smem_bytes(p.splits_total, MP) + finish_stage_bytes<T>(MP);
  KVS_CUDA(
      cudaFuncSetAttribute(fin, cudaFuncAttributeMaxDynamicSharedMemorySize, int(finish_smem)));
  const auto finish = [&](int64_t blocks, int64_t kept, int64_t r, bool premerged) {
    const Launch l(c.stream, dim3(unsigned(heads), unsigned(blocks)), kMergeThreads, finish_smem,
                   true);
    KVS_CUDA(cudaLaunchKernelEx(&l.cfg, fin, mp, kept, r, premerged));
    KVS_LAUNCH();
  };
  if (skip & CudaOptions::kSkipFinish) return;
  if (p.splits_total <= kFusedSplits) {
    finish(kept_blocks + apply_blocks, kept_blocks, 0, false);
    return;
  }
  mp.rmerged =
      static_cast<float*>(c.scratch->get(size_t(heads) * kDecCols * MP * sizeof(float), 2));
  const int64_t r_blocks = (ncols * MP + kMergeOut - 1) / kMergeOut;
  finish(kept_blocks + r_blocks, kept_blocks, r_blocks, false);
  finish(apply_blocks, 0, 0, true);
}

// Three K/V stages where the device's shared memory holds them, else two; false (the caller
// falls back to the simple kernel) where not even two fit.
template <class T, int DK, int MT, int HPW>
bool decode_pipelined(Ctx& c, const FParams& f) {
  if (FourierDecodeSmem<T, DK, MT, HPW, 3>::bytes <= c.smem_optin) {
    decode_t<T, DK, MT, HPW, 3>(c, f);
    return true;
  }
  if (FourierDecodeSmem<T, DK, MT, HPW, 2>::bytes <= c.smem_optin) {
    decode_t<T, DK, MT, HPW, 2>(c, f);
    return true;
  }
  return false;
}

template <class T, int D, int DK, int MT>
bool prefill_t(Ctx& c, const FParams& f) {
  using SM = PrefillSmem<T, D, DK, MT>;
  if (SM::bytes > c.smem_optin) return false;
  PrefillParams p{};
  p.q = f.q;
  p.k = f.kk;
  p.v = f.vk;
  p.o = f.o;
  p.kc = f.kc;
  p.vc = f.vc;
  p.ke = f.ke;
  p.ve = f.ve;
  p.kv_heads = f.kv_heads;
  p.group = f.group;
  p.q_len = f.q_len;
  p.tokens = f.tokens;
  p.M = f.M;
  p.L = f.L;
  p.sink = f.sink;
  p.window = f.window;
  p.causal = f.causal;
  p.scale_log2 = f.scale * 1.4426950408889634f;
  for (int i = 0; i < DK; ++i) p.perm[i] = f.kdim[i];
  for (int i = 0; i < D - DK; ++i) p.perm[DK + i] = f.cdim[i];
  KVS_CUDA(cudaFuncSetAttribute(prefill_kernel<T, D, DK, MT>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize, int(SM::bytes)));
  const int64_t qtiles = (f.q_len + kPreRows - 1) / kPreRows;
  prefill_kernel<T, D, DK, MT><<<dim3(unsigned(qtiles), unsigned(f.batch * f.kv_heads * f.group)),
                                 kPreThreads, SM::bytes, c.stream>>>(p);
  KVS_LAUNCH();
  return true;
}

template <class T, int D, int DK, int MT>
bool fast_shape(Ctx& c, const FParams& f) {
  if (f.group * f.q_len <= kDecCols) {
    // The decode's finish stages Vc's rows as 16-byte groups of kApplyOut columns (FinishStage):
    // C is DK here, and Vc from Backend::alloc is aligned, so only a caller's offset pointer
    // falls back to the simple kernel.
    if (f.C % kApplyOut != 0 || reinterpret_cast<uintptr_t>(f.vc) % 16 != 0) return false;
    // Two KV heads share a column set when their query columns fit in half of it.
    if (f.group * f.q_len <= kDecCols / 2) return decode_pipelined<T, DK, MT, 2>(c, f);
    return decode_pipelined<T, DK, MT, 1>(c, f);
  }
  return prefill_t<T, D, DK, MT>(c, f);
}

template <class T>
bool fast_t(Ctx& c, const FParams& f) {
  if (f.M > 256 || f.M <= 0) return false;
  const bool m128 = f.M <= 128;
  if (f.head_dim == 128 && f.DK == 64)
    return m128 ? fast_shape<T, 128, 64, 8>(c, f) : fast_shape<T, 128, 64, 16>(c, f);
  if (f.head_dim == 64 && f.DK == 32)
    return m128 ? fast_shape<T, 64, 32, 8>(c, f) : fast_shape<T, 64, 32, 16>(c, f);
  return false;
}

}  // namespace

void fourier_attention(Ctx& c, const AttentionArgs& a, const FourierLayout& f, const void* q,
                       const FourierPtrs& k, const FourierPtrs& v, void* o) {
  check_attention(a);
  if (a.batch == 0) return;
  const FParams p = make_params(a, f, q, k, v, o);
  if (!c.opt.simple_attention && a.dtype != DType::f32) {
    if (a.dtype == DType::bf16 && fast_t<bf16>(c, p)) return;
    if (a.dtype == DType::f16 && fast_t<f16>(c, p)) return;
  }
  switch (a.dtype) {
    case DType::f32:
      return simple_t<float>(c, p);
    case DType::bf16:
      return simple_t<bf16>(c, p);
    case DType::f16:
      return simple_t<f16>(c, p);
  }
}

bool decode_timeline_built() {
#if defined(KVSCOPE_CUDA_TIMELINE) && KVSCOPE_CUDA_TIMELINE
  return true;
#else
  return false;
#endif
}

void set_decode_timeline(Ctx& c, uint64_t* stamps) {
#if defined(KVSCOPE_CUDA_TIMELINE) && KVSCOPE_CUDA_TIMELINE
  // After the launches before it on the stream, so a decode enqueued earlier keeps its setting.
  KVS_CUDA(cudaMemcpyToSymbolAsync(g_decode_timeline, &stamps, sizeof stamps, 0,
                                   cudaMemcpyHostToDevice, c.stream));
  KVS_CUDA(cudaStreamSynchronize(c.stream));
#else
  (void)c;
  (void)stamps;
  throw std::runtime_error(
      "decode timeline: this build has no stamps (configure with -DKVSCOPE_CUDA_TIMELINE=ON)");
#endif
}

}  // namespace kvscope::kernels::cuda
