// The DCT GEMMs on warpgroup MMA (sm_90a): the forward product (dct_forward_wgmma_kernel), the
// inverse (dct_inverse_wgmma_kernel) and the inverse with the coefficients resident in shared
// memory (dct_inverse_resident_kernel, up to 256 coefficients). Each compiles to nothing
// without sm_90a code; the host runs them only where the device has it (Ctx::wgmma).
// Private to fourier.cu, the one translation unit that includes it (hence the unnamed namespace).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/fourier_mma.cuh"
#include "kernels/cuda/kept_copy.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/wgmma.cuh"

namespace kvscope::kernels::cuda {
namespace {

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

}  // namespace
}  // namespace kvscope::kernels::cuda
