// Spectral compression and reconstruction of one K or V tensor (backend.h, ops 1 and 2), fused:
// the orthonormal DCT-II over the middle tokens is a tensor-core GEMM against a basis that each
// block generates in shared memory as it goes (no table in memory, any L), and the copies of
// the kept dims and the sink/window tokens run concurrently on a second stream (they touch other
// bytes, so the two overlap compute with memory traffic).
//
// Forward, per head: coeffs[k, c] = sum_n B[k, n] x[n, c], B[k, n] = s_k cos(pi (2n+1) k / (2L)).
// B[k, L-1-n] = (-1)^k B[k, n], so with u = x_n + x_{L-1-n} and v = x_n - x_{L-1-n} (n < L/2)
// even k need only u and odd k only v: half the multiply-adds and half the basis of a direct
// GEMM. Columns of the GEMM are (head, compressed dim) pairs, so one basis tile serves 128
// columns; the token axis is split over blocks (split-K, f32 atomics into a scratch buffer).
// Inverse, per head: x[n, c] = sum_k B[k, n] coeffs[k, c], one output tile and its mirror
// (x[L-1-n] from the same basis tile, even and odd k summed separately) per block.
// f32 tensors use bf16 tensor cores with each operand split in a high and a low bf16 part
// (3 products: hi*hi + hi*lo + lo*hi), which keeps about 16 bits of each operand.
#include <algorithm>
#include <climits>
#include <cmath>
#include <stdexcept>
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kept_copy.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/wgmma.cuh"

namespace kvscope::kernels::cuda {

std::vector<int> kept_dims(int64_t head_dim, const std::vector<int64_t>& compressed) {
  std::vector<int> out;
  size_t j = 0;
  for (int64_t d = 0; d < head_dim; ++d) {
    if (j < compressed.size() && compressed[j] == d) {
      ++j;
      continue;
    }
    out.push_back(static_cast<int>(d));
  }
  return out;
}

namespace {

constexpr int kMaxHeadDim = 256;

// Where each of `n` columns lives in a row, and whether groups of `vec` columns are contiguous
// and aligned so they can move as one 16-byte vector.
struct DimTable {
  int16_t off[kMaxHeadDim];
};

bool groups_contiguous(const std::vector<int>& dims, int vec, int64_t row_elems) {
  if (row_elems % vec != 0 || dims.size() % vec != 0) return false;
  for (size_t i = 0; i < dims.size(); i += vec) {
    if (dims[i] % vec != 0) return false;
    for (int e = 1; e < vec; ++e)
      if (dims[i + e] != dims[i] + e) return false;
  }
  return true;
}

DimTable make_table(const std::vector<int>& dims) {
  DimTable t{};
  for (size_t i = 0; i < dims.size(); ++i) t.off[i] = static_cast<int16_t>(dims[i]);
  return t;
}

std::vector<int> to_int(const std::vector<int64_t>& v) { return {v.begin(), v.end()}; }

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// ---- kept and edge copies -----------------------------------------------------------------
// kept[h, t, i] <-> kv[h, t, kept_dim[i]]; one thread per 16-byte group (or per element).
template <class T, bool kVec, bool kToKv>
__global__ void kept_copy_kernel(int64_t rows, int64_t D, int64_t Dk, const T* src, T* dst,
                                 DimTable kd) {
  constexpr int G = kVec ? Vec16<T>::n : 1;
  const int64_t per_row = Dk / G;
  const int64_t total = rows * per_row;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / per_row;
    const int j = static_cast<int>(i % per_row) * G;
    const int64_t kv_off = row * D + kd.off[j];
    const int64_t kept_off = row * Dk + j;
    if constexpr (kVec) {
      if constexpr (kToKv)
        *reinterpret_cast<uint4*>(dst + kv_off) = ldg16_stream(src + kept_off);
      else
        *reinterpret_cast<uint4*>(dst + kept_off) = ldg16_stream(src + kv_off);
    } else {
      if constexpr (kToKv)
        dst[kv_off] = src[kept_off];
      else
        dst[kept_off] = src[kv_off];
    }
  }
}

// The kept-dims copy done by a transform kernel's own blocks. The transforms are bound by
// instruction issue and the copy by memory, but as separate kernels they mostly do not overlap:
// the first to launch fills the SMs, the other gets them as its blocks drain. So each transform
// block also moves a share of
// the copy, a few passes of whole rows per step (kept_copy.h: which rows, when), through a ring of
// cp.async slots in shared memory that travels in the same commit groups as the step's tiles. A
// thread keeps one 16-byte group of the row (its column offsets are fixed), so a step costs it no
// division.
struct KeptCopy {
  const void* src = nullptr;  // kv (compress) or kept (reconstruct)
  void* dst = nullptr;
  int64_t rows = 0;  // token rows of all heads (the job; `schedule` is set by the launch)
  int per_row = 0;   // 16-byte groups per row (Dk / G)
  int64_t D = 0, Dk = 0;
  bool to_kv = false;
  KeptSchedule schedule;  // no copy in the kernel without one (its loops then do nothing)
  DimTable kd;
};

template <class T, int kThreadsPerBlock, int kRing = kCopyMax>
struct KeptMover {
  static constexpr int G = Vec16<T>::n;
  const KeptCopy& k;
  uint4* ring;  // [stages][kRing][threads]
  int64_t block, blocks;
  int64_t src_col, dst_col;  // the thread's group in a source and a destination row
  int64_t src_row, dst_row;  // row lengths
  int r0;                    // the thread's row in a pass, or -1

  __device__ KeptMover(const KeptCopy& job, void* ring_smem) : k(job) {
    ring = static_cast<uint4*>(ring_smem);
    blocks = int64_t(gridDim.x) * gridDim.y * gridDim.z;
    block = (int64_t(blockIdx.z) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const int j = k.schedule.group_of(static_cast<int>(threadIdx.x)) * G;
    r0 = k.schedule.slot_of(static_cast<int>(threadIdx.x));
    const int64_t kv_col = k.kd.off[j], kept_col = j;
    src_col = k.to_kv ? kept_col : kv_col;
    dst_col = k.to_kv ? kv_col : kept_col;
    src_row = k.to_kv ? k.Dk : k.D;
    dst_row = k.to_kv ? k.D : k.Dk;
  }
  __device__ const T* from(int64_t r) const {
    return static_cast<const T*>(k.src) + r * src_row + src_col;
  }
  __device__ T* to(int64_t r) const { return static_cast<T*>(k.dst) + r * dst_row + dst_col; }
  __device__ uint4* slot(int stage, int e) const {
    return ring + (stage * kRing + e) * kThreadsPerBlock + threadIdx.x;
  }
  // Step s's rows into ring stage `stage` (part of the caller's commit group).
  __device__ void issue(int64_t s, int stage) const {
    k.schedule.rows_of_step(blocks, block, r0, s,
                            [&](int e, int64_t r) { cp_async16(slot(stage, e), from(r), true); });
  }
  // After the wait that covers step s's group: its slots to their rows. Each thread reads only
  // the slots it filled, so no barrier is needed.
  __device__ void drain(int64_t s, int stage) const {
    k.schedule.rows_of_step(blocks, block, r0, s, [&](int e, int64_t r) {
      *reinterpret_cast<uint4*>(to(r)) = *slot(stage, e);
    });
  }
  // What the loop did not cover, copied directly.
  __device__ void finish(int64_t steps_done) const {
    k.schedule.rows_after_loop(blocks, block, r0, steps_done, [&](int64_t r) {
      *reinterpret_cast<uint4*>(to(r)) = ldg16_stream(from(r));
    });
  }
};

// edge[h, r, c] <-> kv[h, edge_token(r), dim[c]]; rows without a token are zero in `edge`.
template <class T, bool kToKv>
__global__ void edge_copy_kernel(int64_t heads, int64_t T_, int64_t D, int64_t sink, int64_t window,
                                 int C, const T* src, T* dst, DimTable cd) {
  const int64_t E = sink + window;
  const int64_t total = heads * E * C;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(i % C);
    const int64_t r = (i / C) % E, h = i / (C * E);
    const int64_t tok = T_ <= E ? (r < T_ ? r : -1) : (r < sink ? r : T_ - window + (r - sink));
    if constexpr (kToKv) {
      if (tok >= 0) dst[(h * T_ + tok) * D + cd.off[c]] = src[i];
    } else {
      dst[i] = tok >= 0 ? src[(h * T_ + tok) * D + cd.off[c]] : from_f32<T>(0.f);
    }
  }
}

int grid_for(int64_t items, int threads, int sms) {
  const int64_t b = (items + threads - 1) / threads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(b, int64_t(sms) * 16)));
}

// Whether the kept dims move as whole aligned 16-byte vectors of T.
template <class T>
bool kept_vectorizable(const std::vector<int>& kd, int64_t head_dim, const void* kv,
                       const void* kept) {
  return groups_contiguous(kd, Vec16<T>::n, head_dim) && aligned16(kv) && aligned16(kept);
}

// The kept-dims copy as a job for the transform kernels, or none (no rows) when its groups are
// not whole aligned 16-byte vectors; the side-stream kernel then does it. The job's schedule
// is set by the launch, which knows its grid.
template <class T>
KeptCopy kept_copy_job(const KvShape& s, const FourierLayout& f, const void* kv, void* kept,
                       bool to_kv) {
  const std::vector<int> kd = kept_dims(s.head_dim, f.compressed_dims);
  constexpr int G = Vec16<T>::n;
  KeptCopy k;
  if (kd.empty() || !kept_vectorizable<T>(kd, s.head_dim, kv, kept)) return k;
  k.src = to_kv ? kept : kv;
  k.dst = to_kv ? const_cast<void*>(kv) : kept;
  k.to_kv = to_kv;
  k.D = s.head_dim;
  k.Dk = static_cast<int64_t>(kd.size());
  k.per_row = static_cast<int>(k.Dk / G);
  k.rows = s.batch * s.kv_heads * s.tokens;
  k.kd = make_table(kd);
  return k;
}

// Spreads the job over a grid of `blocks` blocks of `threads` threads whose longest block runs
// `steps` steps, with a ring of `ring` passes (no copy without a job).
void schedule_copy(KeptCopy& k, int64_t blocks, int threads, int64_t steps, int ring = kCopyMax) {
  k.schedule = cuda::spread(k.rows, k.per_row, blocks, threads, steps, ring);
}

template <class T>
void split_merge_t(Ctx& c, const KvShape& s, const FourierLayout& f, const void* kv_in,
                   void* kv_out, const FourierPtrs& p, bool to_kv, bool with_kept = true) {
  const int64_t heads = s.batch * s.kv_heads;
  const std::vector<int> kd = kept_dims(s.head_dim, f.compressed_dims);
  const int64_t Dk = static_cast<int64_t>(kd.size());
  const int C = static_cast<int>(f.compressed_dims.size());
  const DimTable kt = make_table(kd), ct = make_table(to_int(f.compressed_dims));
  constexpr int G = Vec16<T>::n;
  const void* kv = to_kv ? kv_out : kv_in;
  const bool vec = kept_vectorizable<T>(kd, s.head_dim, kv, p.kept);
  const int64_t rows = heads * s.tokens;
  if (Dk > 0 && with_kept) {
    const int64_t items = rows * (vec ? Dk / G : Dk);
    const int grid = grid_for(items, 256, c.sms);
    auto* kvp = static_cast<T*>(to_kv ? kv_out : const_cast<void*>(kv_in));
    auto* kp = static_cast<T*>(p.kept);
    if (to_kv) {
      if (vec)
        kept_copy_kernel<T, true, true>
            <<<grid, 256, 0, c.stream>>>(rows, s.head_dim, Dk, kp, kvp, kt);
      else
        kept_copy_kernel<T, false, true>
            <<<grid, 256, 0, c.stream>>>(rows, s.head_dim, Dk, kp, kvp, kt);
    } else {
      if (vec)
        kept_copy_kernel<T, true, false>
            <<<grid, 256, 0, c.stream>>>(rows, s.head_dim, Dk, kvp, kp, kt);
      else
        kept_copy_kernel<T, false, false>
            <<<grid, 256, 0, c.stream>>>(rows, s.head_dim, Dk, kvp, kp, kt);
    }
    KVS_LAUNCH();
  }
  if (C > 0 && f.edge() > 0) {
    const int64_t items = heads * f.edge() * C;
    const int grid = grid_for(items, 256, c.sms);
    if (to_kv)
      edge_copy_kernel<T, true>
          <<<grid, 256, 0, c.stream>>>(heads, s.tokens, s.head_dim, f.sink, f.window, C,
                                       static_cast<const T*>(p.edge), static_cast<T*>(kv_out), ct);
    else
      edge_copy_kernel<T, false>
          <<<grid, 256, 0, c.stream>>>(heads, s.tokens, s.head_dim, f.sink, f.window, C,
                                       static_cast<const T*>(kv_in), static_cast<T*>(p.edge), ct);
    KVS_LAUNCH();
  }
}

// ---- the DCT GEMMs ------------------------------------------------------------------------
constexpr int kThreads = 256;  // 8 warps: 2 (m) x 4 (n), each a 64 x 32 tile
constexpr int BM = 128, BN = 128, BK = 32;
constexpr int WTM = 64, WTN = 32;
constexpr int kPadB = 8;  // 16-bit elements of padding per shared-memory row: no bank conflicts

template <class T>
struct Mma {  // tensor-core operand type: T itself for 16-bit T, bf16 hi/lo pairs for float
  using type = T;
  static constexpr bool split = false;
};
template <>
struct Mma<float> {
  using type = bf16;
  static constexpr bool split = true;
};

// Element (head, row, c) of a GEMM operand in memory: base + head*hs + row*rs + off[c].
struct Operand {
  const void* base;
  int64_t head_stride, row_stride;
};

// The DCT basis w_k cos(pi (2n + 1) k / 2L), k < kpad, n < npad, row-major by k (row stride
// `stride` elements), zero for k >= kmax and n >= L: what the 16-bit transform kernels read their
// basis tiles from (kTable) instead of generating them in every block.
// For float the table holds the basis as bf16 hi parts (data) and what their rounding left (lo),
// for the warpgroup forward kernel's three products.
struct BasisTable {
  const void* data = nullptr;
  const void* lo = nullptr;  // float
  int64_t stride = 0;
};

struct FwdParams {
  Operand x;  // middle tokens of kv: row n is token sink + n
  int64_t heads, L, M, kmax, half, rows_per_split;
  int C;      // compressed dims per head (GEMM columns per head)
  bool vec;   // 16-byte column groups
  float* ws;  // [heads][M][C], accumulated
  DimTable dims;
  KeptCopy copy;
  BasisTable basis;  // kTable
};

// Stores 8 f32 values as the MMA type (or as hi and lo bf16 parts) into shared memory.
template <class TM, bool kSplit>
__device__ __forceinline__ void store8(TM* hi, TM* lo, const float (&v)[8]) {
  uint4 h;
  h.x = pack2<TM>(v[0], v[1]);
  h.y = pack2<TM>(v[2], v[3]);
  h.z = pack2<TM>(v[4], v[5]);
  h.w = pack2<TM>(v[6], v[7]);
  *reinterpret_cast<uint4*>(hi) = h;
  if constexpr (kSplit) {
    const TM* hv = reinterpret_cast<const TM*>(&h);
    float r[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) r[e] = v[e] - to_f32(hv[e]);
    uint4 l;
    l.x = pack2<TM>(r[0], r[1]);
    l.y = pack2<TM>(r[2], r[3]);
    l.z = pack2<TM>(r[4], r[5]);
    l.w = pack2<TM>(r[6], r[7]);
    *reinterpret_cast<uint4*>(lo) = l;
  }
}

// Two f32 values as adjacent elements of T in shared memory, one store (p: an even element).
template <class T>
__device__ __forceinline__ void store_pair(T* p, float a, float b) {
  if constexpr (sizeof(T) == 2)
    *reinterpret_cast<uint32_t*>(p) = pack2<T>(a, b);
  else
    *reinterpret_cast<float2*>(p) = make_float2(a, b);
}

// The column of the (head, c) flattening that this thread loads in every tile: with 256
// threads and 128 columns per tile, thread i always moves column (i % (BN / G)) * G (16-byte
// groups) or i % BN (elements), so its address is computed once, not per step.
template <class T>
struct ColumnSource {
  const T* base = nullptr;  // element (row 0) of the thread's column; null past the last head
  int row0 = 0;             // first tile row of the thread; then every kThreads / per_row rows
};

template <class T>
__device__ __forceinline__ ColumnSource<T> column_source(const Operand& op, int64_t col0,
                                                         int64_t heads, int C, bool vec,
                                                         const DimTable& dims) {
  constexpr int G = Vec16<T>::n;
  const int per_row = vec ? BN / G : BN;
  const int cl = (threadIdx.x % per_row) * (vec ? G : 1);
  const int col = static_cast<int>(col0) + cl;
  const int h = col / C, c = col - h * C;
  ColumnSource<T> s;
  s.row0 = threadIdx.x / per_row;
  if (h < heads) s.base = static_cast<const T*>(op.base) + h * op.head_stride + dims.off[c];
  return s;
}

// Shared-memory row of operand row r0 + row: in order, or (kEvenOdd) the even rows first, then
// the odd ones, so that each k16 half of the tile holds one parity.
template <bool kEvenOdd>
__device__ __forceinline__ int tile_row(int row) {
  return kEvenOdd ? (row % 2) * (BK / 2) + row / 2 : row;
}

// One kRows x BN tile: operand rows [r0, r0 + kRows), rows outside [rlo, rhi) zero, into shared
// memory with row stride `stride` elements.
template <class T, bool kEvenOdd = false, int kRows = BK>
__device__ __forceinline__ void load_tile(T* dst, int stride, const ColumnSource<T>& cs,
                                          int64_t row_stride, int64_t r0, int64_t rlo, int64_t rhi,
                                          bool vec) {
  static_assert(!kEvenOdd || kRows == BK, "the even/odd row order is that of a BK tile");
  constexpr int G = Vec16<T>::n;
  if (vec) {
    const int cl = (threadIdx.x % (BN / G)) * G;
    constexpr int rows_per_pass = kThreads / (BN / G);
#pragma unroll
    for (int row = cs.row0; row < kRows; row += rows_per_pass) {
      const int64_t r = r0 + row;
      const bool ok = cs.base != nullptr && r >= rlo && r < rhi;
      cp_async16(dst + tile_row<kEvenOdd>(row) * stride + cl, ok ? cs.base + r * row_stride : dst,
                 ok);
    }
  } else {
    const int cl = threadIdx.x % BN;
    constexpr int rows_per_pass = kThreads / BN;
    for (int row = cs.row0; row < kRows; row += rows_per_pass) {
      const int64_t r = r0 + row;
      const bool ok = cs.base != nullptr && r >= rlo && r < rhi;
      dst[tile_row<kEvenOdd>(row) * stride + cl] = ok ? cs.base[r * row_stride] : from_f32<T>(0.f);
    }
  }
}

// 8 consecutive elements of shared memory as floats.
template <class T>
__device__ __forceinline__ void load8f(const T* p, float (&v)[8]) {
  if constexpr (sizeof(T) == 2) {
    Vec16<T> x;
    x.u = *reinterpret_cast<const uint4*>(p);
#pragma unroll
    for (int e = 0; e < 8; ++e) v[e] = to_f32(x.e[e]);
  } else {
    const float4 a = *reinterpret_cast<const float4*>(p);
    const float4 b = *reinterpret_cast<const float4*>(p + 4);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  }
}

// 16 basis values w cos(a + e d), e < 16, as two independent chains of 8 (starting at a and at
// a + 8d). Each chain uses the three-term (Chebyshev) recurrence
//   cos(x + d) = 2 cos(d) cos(x) - cos(x - d),
// one multiply-add per value; its rounding errors grow at most linearly (<= 8 * 6e-8 here).
__device__ __forceinline__ void basis16(float c, float s, float cd, float sd, float c8, float s8,
                                        float w, float (&v)[16]) {
  const float ca = w * c, sa = w * s;
  const float cb = ca * c8 - sa * s8, sb = sa * c8 + ca * s8;
  float pa = ca * cd + sa * sd, pb = cb * cd + sb * sd;  // w cos(x - d)
  float xa = ca, xb = cb;
  const float two_cd = 2.f * cd;
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    v[e] = xa;
    v[e + 8] = xb;
    const float na = fmaf(two_cd, xa, -pa), nb = fmaf(two_cd, xb, -pb);
    pa = xa;
    pb = xb;
    xa = na;
    xb = nb;
  }
}

// The k of row r of a basis tile of `rows` rows that holds the even k of its range in the first
// half and the odd ones in the second (each k16 half of an MMA step then holds one parity).
__device__ __forceinline__ int even_odd_k(int r, int rows) {
  return r < rows / 2 ? 2 * r : 2 * (r - rows / 2) + 1;
}

// 8 basis values w_k cos(pi phase / 2L + e pi k / L), e < 8, zero from e = lim on, where
// phase = (2n + 1) k mod 4L (exact, in integers) for the first token n: two sincospif, then the
// three-term recurrence from cos(a) and cos(a - d). What dct_basis_kernel stores, and what the
// inverse kernel generates when it has no table.
__device__ __forceinline__ void basis8(int64_t phase, int64_t k, int64_t L, int64_t kmax, int lim,
                                       float (&vals)[8]) {
  float sv, cv, sd, cd;
  sincospif(static_cast<float>(phase) / static_cast<float>(2 * L), &sv, &cv);
  sincospif(static_cast<float>(k % (2 * L)) / static_cast<float>(L), &sd, &cd);
  const float w = k >= kmax ? 0.f : (k == 0 ? 1.f : 1.41421356237309515f);
  float x = w * cv, prev = w * (cv * cd + sv * sd);
  const float two_cd = 2.f * cd;
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    vals[e] = e < lim ? x : 0.f;
    const float nx = fmaf(two_cd, x, -prev);
    prev = x;
    x = nx;
  }
}

template <class T>
constexpr int raw_stride() {
  return BN + 16 / int(sizeof(T));
}
// Whether the forward kernel forms u and v in registers (warp_mma_mirror) instead of staging
// them in shared memory: 16-bit types of the one-pass variant (f32 needs its hi/lo split).
template <class T, bool kOnePass>
constexpr bool uv_in_registers() {
  return kOnePass && !Mma<T>::split;
}

// Basis tiles a transform kernel keeps in shared memory: one per stage from the table, or the one
// it generates (as hi and lo parts for float).
template <class T, bool kTable>
constexpr size_t basis_tiles(int stages) {
  return kTable ? size_t(stages) : Mma<T>::split ? 2 : 1;
}

// Shared memory of the forward kernel, before the copy ring.
template <class T, bool kOnePass, bool kTable>
constexpr size_t fwd_smem(int stages) {
  constexpr bool split = Mma<T>::split;
  constexpr int uv = uv_in_registers<T, kOnePass>() ? 0 : (split ? 4 : 2);
  return size_t(stages) * 2 * BK * raw_stride<T>() * sizeof(T) +  // x and mirror rows
         uv * BK * (BN + kPadB) * 2 +                             // u, v (hi, lo)
         // basis (hi, lo), generated, or one tile per stage from the table
         basis_tiles<T, kTable>(stages) * BM * (BK + kPadB) * 2;
}
constexpr size_t ring_smem(int stages, int ring = kCopyMax) {
  return size_t(stages) * ring * kThreads * 16;
}

// B fragments j and j + 1 from one ldmatrix.x4.trans over k rows 0-15 of two 8-column blocks.
__device__ __forceinline__ void set_b_pair(uint32_t (&b)[4][2], int j, const uint32_t (&r)[4]) {
  b[j][0] = r[0];
  b[j][1] = r[1];
  b[j + 1][0] = r[2];
  b[j + 1][1] = r[3];
}

template <class TM>
__device__ __forceinline__ void load_a(uint32_t (&a)[4][4], const TM* A, int lda, int m0, int kk) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int i = 0; i < 4; ++i)
    ldmatrix_x4(a[i], A + (m0 + 16 * i + lane % 16) * lda + kk + (lane / 16) * 8);
}

// The warp's 64 x 32 tile: acc += A[rows, BK] * B[BK, cols] for one BK step (two k16 steps).
// A is row-major [m][k] (lda), B row-major [k][n] (ldb).
template <class TM>
__device__ __forceinline__ void warp_mma(float (&acc)[4][4][4], const TM* A, int lda, const TM* B,
                                         int ldb, int m0, int n0) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int kk = 0; kk < BK; kk += 16) {
    uint32_t a[4][4], b[4][2];
    load_a(a, A, lda, m0, kk);
#pragma unroll
    for (int j = 0; j < 4; j += 2) {
      uint32_t r[4];
      ldmatrix_x4_trans(
          r, B + (kk + (lane % 8) + ((lane / 8) % 2) * 8) * ldb + n0 + 8 * j + (lane / 16) * 8);
      set_b_pair(b, j, r);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) mma16816<TM>(acc[i][j], a[i], b[j]);
  }
}

// The same product for 16-bit types with B = u (sum) or v (difference) formed in registers: X
// holds tokens n0 + r in row r, Xm the mirror partner of token n0 + r in row BK - 1 - r. Each
// lane points ldmatrix at the mirror row of the row it loads from X, so the two fragments pair
// element by element and one packed add or subtract makes the operand (rounded once, as a
// staged u or v would be).
template <class TM>
__device__ __forceinline__ void warp_mma_mirror(float (&acc)[4][4][4], const TM* A, int lda,
                                                const TM* X, const TM* Xm, int ldx, int m0, int n0,
                                                bool sum) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int kk = 0; kk < BK; kk += 16) {
    uint32_t a[4][4], b[4][2];
    load_a(a, A, lda, m0, kk);
    const int kr = kk + (lane % 8) + ((lane / 8) % 2) * 8;
#pragma unroll
    for (int j = 0; j < 4; j += 2) {
      const int col = n0 + 8 * j + (lane / 16) * 8;
      uint32_t r[4], m[4];
      ldmatrix_x4_trans(r, X + kr * ldx + col);
      ldmatrix_x4_trans(m, Xm + (BK - 1 - kr) * ldx + col);
#pragma unroll
      for (int e = 0; e < 4; ++e) r[e] = sum ? add2<TM>(r[e], m[e]) : sub2<TM>(r[e], m[e]);
      set_b_pair(b, j, r);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) mma16816<TM>(acc[i][j], a[i], b[j]);
  }
}

// kOnePass: the kept copy when p.copy has a job, and u, v in registers for 16-bit types, held to
// two blocks per SM (16-bit types always run it; float where it has a kept copy to do). A
// minimum of 0 blocks leaves the register budget to ptxas (an explicit 1 gives the kernel 151
// registers instead of 128, and one block per SM instead of two).
// kTable: basis tiles from p.basis (16-bit types), loaded with each step's rows.
template <class T, int kStages, bool kOnePass, bool kTable>
__global__ void __launch_bounds__(kThreads, uv_in_registers<T, kOnePass>() ? 2 : 0)
    dct_forward_kernel(const FwdParams p) {
  using TM = typename Mma<T>::type;
  constexpr bool kSplit = Mma<T>::split;
  static_assert(!(kTable && kSplit), "the basis table holds one 16-bit part");
  constexpr bool kRegUV = uv_in_registers<T, kOnePass>();
  constexpr int RS = raw_stride<T>();
  constexpr int US = BN + kPadB, AS = BK + kPadB;
  extern __shared__ __align__(16) unsigned char smem[];
  T* raw = reinterpret_cast<T*>(smem);
  TM* ub = reinterpret_cast<TM*>(smem + size_t(kStages) * 2 * BK * RS * sizeof(T));  // !kRegUV
  TM* vb = ub + BK * US;
  TM* ub_lo = vb + BK * US;  // kSplit
  TM* vb_lo = ub_lo + BK * US;
  TM* ab = ub + (kRegUV ? 0 : kSplit ? 4 : 2) * BK * US;
  TM* ab_lo = ab + BM * AS;
  const KeptMover<T, kThreads> mover(p.copy, smem + fwd_smem<T, kOnePass, kTable>(kStages));

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp / 4, wn = warp % 4;
  const int64_t k0 = int64_t(blockIdx.x) * BM;
  const int64_t col0 = int64_t(blockIdx.y) * BN;
  const int64_t nb = int64_t(blockIdx.z) * p.rows_per_split;
  const int64_t ne = min(nb + p.rows_per_split, p.half);
  const int steps = static_cast<int>((ne - nb + BK - 1) / BK);

  // Basis generator: thread owns row r of the A tile (k even in the first half, odd in the
  // second) and 16 consecutive tokens of each step; its phase advances by 2*BK*k mod 4L.
  const int gr = threadIdx.x / 2, gj = (threadIdx.x % 2) * 16;
  const int64_t gk = k0 + even_odd_k(gr, BM);
  const int64_t L4 = 4 * p.L;
  int64_t phase = ((2 * (nb + gj) + 1) * gk) % L4;
  const int64_t phase_step = (2 * BK * gk) % L4;
  float cd = 0.f, sd = 0.f, c8 = 0.f, s8 = 0.f;
  sincospif(static_cast<float>(gk % (2 * p.L)) / static_cast<float>(p.L), &sd, &cd);
  sincospif(static_cast<float>((16 * gk) % L4) / static_cast<float>(2 * p.L), &s8, &c8);
  const float gw = gk >= p.kmax ? 0.f : (gk == 0 ? 1.f : 1.41421356237309515f);
  const ColumnSource<T> cs = column_source<T>(p.x, col0, p.heads, p.C, p.vec, p.dims);

  auto issue = [&](int s) {
    if (s < steps) {
      const int64_t n0 = nb + int64_t(s) * BK;
      T* dst = raw + size_t(s % kStages) * 2 * BK * RS;
      // rows n0.. of x, and the mirror rows L-n0-BK .. L-n0-1 (row r holds n = n0+BK-1-r);
      // a mirror row is loaded only when its n is in range and differs from the row itself.
      load_tile<T>(dst, RS, cs, p.x.row_stride, n0, nb, ne, p.vec);
      // Mirror row m pairs with n = L-1-m: n < ne means m >= L - ne, and m >= half keeps the
      // middle token of an odd L (its own mirror) from being counted twice.
      load_tile<T>(dst + BK * RS, RS, cs, p.x.row_stride, p.L - n0 - BK, max(p.L - ne, p.half), p.L,
                   p.vec);
      if constexpr (kTable) {
        // Tile row r holds k = k0 + 2r (r < BM/2) or k0 + 2(r - BM/2) + 1: 16-byte groups of
        // tokens n0.. (the table's columns reach past every split's last step).
        const TM* table = static_cast<const TM*>(p.basis.data);
        TM* ad = ab + size_t(s % kStages) * BM * AS;
        constexpr int per_row = BK / 8;
#pragma unroll
        for (int i = threadIdx.x; i < BM * per_row; i += kThreads) {
          const int r = i / per_row, g = (i % per_row) * 8;
          const int64_t k = k0 + even_odd_k(r, BM);
          cp_async16(ad + r * AS + g, table + k * p.basis.stride + n0 + g, true);
        }
      }
      if constexpr (kOnePass) mover.issue(s, s % kStages);
    }
    cp_async_commit();
  };

  float acc[4][4][4] = {};
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(s);

  for (int s = 0; s < steps; ++s) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    issue(s + kStages - 1);
    // u, v of this step's rows (f32 arithmetic, stored as MMA operands).
    const T* r1 = raw + size_t(s % kStages) * 2 * BK * RS;
    const T* r2 = r1 + BK * RS;
    if constexpr (!kRegUV) {
      for (int i = threadIdx.x; i < BK * BN / 8; i += kThreads) {
        const int row = i / (BN / 8), cg = (i % (BN / 8)) * 8;
        float u[8], v[8], a[8], b[8];
        load8f(r1 + row * RS + cg, a);
        load8f(r2 + (BK - 1 - row) * RS + cg, b);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          u[e] = a[e] + b[e];
          v[e] = a[e] - b[e];
        }
        store8<TM, kSplit>(ub + row * US + cg, ub_lo + row * US + cg, u);
        store8<TM, kSplit>(vb + row * US + cg, vb_lo + row * US + cg, v);
      }
    }
    // The basis tile: generated, or this step's tile from the table (already waited for).
    const TM* at = kTable ? ab + size_t(s % kStages) * BM * AS : ab;
    if constexpr (!kTable) {
      float sv, cv;
      sincospif(static_cast<float>(phase) / static_cast<float>(2 * p.L), &sv, &cv);
      phase += phase_step;
      if (phase >= L4) phase -= L4;
      float vals[16];
      basis16(cv, sv, cd, sd, c8, s8, gw, vals);
      store8<TM, kSplit>(ab + gr * AS + gj, ab_lo + gr * AS + gj,
                         *reinterpret_cast<const float(*)[8]>(vals));
      store8<TM, kSplit>(ab + gr * AS + gj + 8, ab_lo + gr * AS + gj + 8,
                         *reinterpret_cast<const float(*)[8]>(vals + 8));
    }
    // Nothing to wait for when the step wrote no shared memory (table basis, u/v in registers).
    if constexpr (!(kTable && kRegUV)) __syncthreads();
    if constexpr (kRegUV) {
      warp_mma_mirror<TM>(acc, at, AS, r1, r2, RS, wm * WTM, wn * WTN, wm == 0);
    } else {
      const TM* bop = wm == 0 ? ub : vb;
      warp_mma<TM>(acc, at, AS, bop, US, wm * WTM, wn * WTN);
      if constexpr (kSplit) {
        const TM* bop_lo = wm == 0 ? ub_lo : vb_lo;
        warp_mma<TM>(acc, ab, AS, bop_lo, US, wm * WTM, wn * WTN);
        warp_mma<TM>(acc, ab_lo, AS, bop, US, wm * WTM, wn * WTN);
      }
    }
    if constexpr (kOnePass) mover.drain(s, s % kStages);
  }
  cp_async_wait<0>();
  if constexpr (kOnePass) mover.finish(steps);

  // Epilogue: add the partial sums into ws[head][k][c].
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int h2 = 0; h2 < 2; ++h2) {
      const int r = wm * WTM + 16 * i + g + 8 * h2;
      const int64_t k = k0 + even_odd_k(r, BM);
      if (k >= p.kmax) continue;
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int col = static_cast<int>(col0) + wn * WTN + 8 * j + 2 * t + e;
          const int h = col / p.C;
          if (h >= p.heads) continue;
          const int c = col - h * p.C;
          atomicAdd(p.ws + (int64_t(h) * p.M + k) * p.C + c, acc[i][j][2 * h2 + e]);
        }
    }
}

// ---- the forward GEMM with warpgroup MMA (sm_90a) -----------------------------------------
// The product of dct_forward_kernel with a basis table, transposed so that the mirror sums are
// the register operand: per head column c (GEMM row) and coefficient k (GEMM column),
// acc[c][k] += u[c][n] B[k][n] for even k and v[c][n] B[k][n] for odd k. Each of the two
// warpgroups takes 64 columns and all kWgBM coefficients of the block, so one basis tile per
// step serves 128 columns and both parities with two m64n128k16 products per k16 and warpgroup,
// where the mma.sync kernel issues 32 mma.sync per k16 and warp for the same work. The basis
// tile is [kWgBM rows (k: even in the first half, odd in the second) x WgFwd::bk tokens],
// swizzled as wgmma.cuh describes (one swizzle row per basis row), read K-major.
//  - 16-bit types: u and v come from ldmatrix at mirrored rows as in warp_mma_mirror; 64-token
//    steps (128-byte rows), two stages.
//  - float: u and v are summed in f32 from scalar shared-memory loads straight into the fragment
//    layout and split into bf16 hi and lo parts; the table holds the basis as hi and lo parts
//    too, and each product is hi*hi + lo*hi + hi*lo (three wgmma), as dct_forward_kernel does
//    with mma.sync. 32-token steps (64-byte rows), three stages.
// One block per SM.
constexpr int kWgBM = 256;  // coefficients per block: 128 even and 128 odd

template <class T>
struct WgFwd {
  static constexpr bool split = Mma<T>::split;
  static constexpr int bk = split ? 32 : 64;  // tokens per step: one swizzle row of the basis
  static constexpr int stages = split ? 3 : 2;
  static constexpr int parts = split ? 2 : 1;  // basis parts: hi (and lo)
  static constexpr int ring = split ? kCopyMax : kCopyMaxWide;
  static constexpr uint32_t row_bytes = 2 * bk;                     // of a basis row
  static constexpr size_t basis_bytes = size_t(kWgBM) * row_bytes;  // one part of one stage
  static constexpr size_t x_bytes = size_t(bk) * raw_stride<T>() * sizeof(T);  // x or mirror
  // Alignment slack, the basis tiles (1024-byte aligned), the x and mirror tiles, the ring.
  static constexpr size_t smem(bool copy) {
    return 1024 + size_t(stages) * (parts * basis_bytes + 2 * x_bytes) +
           (copy ? ring_smem(stages, ring) : 0);
  }
  // Byte offset of the 16-byte chunk ch of basis row r in a tile.
  static __device__ __forceinline__ uint32_t offset(int r, int ch) {
    return split ? sw64_offset(r, ch) : sw128_offset(r, ch, kWgBM);
  }
  static __device__ __forceinline__ uint64_t desc(uint32_t addr) {
    return split ? wg_desc(addr, 16, 8 * row_bytes, kSwizzle64) : wg_desc(addr, 16, 8 * row_bytes);
  }
};

#if KVS_HAVE_WGMMA
// a and b as bf16 pairs: hi the rounded values, lo what rounding left.
__device__ __forceinline__ void split_pair(float a, float b, uint32_t& hi, uint32_t& lo) {
  hi = pack2<bf16>(a, b);
  lo = pack2<bf16>(a - __uint_as_float(hi << 16), b - __uint_as_float(hi & 0xffff0000u));
}
#endif

template <class T>
__global__ void __launch_bounds__(kThreads, 1) dct_forward_wgmma_kernel(const FwdParams p) {
#if KVS_HAVE_WGMMA
  using W = WgFwd<T>;
  using TM = typename Mma<T>::type;
  constexpr int RS = raw_stride<T>();
  constexpr int S = W::stages, BKT = W::bk;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const uint32_t raw_addr = smem_addr(smem_raw);
  unsigned char* smem = smem_raw + (((raw_addr + 1023u) & ~1023u) - raw_addr);
  constexpr size_t kBasisStage = W::parts * W::basis_bytes;
  T* xs = reinterpret_cast<T*>(smem + S * kBasisStage);  // stage s: x, then mirror rows
  const KeptMover<T, kThreads, W::ring> mover(p.copy, smem + S * (kBasisStage + 2 * W::x_bytes));

  const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  const int64_t k0 = int64_t(blockIdx.x) * kWgBM;
  const int64_t col0 = int64_t(blockIdx.y) * BN;
  const int64_t nb = int64_t(blockIdx.z) * p.rows_per_split;
  const int64_t ne = min(nb + p.rows_per_split, p.half);
  const int steps = static_cast<int>((ne - nb + BKT - 1) / BKT);
  const ColumnSource<T> cs = column_source<T>(p.x, col0, p.heads, p.C, p.vec, p.dims);

  auto x_tile = [&](int stage, int mirror) { return xs + (size_t(stage) * 2 + mirror) * BKT * RS; };
  // Basis row r: k = k0 + 2r (r < 128) or k0 + 2(r - 128) + 1, tokens n0 .. n0 + BKT - 1 as
  // 16-byte chunks, of each part (the table's rows and columns cover every block's tile). The
  // thread's chunk j is row threadIdx.x / kChunks + j kRowsPerJ, chunk threadIdx.x % kChunks;
  // its offset in a part of the table, but for n0, is fixed (elements; a table is < 2^31).
  constexpr int kChunks = BKT / 8, kRowsPerJ = kThreads / kChunks;
  constexpr int kJ = kWgBM / kRowsPerJ;
  uint32_t boff[kJ];
#pragma unroll
  for (int j = 0; j < kJ; ++j) {
    const int r = threadIdx.x / kChunks + j * kRowsPerJ;
    const int64_t k = k0 + (r < kWgBM / 2 ? 2 * r : 2 * (r - kWgBM / 2) + 1);
    boff[j] = static_cast<uint32_t>(k * p.basis.stride + (threadIdx.x % kChunks) * 8);
  }
  // float's x and mirror rows with 16-byte groups (the f32 kernel is bound by instruction
  // issue, so its row addresses advance by a fixed stride instead of being recomputed): the
  // thread's rows are cs.row0 + 8j of each tile, as load_tile moves them.
  constexpr int kXRows = kThreads / (BN / 4);
  const int64_t step_stride = int64_t(BKT) * p.x.row_stride;
  const int64_t mirror0 = p.L - nb - BKT;  // the first step's first mirror row
  const int xcol = (threadIdx.x % (BN / 4)) * 4;
  auto issue = [&](int s) {
    if (s < steps) {
      const int64_t n0 = nb + int64_t(s) * BKT;
      // As in dct_forward_kernel: x rows n0.., and mirror row r holding n = n0 + BKT - 1 - r.
      if (W::split && p.vec) {
        float* xd = reinterpret_cast<float*>(x_tile(s % S, 0)) + cs.row0 * RS + xcol;
        float* md = reinterpret_cast<float*>(x_tile(s % S, 1)) + cs.row0 * RS + xcol;
        // Past the last head (no base) every row is zero; the addresses are then of head 0.
        const bool have = cs.base != nullptr;
        const float* xb = static_cast<const float*>(have ? cs.base : p.x.base);
        const float* xr = xb + (n0 + cs.row0) * p.x.row_stride;
        const float* mr = xb + (mirror0 + cs.row0) * p.x.row_stride - int64_t(s) * step_stride;
        const int64_t mlo = max(p.L - ne, p.half) - (p.L - n0 - BKT);  // first valid mirror row
#pragma unroll
        for (int j = 0; j < BKT / kXRows; ++j) {
          const int row = cs.row0 + j * kXRows;
          const int64_t rs = int64_t(j * kXRows) * p.x.row_stride;
          const bool okx = have && n0 + row < ne, okm = have && row >= mlo;
          cp_async16(xd + j * kXRows * RS, okx ? xr + rs : xd, okx);
          cp_async16(md + j * kXRows * RS, okm ? mr + rs : md, okm);
        }
      } else {
        load_tile<T, false, BKT>(x_tile(s % S, 0), RS, cs, p.x.row_stride, n0, nb, ne, p.vec);
        load_tile<T, false, BKT>(x_tile(s % S, 1), RS, cs, p.x.row_stride, p.L - n0 - BKT,
                                 max(p.L - ne, p.half), p.L, p.vec);
      }
      unsigned char* bt = smem + size_t(s % S) * kBasisStage;
#pragma unroll
      for (int part = 0; part < W::parts; ++part) {
        const TM* table = static_cast<const TM*>(part ? p.basis.lo : p.basis.data) + n0;
#pragma unroll
        for (int j = 0; j < kJ; ++j)
          cp_async16(bt + part * W::basis_bytes +
                         W::offset(threadIdx.x / kChunks + j * kRowsPerJ, threadIdx.x % kChunks),
                     table + boff[j], true);
      }
      mover.issue(s, s % S);
    }
    cp_async_commit();
  };

  float ev[64], od[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) ev[i] = od[i] = 0.f;
#pragma unroll
  for (int s = 0; s < S - 1; ++s) issue(s);

  // 16-bit: the warp's 16 columns and its lanes' ldmatrix rows (as warp_mma_k16 loads an A
  // stored [k][m]). float: the lane's fragment rows (columns) ca, ca + 8 and token pairs 2t, 2t+8.
  const int a_col = 64 * wg + 16 * warp + ((lane / 8) % 2) * 8;
  const int a_row = (lane % 8) + (lane / 16) * 8;
  const int g = lane / 4, t = lane % 4;
  const int ca = 64 * wg + 16 * warp + g;
  constexpr int kK16 = BKT / 16;
  for (int s = 0; s < steps; ++s) {
    const T* X = x_tile(s % S, 0);
    const T* Xm = x_tile(s % S, 1);
    const uint32_t b_even = smem_addr(smem + size_t(s % S) * kBasisStage);
    const uint32_t b_odd = b_even + W::basis_bytes / 2;
    if constexpr (!W::split) {
      cp_async_wait<S - 2>();
      wg_wait<0>();  // this warpgroup's products of the last step, which read the stage reloaded
      wg_fence_operands(ev);
      wg_fence_operands(od);
      __syncthreads();
      issue(s + S - 1);
      uint32_t u[kK16][4], v[kK16][4];
#pragma unroll
      for (int kk = 0; kk < kK16; ++kk) {
        const int kr = 16 * kk + a_row;
        uint32_t r[4], m[4];
        ldmatrix_x4_trans(r, X + kr * RS + a_col);
        ldmatrix_x4_trans(m, Xm + (BKT - 1 - kr) * RS + a_col);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          u[kk][e] = add2<T>(r[e], m[e]);
          v[kk][e] = sub2<T>(r[e], m[e]);
        }
      }
      wg_fence();
#pragma unroll
      for (int kk = 0; kk < kK16; ++kk) {
        wgmma_rs<TM>(ev, u[kk], W::desc(b_even + 32u * kk));
        wgmma_rs<TM>(od, v[kk], W::desc(b_odd + 32u * kk));
      }
      wg_commit();
    } else {
      // Each k16 half of the step is its own commit group, so that one half's fragments are
      // built (shared-memory loads, f32 sums, the hi/lo split) while the other half's six
      // products run: before building half kk, wg_wait<1> leaves only the group just issued
      // in flight, i.e. the last one that read this half's registers is done. The stage that
      // issue() reloads was read by the whole last step, so the reload waits for the second
      // half's wait and a barrier.
      static_assert(kK16 == 2, "two k16 halves per step");
      const uint32_t lo = W::basis_bytes;  // the lo part's tile follows the hi part's
#pragma unroll
      for (int kk = 0; kk < kK16; ++kk) {
        if (kk == 0) cp_async_wait<S - 2>();
        wg_wait<1>();
        wg_fence_operands(ev);
        wg_fence_operands(od);
        __syncthreads();  // kk 0: stage s is visible; kk 1: no product reads the last stage
        if (kk == 1) issue(s + S - 1);
        // Register q of a fragment: column ca + 8 (q % 2), tokens 16 kk + 2t + 8 (q / 2) + {0, 1}.
        uint32_t uh[4], ul[4], vh[4], vl[4];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const int c = ca + 8 * (q % 2), n = 16 * kk + 2 * t + 8 * (q / 2);
          const float x0 = X[n * RS + c], x1 = X[(n + 1) * RS + c];
          const float m0 = Xm[(BKT - 1 - n) * RS + c], m1 = Xm[(BKT - 2 - n) * RS + c];
          split_pair(x0 + m0, x1 + m1, uh[q], ul[q]);
          split_pair(x0 - m0, x1 - m1, vh[q], vl[q]);
        }
        wg_fence();
        wgmma_rs<TM>(ev, uh, W::desc(b_even + 32u * kk));
        wgmma_rs<TM>(ev, ul, W::desc(b_even + 32u * kk));
        wgmma_rs<TM>(ev, uh, W::desc(b_even + lo + 32u * kk));
        wgmma_rs<TM>(od, vh, W::desc(b_odd + 32u * kk));
        wgmma_rs<TM>(od, vl, W::desc(b_odd + 32u * kk));
        wgmma_rs<TM>(od, vh, W::desc(b_odd + lo + 32u * kk));
        wg_commit();
      }
    }
    wg_fence_operands(ev);
    wg_fence_operands(od);
    mover.drain(s, s % S);
  }
  cp_async_wait<0>();
  wg_wait<0>();
  wg_fence_operands(ev);
  wg_fence_operands(od);
  mover.finish(steps);

  // Epilogue: accumulator 4j + e is column (GEMM row) 16 warp + g + 8 (e / 2) and coefficient
  // index i = 8j + 2t + (e % 2), k = k0 + 2i (even) or k0 + 2i + 1 (odd).
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int col = static_cast<int>(col0) + ca + 8 * hr;
    const int h = col / p.C;
    if (h >= p.heads) continue;
    float* ws = p.ws + int64_t(h) * p.M * p.C + (col - h * p.C);
#pragma unroll
    for (int j = 0; j < 16; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int64_t k = k0 + 2 * (8 * j + 2 * t + e);
        if (k < p.kmax) atomicAdd(ws + k * p.C, ev[4 * j + 2 * hr + e]);
        if (k + 1 < p.kmax) atomicAdd(ws + (k + 1) * p.C, od[4 * j + 2 * hr + e]);
      }
  }
#endif
}

template <class T>
__global__ void finalize_kernel(int64_t n, const float* ws, float scale, T* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_f32<T>(ws[i] * scale);
}

struct InvParams {
  Operand coef;  // coeffs[head][k][c]: row k
  int64_t heads, L, M, kmax;
  int C;
  bool vec_in, vec_out;
  void* out;  // kv: element (h, n, c) at out + h*T*D + (sink + n)*D + dims[c]
  int64_t out_head_stride, out_row_stride;
  DimTable dims, ident;
  KeptCopy copy;
  BasisTable basis;  // kTable
};

// Inverse with the mirror symmetry: for n < ceil(L/2), with E_n the sum over even k and O_n over
// odd k of B[k, n] coeffs[k, c],
//   x[n] = E_n + O_n,   x[L-1-n] = E_n - O_n,
// so a block computes BMI tokens n of both sums and writes 2 * BMI rows: half the multiply-adds
// and half the basis of a direct product. The coefficient and basis tiles hold each step's even
// k in their first k16 half and the odd k in the second.
constexpr int BMI = 64;  // tokens n per inverse block (and as many mirrored ones)
constexpr int IWTM = BMI / 2;

template <class T, bool kTable>
constexpr size_t inv_smem(int stages) {
  constexpr bool split = Mma<T>::split;
  const size_t main = size_t(stages) * BK * raw_stride<T>() * sizeof(T) +
                      (split ? 2 : 0) * BK * (BN + kPadB) * 2 +  // coef hi, lo
                      // basis [k][n] (hi, lo), generated, or one tile per stage from the table
                      basis_tiles<T, kTable>(stages) * BK * (BMI + kPadB) * 2;
  const size_t epi = size_t(2 * BMI) * (BN + 16 / sizeof(T)) * sizeof(T);
  return main > epi ? main : epi;
}

// One k16 step (rows kk.. of both operands) of the warp's 32 x 32 tile:
// acc += A[32 rows, k16] * B[k16, 32 cols], A stored as [k][m] (lda), B as [k][n] (ldb).
template <class TM>
__device__ __forceinline__ void warp_mma_k16(float (&acc)[2][4][4], const TM* A, int lda,
                                             const TM* B, int ldb, int m0, int n0, int kk) {
  const int lane = threadIdx.x % 32;
  uint32_t a[2][4], b[4][2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int k = kk + (lane % 8) + (lane / 16) * 8;
    const int m = m0 + 16 * i + ((lane / 8) % 2) * 8;
    ldmatrix_x4_trans(a[i], A + k * lda + m);
  }
#pragma unroll
  for (int j = 0; j < 4; j += 2) {
    uint32_t r[4];
    ldmatrix_x4_trans(
        r, B + (kk + (lane % 8) + ((lane / 8) % 2) * 8) * ldb + n0 + 8 * j + (lane / 16) * 8);
    set_b_pair(b, j, r);
  }
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) mma16816<TM>(acc[i][j], a[i], b[j]);
}

// The inverse kernels' output: staged rows r < BMI hold tokens n0 + r, rows BMI + r their mirrors
// L - 1 - (n0 + r), for the block's BN columns from col0, in shared memory with row stride
// BN + 16 / sizeof(T) elements; written to p.out with whole-row vectors where p.vec_out.
template <class T>
__device__ __forceinline__ void store_staged_rows(const InvParams& p, const T* st, int64_t n0,
                                                  int64_t col0) {
  constexpr int ES = BN + 16 / int(sizeof(T));
  const int64_t half = (p.L + 1) / 2;
  // Output token of staged row r, or -1: rows n < half, and mirrors L-1-n >= half (the middle
  // token of an odd L is written once, as a direct row).
  auto token = [&](int r) -> int64_t {
    const int64_t n = n0 + (r < BMI ? r : r - BMI);
    if (n >= half) return -1;
    if (r < BMI) return n;
    return p.L - 1 - n >= half ? p.L - 1 - n : -1;
  };
  T* out = static_cast<T*>(p.out);
  constexpr int G = Vec16<T>::n;
  if (p.vec_out) {
    // A thread's group (column) is the same in every row it writes: kThreads is a multiple of
    // the groups per row, so its head, dim and base address are computed once.
    constexpr int per_row = BN / G, rows_per_pass = kThreads / per_row;
    static_assert(kThreads % per_row == 0, "fixed column per thread");
    const int cg = (threadIdx.x % per_row) * G;
    const int col = static_cast<int>(col0) + cg, h = col / p.C;
    if (h < p.heads) {
      T* base = out + h * p.out_head_stride + p.dims.off[col - h * p.C];
#pragma unroll 4
      for (int r = threadIdx.x / per_row; r < 2 * BMI; r += rows_per_pass) {
        const int64_t n = token(r);
        if (n >= 0)
          *reinterpret_cast<uint4*>(base + n * p.out_row_stride) =
              *reinterpret_cast<const uint4*>(st + r * ES + cg);
      }
    }
  } else {
    for (int i = threadIdx.x; i < 2 * BMI * BN; i += kThreads) {
      const int r = i / BN, cl = i % BN;
      const int64_t n = token(r);
      const int col = static_cast<int>(col0) + cl, h = col / p.C;
      if (n < 0 || h >= p.heads) continue;
      const int c = col - h * p.C;
      out[h * p.out_head_stride + n * p.out_row_stride + p.dims.off[c]] = st[r * ES + cl];
    }
  }
}

// kOnePass: the kept copy when p.copy has a job (16-bit types with kept dims). kTable: basis
// tiles from p.basis (16-bit types), loaded with each step's coefficients.
template <class T, int kStages, bool kOnePass, bool kTable>
__global__ void __launch_bounds__(kThreads) dct_inverse_kernel(const InvParams p) {
  using TM = typename Mma<T>::type;
  constexpr bool kSplit = Mma<T>::split;
  static_assert(!(kTable && kSplit), "the basis table holds one 16-bit part");
  constexpr int RS = raw_stride<T>();
  constexpr int CS = BN + kPadB, GS = BMI + kPadB;
  extern __shared__ __align__(16) unsigned char smem[];
  T* raw = reinterpret_cast<T*>(smem);
  TM* chi = reinterpret_cast<TM*>(smem + size_t(kStages) * BK * RS * sizeof(T));
  TM* clo = chi + BK * CS;
  TM* gb = chi + (kSplit ? 2 : 0) * BK * CS;
  TM* gb_lo = gb + BK * GS;
  const KeptMover<T, kThreads> mover(p.copy, smem + inv_smem<T, kTable>(kStages));

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp / 4, wn = warp % 4;
  const int64_t col0 = int64_t(blockIdx.x) * BN;
  const int64_t n0 = int64_t(blockIdx.y) * BMI;
  const int steps = static_cast<int>((p.kmax + BK - 1) / BK);

  // Basis generator: thread owns tile row gr of each step (k = BK s + gk0: even k in rows
  // 0..15, odd in 16..31) and 8 tokens; its start phase advances by (2n+1) BK mod 4L per step.
  const int gr = threadIdx.x / 8, gj = (threadIdx.x % 8) * 8;
  const int gk0 = even_odd_k(gr, BK);
  const int64_t gn = n0 + gj;
  const int64_t L4 = 4 * p.L;
  int64_t phase = ((2 * gn + 1) * gk0) % L4;
  const int64_t phase_step = ((2 * gn + 1) * BK) % L4;

  const ColumnSource<T> cs = column_source<T>(p.coef, col0, p.heads, p.C, p.vec_in, p.ident);
  auto issue = [&](int s) {
    if (s < steps) {
      load_tile<T, true>(raw + size_t(s % kStages) * BK * RS, RS, cs, p.coef.row_stride,
                         int64_t(s) * BK, 0, p.kmax, p.vec_in);
      if constexpr (kTable) {
        // One 16-byte group per thread: tile row r holds k = BK s + 2r (r < BK/2) or
        // BK s + 2(r - BK/2) + 1, as the generator's rows do.
        static_assert(BK * BMI / 8 == kThreads, "one group per thread");
        const int r = threadIdx.x / (BMI / 8), g = (threadIdx.x % (BMI / 8)) * 8;
        const int64_t k = int64_t(s) * BK + even_odd_k(r, BK);
        cp_async16(gb + size_t(s % kStages) * BK * GS + r * GS + g,
                   static_cast<const TM*>(p.basis.data) + k * p.basis.stride + n0 + g, true);
      }
      if constexpr (kOnePass) mover.issue(s, s % kStages);
    }
    cp_async_commit();
  };
  float even[2][4][4] = {}, odd[2][4][4] = {};
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(s);
  for (int s = 0; s < steps; ++s) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    issue(s + kStages - 1);
    const T* rt = raw + size_t(s % kStages) * BK * RS;
    if constexpr (kSplit) {
      for (int i = threadIdx.x; i < BK * BN / 8; i += kThreads) {
        const int row = i / (BN / 8), cg = (i % (BN / 8)) * 8;
        float v[8];
        load8f(rt + row * RS + cg, v);
        store8<TM, true>(chi + row * CS + cg, clo + row * CS + cg, v);
      }
    }
    if constexpr (!kTable) {
      float vals[8];
      basis8(phase, int64_t(s) * BK + gk0, p.L, p.kmax, static_cast<int>(min(int64_t(8), p.L - gn)),
             vals);
      phase += phase_step;
      if (phase >= L4) phase -= L4;
      store8<TM, kSplit>(gb + gr * GS + gj, gb_lo + gr * GS + gj, vals);
      __syncthreads();
    }
    const TM* coef = kSplit ? chi : reinterpret_cast<const TM*>(rt);
    const int ldc = kSplit ? CS : RS;
    const TM* bt = kTable ? gb + size_t(s % kStages) * BK * GS : gb;
    warp_mma_k16<TM>(even, bt, GS, coef, ldc, wm * IWTM, wn * WTN, 0);
    warp_mma_k16<TM>(odd, bt, GS, coef, ldc, wm * IWTM, wn * WTN, BK / 2);
    if constexpr (kSplit) {
      warp_mma_k16<TM>(even, gb, GS, clo, CS, wm * IWTM, wn * WTN, 0);
      warp_mma_k16<TM>(odd, gb, GS, clo, CS, wm * IWTM, wn * WTN, BK / 2);
      warp_mma_k16<TM>(even, gb_lo, GS, chi, CS, wm * IWTM, wn * WTN, 0);
      warp_mma_k16<TM>(odd, gb_lo, GS, chi, CS, wm * IWTM, wn * WTN, BK / 2);
    }
    if constexpr (kOnePass) mover.drain(s, s % kStages);
  }
  cp_async_wait<0>();
  if constexpr (kOnePass) mover.finish(steps);
  __syncthreads();

  // Epilogue: scale, stage rows n (0..BMI-1) and their mirrors L-1-n (BMI..2BMI-1) in shared
  // memory, write rows with whole-row vectors.
  constexpr int ES = BN + 16 / int(sizeof(T));
  T* st = reinterpret_cast<T*>(smem);
  const float scale = rsqrtf(static_cast<float>(p.L));
  const int g = lane / 4, t = lane % 4;
  // Fragment elements e = 2h and 2h + 1 are adjacent columns: one paired store each.
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = wm * IWTM + 16 * i + g + 8 * h;
        const int cl = wn * WTN + 8 * j + 2 * t;
        const float* ev = &even[i][j][2 * h];
        const float* od = &odd[i][j][2 * h];
        store_pair(st + r * ES + cl, (ev[0] + od[0]) * scale, (ev[1] + od[1]) * scale);
        store_pair(st + (BMI + r) * ES + cl, (ev[0] - od[0]) * scale, (ev[1] - od[1]) * scale);
      }
  __syncthreads();
  store_staged_rows<T>(p, st, n0, col0);
}

// ---- the inverse GEMM with warpgroup MMA (sm_90a) -----------------------------------------
// The product of dct_inverse_kernel for 16-bit types with a basis table, on the same block tile
// (BMI tokens n and their mirrors x BN columns) and with the same epilogue. Warpgroup w takes
// columns 64w .. 64w + 63 and, per k16, issues one m64n64k16 for the even k (E) and one for the
// odd k (O), where each mma.sync warp issued 16 mma.sync: A is the basis transposed, from
// ldmatrix on the padded [k][n] tile as warp_mma_k16 loads it; B is the coefficient tile in the
// 128-byte swizzle of wgmma.cuh, read MN-major (columns along a row), one 64-column panel per
// warpgroup. Steps of kWiBK coefficients (even k in the first half of each tile, odd in the
// second), three stages, two blocks per SM.
constexpr int kWiBK = 64;
constexpr int kWiStages = 3;
constexpr int kWiGS = BMI + kPadB;                           // basis tile row stride
constexpr size_t kWiCoefBytes = size_t(kWiBK) * BN * 2;      // two panels of kWiBK x 64
constexpr size_t kWiBasisBytes = size_t(kWiBK) * kWiGS * 2;  // [kWiBK][BMI], padded
constexpr size_t kWiTileBytes = kWiStages * (kWiCoefBytes + kWiBasisBytes);
constexpr size_t kWiStageBytes = size_t(2 * BMI) * (BN + 8) * 2;  // the staged output rows
constexpr size_t kWiMainBytes = kWiTileBytes > kWiStageBytes ? kWiTileBytes : kWiStageBytes;

// Shared memory of the warpgroup inverse kernel: alignment slack, the tiles (1024-byte aligned;
// the epilogue's staging reuses them) and the kept-copy ring when there is a copy.
constexpr size_t wg_inv_smem(bool copy) {
  return 1024 + kWiMainBytes + (copy ? ring_smem(kWiStages) : 0);
}

// The warpgroup inverse kernels' epilogue, as dct_inverse_kernel's: accumulator 4j + e of the
// m64n64 products is token 16 warp + g + 8 (e / 2), column 64 wg + 8j + 2t + (e % 2); staged
// row r gets x[n] = E + O, row BMI + r the mirror x[L-1-n] = E - O, scaled.
template <class T>
__device__ __forceinline__ void stage_mirrored(T* st, const float (&ev)[32], const float (&od)[32],
                                               float scale) {
  constexpr int ES = BN + 16 / int(sizeof(T));
  const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int j = 0; j < 8; ++j)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = 16 * warp + g + 8 * h;
      const int cl = 64 * wg + 8 * j + 2 * t;
      const float* e = &ev[4 * j + 2 * h];
      const float* o = &od[4 * j + 2 * h];
      store_pair(st + r * ES + cl, (e[0] + o[0]) * scale, (e[1] + o[1]) * scale);
      store_pair(st + (BMI + r) * ES + cl, (e[0] - o[0]) * scale, (e[1] - o[1]) * scale);
    }
}

template <class T>
__global__ void __launch_bounds__(kThreads, 2) dct_inverse_wgmma_kernel(const InvParams p) {
#if KVS_HAVE_WGMMA
  static_assert(sizeof(T) == 2, "16-bit types");
  constexpr int S = kWiStages;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const uint32_t raw_addr = smem_addr(smem_raw);
  unsigned char* smem = smem_raw + (((raw_addr + 1023u) & ~1023u) - raw_addr);
  unsigned char* basis = smem + S * kWiCoefBytes;
  const KeptMover<T, kThreads> mover(p.copy, smem + kWiMainBytes);

  const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  const int64_t col0 = int64_t(blockIdx.x) * BN;
  const int64_t n0 = int64_t(blockIdx.y) * BMI;
  const int steps = static_cast<int>((p.kmax + kWiBK - 1) / kWiBK);
  const ColumnSource<T> cs = column_source<T>(p.coef, col0, p.heads, p.C, true, p.ident);
  const T* table = static_cast<const T*>(p.basis.data);
  const int chunk = threadIdx.x % (BN / 8);  // the thread's 16-byte column group

  auto issue = [&](int s) {
    if (s < steps) {
      const int64_t kb = int64_t(s) * kWiBK;
      // Coefficient row kb + r at tile row r / 2 (even r) or kWiBK / 2 + r / 2 (odd r); rows
      // from kmax on are zero (cp.async reads nothing for them).
      unsigned char* ct = smem + size_t(s % S) * kWiCoefBytes;
#pragma unroll
      for (int r = cs.row0; r < kWiBK; r += kThreads / (BN / 8)) {
        const bool ok = cs.base != nullptr && kb + r < p.kmax;
        const int tr = (r % 2) * (kWiBK / 2) + r / 2;
        cp_async16(ct + sw128_offset(tr, chunk, kWiBK),
                   ok ? cs.base + (kb + r) * p.coef.row_stride : table, ok);
      }
      // Basis row r: k = kb + even_odd_k(r), tokens n0 .. n0 + BMI - 1 (the table is zero from
      // kmax on, and its rows and columns cover every block's tile).
      T* bt = reinterpret_cast<T*>(basis + size_t(s % S) * kWiBasisBytes);
#pragma unroll
      for (int i = threadIdx.x; i < kWiBK * (BMI / 8); i += kThreads) {
        const int r = i / (BMI / 8), g = (i % (BMI / 8)) * 8;
        cp_async16(bt + r * kWiGS + g,
                   table + (kb + even_odd_k(r, kWiBK)) * p.basis.stride + n0 + g, true);
      }
      mover.issue(s, s % S);
    }
    cp_async_commit();
  };

  float ev[32], od[32];
#pragma unroll
  for (int i = 0; i < 32; ++i) ev[i] = od[i] = 0.f;
#pragma unroll
  for (int s = 0; s < S - 1; ++s) issue(s);

  // The lanes' ldmatrix rows (k) and columns (n) of the warp's 16 tokens, as warp_mma_k16.
  const int a_k = (lane % 8) + (lane / 16) * 8;
  const int a_n = 16 * warp + ((lane / 8) % 2) * 8;
  constexpr int kK16 = kWiBK / 32;  // k16 steps of each parity per step
  for (int s = 0; s < steps; ++s) {
    cp_async_wait<S - 2>();
    wg_wait<0>();  // this warpgroup's products of the last step, which read the stage reloaded next
    wg_fence_operands(ev);
    wg_fence_operands(od);
    __syncthreads();
    issue(s + S - 1);
    const T* bt = reinterpret_cast<const T*>(basis + size_t(s % S) * kWiBasisBytes);
    uint32_t ae[kK16][4], ao[kK16][4];
#pragma unroll
    for (int kk = 0; kk < kK16; ++kk) {
      ldmatrix_x4_trans(ae[kk], bt + (16 * kk + a_k) * kWiGS + a_n);
      ldmatrix_x4_trans(ao[kk], bt + (kWiBK / 2 + 16 * kk + a_k) * kWiGS + a_n);
    }
    wg_fence();
    // This warpgroup's panel; odd k from tile row kWiBK / 2 on; a k16 step is 16 rows.
    const uint32_t ct = smem_addr(smem + size_t(s % S) * kWiCoefBytes) + wg * (kWiBK * 128u);
#pragma unroll
    for (int kk = 0; kk < kK16; ++kk) {
      wgmma_rs_tb_n64<T>(ev, ae[kk], wg_desc(ct + kk * 2048u, kWiBK * 128u, 1024));
      wgmma_rs_tb_n64<T>(od, ao[kk],
                         wg_desc(ct + (kWiBK / 2) * 128u + kk * 2048u, kWiBK * 128u, 1024));
    }
    wg_commit();
    wg_fence_operands(ev);
    wg_fence_operands(od);
    mover.drain(s, s % S);
  }
  cp_async_wait<0>();
  wg_wait<0>();
  wg_fence_operands(ev);
  wg_fence_operands(od);
  mover.finish(steps);
  __syncthreads();

  T* st = reinterpret_cast<T*>(smem);
  stage_mirrored<T>(st, ev, od, rsqrtf(static_cast<float>(p.L)));
  __syncthreads();
  store_staged_rows<T>(p, st, n0, col0);
#endif
}

// ---- the inverse with resident coefficients (sm_90a) --------------------------------------
// Up to kKP <= 256 coefficients the block's whole coefficient tile (kKP x BN, 64 KB at 256)
// stays in shared memory while the block walks a run of consecutive n tiles, so per tile only
// its basis tile is read (from L2), where dct_inverse_wgmma_kernel reloads both for every tile.
// Per n tile: all kKP / 32 k16 steps of E and of O as one commit group of m64n64k16 products
// (A: the basis tile from ldmatrix, all fragments loaded first; B: the resident coefficients),
// and while they run, the previous tile's staged rows go out; the next tile's basis tile
// (double-buffered) and kept-copy rows load meanwhile. One block
// per SM, so its 8 warps have room for the fragments (up to 64 registers) beside the
// accumulators.
// Kept-copy passes per n tile in the ring, which has one stage: a tile's rows are stored at the
// top of its iteration, before the next tile's are loaded into the same slots (a thread's store
// consumes its slot's load, so that load is done before the thread issues the next cp.async).
// 12 covers the issue layout's 8 passes per tile.
constexpr int kRRing = 12;

template <int kKP>
constexpr size_t res_inv_smem(bool copy) {
  return 1024 + size_t(kKP) * BN * 2 + 2 * size_t(kKP) * kWiGS * 2 + kWiStageBytes +
         (copy ? ring_smem(1, kRRing) : 0);
}

template <class T, int kKP>
__global__ void __launch_bounds__(kThreads, 1)
    dct_inverse_resident_kernel(const InvParams p, int64_t tiles_per_block) {
#if KVS_HAVE_WGMMA
  static_assert(sizeof(T) == 2 && kKP % kWiBK == 0 && kKP <= 256, "16-bit types, kKP <= 256");
  constexpr int kNk = kKP / 32;  // k16 steps of each parity
  constexpr size_t kBasisBytes = size_t(kKP) * kWiGS * 2;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const uint32_t raw_addr = smem_addr(smem_raw);
  unsigned char* smem = smem_raw + (((raw_addr + 1023u) & ~1023u) - raw_addr);
  unsigned char* coef = smem;
  unsigned char* basis = coef + size_t(kKP) * BN * 2;
  T* st = reinterpret_cast<T*>(basis + 2 * kBasisBytes);
  const KeptMover<T, kThreads, kRRing> mover(p.copy,
                                             reinterpret_cast<unsigned char*>(st) + kWiStageBytes);

  const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  const int64_t col0 = int64_t(blockIdx.x) * BN;
  const int64_t ntiles = ((p.L + 1) / 2 + BMI - 1) / BMI;
  const int64_t first = int64_t(blockIdx.y) * tiles_per_block;
  const int count = static_cast<int>(min(first + tiles_per_block, ntiles) - first);
  const T* table = static_cast<const T*>(p.basis.data);

  // The coefficients, once: row k at tile row k / 2 (even k) or kKP / 2 + k / 2 (odd k), in the
  // 128-byte swizzle (zero from kmax on).
  {
    const ColumnSource<T> cs = column_source<T>(p.coef, col0, p.heads, p.C, true, p.ident);
    const int chunk = threadIdx.x % (BN / 8);
#pragma unroll
    for (int r = cs.row0; r < kKP; r += kThreads / (BN / 8)) {
      const bool ok = cs.base != nullptr && r < p.kmax;
      cp_async16(coef + sw128_offset((r % 2) * (kKP / 2) + r / 2, chunk, kKP),
                 ok ? cs.base + r * p.coef.row_stride : table, ok);
    }
  }
  // n tile first + i's basis rows (k = even_odd_k(r)) into buffer i % 2, with the kept rows of
  // iteration i, as one commit group.
  auto load = [&](int i) {
    if (i < count) {
      const int64_t n0 = (first + i) * BMI;
      T* bt = reinterpret_cast<T*>(basis + (i % 2) * kBasisBytes);
#pragma unroll
      for (int j = threadIdx.x; j < kKP * (BMI / 8); j += kThreads) {
        const int r = j / (BMI / 8), g = (j % (BMI / 8)) * 8;
        cp_async16(bt + r * kWiGS + g, table + even_odd_k(r, kKP) * p.basis.stride + n0 + g, true);
      }
      mover.issue(i, 0);
    }
    cp_async_commit();
  };

  load(0);
  const int a_k = (lane % 8) + (lane / 16) * 8;
  const int a_n = 16 * warp + ((lane / 8) % 2) * 8;
  const uint32_t ct = smem_addr(coef) + wg * (kKP * 128u);  // this warpgroup's panel
  const float scale = rsqrtf(static_cast<float>(p.L));
  float ev[32], od[32];
  for (int i = 0; i < count; ++i) {
    cp_async_wait<0>();
    mover.drain(i, 0);
    __syncthreads();  // tile i's basis visible; the last tile's rows staged
    load(i + 1);
    const T* bt = reinterpret_cast<const T*>(basis + (i % 2) * kBasisBytes);
    uint32_t ae[kNk][4], ao[kNk][4];
#pragma unroll
    for (int kk = 0; kk < kNk; ++kk) {
      ldmatrix_x4_trans(ae[kk], bt + (16 * kk + a_k) * kWiGS + a_n);
      ldmatrix_x4_trans(ao[kk], bt + (kKP / 2 + 16 * kk + a_k) * kWiGS + a_n);
    }
#pragma unroll
    for (int e = 0; e < 32; ++e) ev[e] = od[e] = 0.f;
    wg_fence_operands(ev);
    wg_fence_operands(od);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < kNk; ++kk) {
      wgmma_rs_tb_n64<T>(ev, ae[kk], wg_desc(ct + kk * 2048u, kKP * 128u, 1024));
      wgmma_rs_tb_n64<T>(od, ao[kk], wg_desc(ct + (kKP / 2) * 128u + kk * 2048u, kKP * 128u, 1024));
    }
    wg_commit();
    wg_fence_operands(ev);
    wg_fence_operands(od);
    if (i > 0) store_staged_rows<T>(p, st, (first + i - 1) * BMI, col0);
    wg_wait<0>();
    wg_fence_operands(ev);
    wg_fence_operands(od);
    __syncthreads();  // the last tile's rows are out before they are overwritten
    stage_mirrored<T>(st, ev, od, scale);
  }
  cp_async_wait<0>();
  __syncthreads();
  if (count > 0) store_staged_rows<T>(p, st, (first + count - 1) * BMI, col0);
  mover.finish(count);
#endif
}

template <class T>
constexpr int fwd_stages() {
  return Mma<T>::split ? 2 : 3;
}

// The basis table (BasisTable) in 8-token groups, each computed as the inverse kernel's
// generator computes it (basis8).
// kSplit: the table holds the rounded values and lo what their rounding left.
template <class TM, bool kSplit>
__global__ void dct_basis_kernel(int64_t L, int64_t kmax, int64_t kpad, int64_t npad, TM* table,
                                 TM* lo) {
  const int64_t groups = npad / 8, L4 = 4 * L;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < kpad * groups;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = i / groups, n0 = (i % groups) * 8;
    float vals[8];
    basis8(((2 * n0 + 1) * k) % L4, k, L, kmax, static_cast<int>(min(int64_t(8), L - n0)), vals);
    store8<TM, kSplit>(table + k * npad + n0, kSplit ? lo + k * npad + n0 : nullptr, vals);
  }
}

// Above this size a call generates its basis in the transform kernels instead.
constexpr size_t kMaxBasisTableBytes = size_t(64) << 20;

// The basis table for a transform over L middle tokens with kmax coefficients, covering both
// kernels' tiles (k up to a kWgBM multiple, tokens n up to a BMI multiple of ceil(L/2)); for float
// as hi and lo parts, and only for the warpgroup forward kernel. None (null data; the kernels
// then generate the basis in every block) for float without that kernel, or above
// kMaxBasisTableBytes. Built on c.stream into the scratch's basis slot unless the slot already
// holds this (L, kmax, type): at the issue's layout 8 MB, ~10 us under ncu, against a ~300 us
// transform; on the H200 the table took the issue layout's reconstruction from 0.562 to 0.428 ms
// and its compression from 0.314 to 0.292 ms (kernels/BENCHMARKS.md).
template <class T>
BasisTable basis_table(Ctx& c, int64_t L, int64_t kmax) {
  using TM = typename Mma<T>::type;
  constexpr bool split = Mma<T>::split;
  // float's table serves only the warpgroup forward kernel.
  if (split && !c.wgmma) return {};
  // k up to a kWgBM multiple, which is also a BM multiple.
  const int64_t kpad = (kmax + kWgBM - 1) / kWgBM * kWgBM;
  const int64_t npad = ((L + 1) / 2 + BMI - 1) / BMI * BMI;
  const size_t part = size_t(kpad) * size_t(npad);
  const size_t bytes = (split ? 2 : 1) * part * sizeof(TM);
  if (bytes > kMaxBasisTableBytes) return {};
  const Scratch::BasisKey key{L, kmax, split ? 3 : std::is_same_v<T, bf16> ? 1 : 2};
  TM* table = static_cast<TM*>(c.scratch->get(bytes, Scratch::kBasisSlot));
  TM* lo = split ? table + part : nullptr;
  if (!(c.scratch->basis == key)) {
    c.scratch->basis = {};  // not valid until the kernel has been queued
    dct_basis_kernel<TM, split><<<grid_for(kpad * (npad / 8), 256, c.sms), 256, 0, c.stream>>>(
        L, kmax, kpad, npad, table, lo);
    KVS_LAUNCH();
    c.scratch->basis = key;
  }
  return {table, lo, npad};
}

// The accumulated coefficients, scaled, as T.
template <class T>
void finalize(Ctx& c, const FwdParams& p, float scale, void* coeffs) {
  const int64_t n = p.heads * p.M * p.C;
  finalize_kernel<T>
      <<<grid_for(n, 256, c.sms), 256, 0, c.stream>>>(n, p.ws, scale, static_cast<T*>(coeffs));
  KVS_LAUNCH();
}

// The forward product with dct_forward_wgmma_kernel: p complete but for the split, `copy` as
// for compress_t. One block per SM, so the token pairs are split for one wave of blocks.
template <class T>
void compress_wgmma_t(Ctx& c, FwdParams& p, int64_t ctiles, const KeptCopy& copy) {
  using W = WgFwd<T>;
  const int64_t mtiles = (p.kmax + kWgBM - 1) / kWgBM;
  const size_t smem = W::smem(copy.rows > 0);
  KVS_CUDA(cudaFuncSetAttribute(dct_forward_wgmma_kernel<T>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const int64_t base = mtiles * ctiles;
  int64_t splits = std::max<int64_t>(1, int64_t(c.sms) / base);
  splits = std::min(splits, std::max<int64_t>(1, p.half / (4 * W::bk)));
  p.rows_per_split = ((p.half + splits - 1) / splits + W::bk - 1) / W::bk * W::bk;
  splits = (p.half + p.rows_per_split - 1) / p.rows_per_split;
  if (mtiles > 65535 || splits > 65535) throw std::invalid_argument("fourier_compress: too large");
  const dim3 grid(static_cast<unsigned>(mtiles), static_cast<unsigned>(ctiles),
                  static_cast<unsigned>(splits));
  p.copy = copy;
  schedule_copy(p.copy, mtiles * ctiles * splits, kThreads, p.rows_per_split / W::bk, W::ring);
  dct_forward_wgmma_kernel<T><<<grid, kThreads, smem, c.stream>>>(p);
  KVS_LAUNCH();
}

// `copy`, when it has rows, is the kept-dims copy for the transform's blocks to do; the caller
// passes none when there are no middle tokens, columns or coefficients (no kernel runs then).
template <class T, bool kOnePass>
void compress_t(Ctx& c, const KvShape& s, const FourierLayout& f, const void* kv, void* coeffs,
                KeptCopy copy = {}) {
  const int64_t heads = s.batch * s.kv_heads;
  const int C = static_cast<int>(f.compressed_dims.size());
  const int64_t L = f.middle(s.tokens), M = f.m;
  const size_t coef_bytes = size_t(heads) * M * C * sizeof(T);
  if (L == 0 || C == 0 || M == 0) {
    if (coef_bytes) KVS_CUDA(cudaMemsetAsync(coeffs, 0, coef_bytes, c.stream));
    return;
  }
  FwdParams p{};
  p.x = {static_cast<const T*>(kv) + f.sink * s.head_dim, s.tokens * s.head_dim, s.head_dim};
  p.heads = heads;
  p.L = L;
  p.M = M;
  p.kmax = std::min(M, L);
  p.half = (L + 1) / 2;
  p.C = C;
  const std::vector<int> cd = to_int(f.compressed_dims);
  p.vec = groups_contiguous(cd, Vec16<T>::n, s.head_dim) && aligned16(kv);
  p.dims = make_table(cd);
  const size_t ws_bytes = size_t(heads) * M * C * sizeof(float);
  p.ws = static_cast<float*>(c.scratch->get(ws_bytes, 0));
  KVS_CUDA(cudaMemsetAsync(p.ws, 0, ws_bytes, c.stream));

  const int64_t ctiles = (heads * C + BN - 1) / BN;
  if (ctiles > 65535 || heads * C > INT32_MAX)
    throw std::invalid_argument("fourier_compress: too large");
  p.basis = basis_table<T>(c, L, p.kmax);
  const bool table = p.basis.data != nullptr;
  const float scale = 1.f / std::sqrt(static_cast<float>(L));
  // 16-bit types not below 129 coefficients: the warpgroup block always multiplies 256, and at
  // M = 64 that measured 0.157 ms against 0.117 ms for the mma.sync kernel's 128
  // (kernels/BENCHMARKS.md). float's table exists only for the warpgroup kernel.
  if (table && c.wgmma && (Mma<T>::split || p.kmax > BM)) {
    compress_wgmma_t<T>(c, p, ctiles, copy);
    return finalize<T>(c, p, scale, coeffs);
  }
  const int64_t mtiles = (p.kmax + BM - 1) / BM;
  constexpr int S = fwd_stages<T>();
  const size_t smem = (table ? fwd_smem<T, kOnePass, true>(S) : fwd_smem<T, kOnePass, false>(S)) +
                      (copy.rows ? ring_smem(S) : 0);
  const auto kernel = table ? dct_forward_kernel<T, S, kOnePass, !Mma<T>::split>
                            : dct_forward_kernel<T, S, kOnePass, false>;
  KVS_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  int per_sm = 1;
  KVS_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem));
  // Split the token pairs so that the blocks fill one wave as closely as possible (a partial
  // second wave costs as much as a full one), each at least 4 steps long.
  const int64_t base = mtiles * ctiles;
  int64_t splits = std::max<int64_t>(1, int64_t(c.sms) * std::max(per_sm, 1) / base);
  const int64_t max_splits = std::max<int64_t>(1, p.half / (4 * BK));
  splits = std::min(splits, max_splits);
  p.rows_per_split = ((p.half + splits - 1) / splits + BK - 1) / BK * BK;
  splits = (p.half + p.rows_per_split - 1) / p.rows_per_split;
  if (splits > 65535) throw std::invalid_argument("fourier_compress: too large");

  const dim3 grid(static_cast<unsigned>(mtiles), static_cast<unsigned>(ctiles),
                  static_cast<unsigned>(splits));
  p.copy = copy;
  schedule_copy(p.copy, mtiles * ctiles * splits, kThreads, p.rows_per_split / BK);
  kernel<<<grid, kThreads, smem, c.stream>>>(p);
  KVS_LAUNCH();
  finalize<T>(c, p, scale, coeffs);
}

// The inverse with dct_inverse_resident_kernel: one block per SM, each over a run of n tiles.
template <class T, int kKP>
void reconstruct_resident_t(Ctx& c, InvParams& p, int64_t ctiles, int64_t ntiles,
                            const KeptCopy& copy) {
  const size_t smem = res_inv_smem<kKP>(copy.rows > 0);
  KVS_CUDA(cudaFuncSetAttribute(dct_inverse_resident_kernel<T, kKP>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const int64_t runs = std::min(ntiles, std::max<int64_t>(1, int64_t(c.sms) / ctiles));
  const int64_t per = (ntiles + runs - 1) / runs;
  const int64_t ny = (ntiles + per - 1) / per;
  const dim3 grid(static_cast<unsigned>(ctiles), static_cast<unsigned>(ny));
  p.copy = copy;
  schedule_copy(p.copy, ctiles * ny, kThreads, per, kRRing);
  dct_inverse_resident_kernel<T, kKP><<<grid, kThreads, smem, c.stream>>>(p, per);
  KVS_LAUNCH();
}

// As compress_t: none for `copy` when there are no middle tokens or columns.
template <class T, bool kOnePass>
void reconstruct_t(Ctx& c, const KvShape& s, const FourierLayout& f, const void* coeffs, void* kv,
                   KeptCopy copy = {}) {
  const int64_t heads = s.batch * s.kv_heads;
  const int C = static_cast<int>(f.compressed_dims.size());
  const int64_t L = f.middle(s.tokens), M = f.m;
  if (L == 0 || C == 0) return;
  InvParams p{};
  p.coef = {coeffs, M * C, C};
  p.heads = heads;
  p.L = L;
  p.M = M;
  p.kmax = std::min(M, L);
  p.C = C;
  constexpr int G = Vec16<T>::n;
  std::vector<int> ident(static_cast<size_t>(C));
  for (int i = 0; i < C; ++i) ident[static_cast<size_t>(i)] = i;
  const std::vector<int> cd = to_int(f.compressed_dims);
  p.vec_in = C % G == 0 && aligned16(coeffs);
  p.vec_out = groups_contiguous(cd, G, s.head_dim) && aligned16(kv);
  p.out = static_cast<T*>(kv) + f.sink * s.head_dim;
  p.out_head_stride = s.tokens * s.head_dim;
  p.out_row_stride = s.head_dim;
  p.dims = make_table(cd);
  p.ident = make_table(ident);
  if (p.kmax == 0) {
    // No coefficient survives (M = 0): the middle tokens' compressed dims are zero.
    throw std::invalid_argument("fourier_reconstruct: m must be positive");
  }
  const int64_t ctiles = (heads * C + BN - 1) / BN;
  const int64_t ntiles = ((L + 1) / 2 + BMI - 1) / BMI;  // tokens n < ceil(L/2), and mirrors
  if (ntiles > 65535 || heads * C > INT32_MAX)
    throw std::invalid_argument("fourier_reconstruct: too large");
  constexpr int S = fwd_stages<T>();
  p.basis = Mma<T>::split ? BasisTable{} : basis_table<T>(c, L, p.kmax);  // float: generated
  const bool table = p.basis.data != nullptr;
  if constexpr (!Mma<T>::split) {
    // The warpgroup kernel's coefficient tiles are 16-byte groups (C a multiple of 8, aligned).
    if (table && c.wgmma && p.vec_in && p.kmax <= 256) {
      if (p.kmax <= 64) return reconstruct_resident_t<T, 64>(c, p, ctiles, ntiles, copy);
      if (p.kmax <= 128) return reconstruct_resident_t<T, 128>(c, p, ctiles, ntiles, copy);
      return reconstruct_resident_t<T, 256>(c, p, ctiles, ntiles, copy);
    }
    if (table && c.wgmma && p.vec_in) {
      const size_t smem = wg_inv_smem(copy.rows > 0);
      KVS_CUDA(cudaFuncSetAttribute(dct_inverse_wgmma_kernel<T>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
      const dim3 grid(static_cast<unsigned>(ctiles), static_cast<unsigned>(ntiles));
      p.copy = copy;
      schedule_copy(p.copy, ctiles * ntiles, kThreads, (p.kmax + kWiBK - 1) / kWiBK);
      dct_inverse_wgmma_kernel<T><<<grid, kThreads, smem, c.stream>>>(p);
      KVS_LAUNCH();
      return;
    }
  }
  const size_t smem =
      (table ? inv_smem<T, true>(S) : inv_smem<T, false>(S)) + (copy.rows ? ring_smem(S) : 0);
  const auto kernel = table ? dct_inverse_kernel<T, S, kOnePass, !Mma<T>::split>
                            : dct_inverse_kernel<T, S, kOnePass, false>;
  KVS_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const dim3 grid(static_cast<unsigned>(ctiles), static_cast<unsigned>(ntiles));
  p.copy = copy;
  schedule_copy(p.copy, ctiles * ntiles, kThreads, (p.kmax + BK - 1) / BK);
  kernel<<<grid, kThreads, smem, c.stream>>>(p);
  KVS_LAUNCH();
}

void check_layout(const KvShape& s, const FourierLayout& f) {
  if (s.head_dim > kMaxHeadDim)
    throw std::invalid_argument("fourier: head_dim above " + std::to_string(kMaxHeadDim));
  int64_t prev = -1;
  for (int64_t d : f.compressed_dims) {
    if (d <= prev || d >= s.head_dim)
      throw std::invalid_argument("fourier: compressed_dims must be sorted, unique, < head_dim");
    prev = d;
  }
  if (f.m < 0 || f.sink < 0 || f.window < 0)
    throw std::invalid_argument("fourier: m, sink and window must be non-negative");
}

// One K or V tensor to its compressed form, or back. The copies (kept dims, sink/window tokens)
// read and write other bytes than the transform and run on the side stream alongside it, except
// that the one-pass transform kernels do the kept-dims copy where they can (see KeptCopy): on the
// H200 that took the issue layout's compression from 0.418 to 0.315 ms (kernels/BENCHMARKS.md).
template <class T>
void compress_any(Ctx& c, const KvShape& s, const FourierLayout& f, const void* kv,
                  const FourierPtrs& out) {
  const bool cufft = c.opt.fourier == CudaOptions::Fourier::cufft;
  KeptCopy job;
  if (!cufft && f.middle(s.tokens) > 0 && !f.compressed_dims.empty() && f.m > 0)
    job = kept_copy_job<T>(s, f, kv, out.kept, false);
  // The one-pass kernel only where it has something to do: a kept copy, or u and v to form in
  // registers (16-bit types). For float without kept dims it would be the same work with more
  // registers.
  fork_side(c);
  {
    Ctx side = c;
    side.stream = c.side;
    split_merge_t<T>(side, s, f, kv, nullptr, out, false, job.rows == 0);
  }
  if (cufft)
    fourier_compress_cufft(c, s, f, kv, out.coeffs);
  else if constexpr (uv_in_registers<T, true>())
    compress_t<T, true>(c, s, f, kv, out.coeffs, job);
  else if (job.rows > 0)
    compress_t<T, true>(c, s, f, kv, out.coeffs, job);
  else
    compress_t<T, false>(c, s, f, kv, out.coeffs);
  join_side(c);
}

template <class T>
void reconstruct_any(Ctx& c, const KvShape& s, const FourierLayout& f, const FourierPtrs& in,
                     void* kv) {
  const bool cufft = c.opt.fourier == CudaOptions::Fourier::cufft;
  // Not for float: its one-pass inverse needs 168 registers against 127, one block per SM
  // instead of two (ptxas), and ran 1.4x slower on the H200 (kernels/BENCHMARKS.md); its kept
  // copy stays on the side stream.
  KeptCopy job;
  if (!cufft && !std::is_same_v<T, float> && f.middle(s.tokens) > 0 && !f.compressed_dims.empty())
    job = kept_copy_job<T>(s, f, kv, in.kept, true);
  fork_side(c);
  {
    Ctx side = c;
    side.stream = c.side;
    split_merge_t<T>(side, s, f, nullptr, kv, in, true, job.rows == 0);
  }
  if (cufft)
    fourier_reconstruct_cufft(c, s, f, in.coeffs, kv);
  else if constexpr (std::is_same_v<T, float>)
    reconstruct_t<T, false>(c, s, f, in.coeffs, kv);
  else if (job.rows > 0)  // the one-pass kernel only where it has a copy to do
    reconstruct_t<T, true>(c, s, f, in.coeffs, kv, job);
  else
    reconstruct_t<T, false>(c, s, f, in.coeffs, kv);
  join_side(c);
}

}  // namespace

void fourier_compress(Ctx& c, const KvShape& s, const FourierLayout& f, const void* kv,
                      const FourierPtrs& out) {
  check_layout(s, f);
  switch (s.dtype) {
    case DType::f32:
      return compress_any<float>(c, s, f, kv, out);
    case DType::bf16:
      return compress_any<bf16>(c, s, f, kv, out);
    case DType::f16:
      return compress_any<f16>(c, s, f, kv, out);
  }
}

void fourier_reconstruct(Ctx& c, const KvShape& s, const FourierLayout& f, const FourierPtrs& in,
                         void* kv) {
  check_layout(s, f);
  if (f.middle(s.tokens) > 0 && f.m == 0)
    throw std::invalid_argument("fourier_reconstruct: m must be positive");
  switch (s.dtype) {
    case DType::f32:
      return reconstruct_any<float>(c, s, f, in, kv);
    case DType::bf16:
      return reconstruct_any<bf16>(c, s, f, in, kv);
    case DType::f16:
      return reconstruct_any<f16>(c, s, f, in, kv);
  }
}

}  // namespace kvscope::kernels::cuda
