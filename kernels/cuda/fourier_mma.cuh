// The DCT GEMMs on mma.sync (any sm_80+ device; what a device without sm_90a runs, and 16-bit
// compression up to 128 coefficients on Hopper too): the forward product over the mirror sums u,
// v (dct_forward_kernel, split-K into f32 atomics, then finalize_kernel) and the inverse with its
// mirrored output rows (dct_inverse_kernel), with the basis from a table or generated in the
// block, and the parameter blocks the warpgroup kernels (fourier_wgmma.cuh) share.
// Private to fourier.cu, the one translation unit that includes it (hence the unnamed namespace).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/fourier_copy.cuh"
#include "kernels/cuda/kept_copy.h"
#include "kernels/cuda/ops.h"

namespace kvscope::kernels::cuda {
namespace {

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

}  // namespace
}  // namespace kvscope::kernels::cuda
