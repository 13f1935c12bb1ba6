// Exact prefill attention with Hopper's warpgroup MMA (wgmma, sm_90a), head_dim 128, 16-bit
// types. One block = 128 query rows of one query head, two warpgroups of 64 rows each; it walks
// 128-key tiles of the matching KV head (GQA). S = Q K^T reads both operands from shared memory
// through descriptors; the online softmax runs on the S accumulators in registers, which then
// become the A operand of O += P V with V read from shared memory transposed. So no warp loads a
// K or V fragment itself (the mma.sync kernel in prefill.cuh does, 256 bytes of shared-memory
// traffic per MMA), and one instruction does a 64 x 128 x 16 product.
//
// K/V tiles are double-buffered: all 256 threads issue the next tile's cp.async copies (into the
// 128-byte-swizzled layout of wgmma.cuh) right after the barrier that frees its buffer, and they
// land while both warpgroups multiply the current one. Blocks run the longest (causal) query
// tiles of every head first: blockIdx.x is the head, so the grid's first wave holds them all.
#pragma once

#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/prefill.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace kvscope::kernels::cuda {

constexpr int kWgPreThreads = 256;
constexpr int kWgPreRows = 128;  // query rows per block
constexpr int kWgPreKeys = 128;  // keys per tile

struct WgPrefillSmem {
  static constexpr uint32_t tile = 128u * 128u * 2u;  // [128 x 128] 16-bit, two panels
  static constexpr uint32_t panel = tile / 2;
  static constexpr uint32_t q = 0;                    // Q; reused to stage O at the end
  static constexpr uint32_t kv = tile;                // stage s: K at kv + 2s tile, V after it
  static constexpr int stages = 2;
  static constexpr size_t bytes = size_t(tile) * (1 + 2 * stages) + 1024;  // + alignment slack
};

// Written for D = 128 (one tile row is two 64-element panels); p.perm is not used.
template <class T>
__global__ void __launch_bounds__(kWgPreThreads, 1) prefill_wgmma_kernel(const PrefillParams p) {
#if KVS_HAVE_WGMMA
  using SM = WgPrefillSmem;
  constexpr int D = 128;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  // The swizzle is a function of address bits 4-9, so every panel starts on 1024 bytes.
  const uint32_t raw = smem_addr(smem_raw);
  const uint32_t base = (raw + 1023u) & ~1023u;
  unsigned char* smem = smem_raw + (base - raw);

  const int tid = threadIdx.x;
  const int wg = tid / 128, warp = (tid % 128) / 32, lane = tid % 32;
  const int g = lane / 4, tq = lane % 4;
  const int64_t qtiles = (p.q_len + kWgPreRows - 1) / kWgPreRows;
  const int64_t qt = qtiles - 1 - blockIdx.y;  // longest (causal) tiles first
  const int64_t bh = blockIdx.x;               // b * Hq + qh
  const int64_t b = bh / (p.kv_heads * p.group), qh = bh % (p.kv_heads * p.group);
  const int64_t head = b * p.kv_heads + qh / p.group;
  const int64_t T_ = p.tokens;
  const T* kg = static_cast<const T*>(p.k) + head * T_ * D;
  const T* vg = static_cast<const T*>(p.v) + head * T_ * D;
  const T* qg = static_cast<const T*>(p.q) + (bh * p.q_len + qt * kWgPreRows) * D;
  const int64_t rows_here = min(int64_t(kWgPreRows), p.q_len - qt * kWgPreRows);
  const int64_t qpos0 = T_ - p.q_len + qt * kWgPreRows;  // position of row 0
  const int64_t wg_first = qpos0 + 64 * wg, wg_last = wg_first + 63;

  // Q with the first K/V tile in one commit group; rows past q_len are zero-filled.
  for (int i = tid; i < kWgPreRows * 16; i += kWgPreThreads) {
    const int r = i / 16, c = i % 16;
    cp_async16(smem + SM::q + sw128_offset(r, c, kWgPreRows),
               qg + (r < rows_here ? r * D + 8 * c : 0), r < rows_here);
  }
  const int64_t kend = p.causal ? min(T_, qpos0 + int64_t(kWgPreRows)) : T_;
  const int ntiles = static_cast<int>((kend + kWgPreKeys - 1) / kWgPreKeys);
  auto issue = [&](int j) {
    if (j < ntiles) {
      unsigned char* ks = smem + SM::kv + uint32_t(j % SM::stages) * 2u * SM::tile;
      unsigned char* vs = ks + SM::tile;
      const int64_t t0 = int64_t(j) * kWgPreKeys;
      for (int i = tid; i < kWgPreKeys * 16; i += kWgPreThreads) {
        const int r = i / 16, c = i % 16;
        const bool ok = t0 + r < T_;
        const int64_t off = ok ? (t0 + r) * D + 8 * c : 0;
        const uint32_t so = sw128_offset(r, c, kWgPreKeys);
        cp_async16(ks + so, kg + off, ok);
        cp_async16(vs + so, vg + off, ok);
      }
    }
    cp_async_commit();
  };
  issue(0);

  float o[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) o[i] = 0.f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};
  const uint32_t q_wg = base + SM::q + uint32_t(64 * wg) * 128u;  // this warpgroup's 64 rows

  for (int j = 0; j < ntiles; ++j) {
    cp_async_wait<0>();
    fence_proxy_async_smem();  // this thread's copies, visible to the tensor core's reads
    __syncthreads();           // everyone's copies landed, and tile j-1's buffer is free
    issue(j + 1);
    const int64_t t0 = int64_t(j) * kWgPreKeys;
    // A warpgroup whose rows all precede the tile has nothing to do in it (causal).
    if (p.causal && t0 > wg_last) continue;
    const uint32_t ks = base + SM::kv + uint32_t(j % SM::stages) * 2u * SM::tile;
    const uint32_t vs = ks + SM::tile;

    // S = Q K^T: 8 k16 steps over the head dims, both operands K-major.
    float s[64];
    wg_fence_operands(s);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t off = uint32_t(kk / 4) * SM::panel + uint32_t(kk % 4) * 32u;
      wgmma_ss<T>(s, wg_desc(q_wg + off, 16, 1024), wg_desc(ks + off, 16, 1024), kk > 0);
    }
    wg_commit();
    wg_wait<0>();
    wg_fence_operands(s);

    // Mask where the tile reaches past the diagonal or the end, then the online softmax.
    const int64_t row0 = wg_first + 16 * warp + g;  // position of this thread's first row
    const bool need_mask = t0 + kWgPreKeys > T_ || (p.causal && t0 + kWgPreKeys - 1 > row0 - g);
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int i = 0; i < 64; ++i) {
      float x = s[i] * p.scale_log2;
      if (need_mask) {
        const int64_t key = t0 + 8 * (i / 4) + 2 * tq + (i % 2);
        const int64_t qp = row0 + 8 * ((i % 4) / 2);
        if (key >= T_ || (p.causal && key > qp)) x = -INFINITY;
      }
      s[i] = x;
      mx[(i % 4) / 2] = fmaxf(mx[(i % 4) / 2], x);
    }
    float alpha[2], shift[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
      const float mnew = fmaxf(m_run[h], mx[h]);
      shift[h] = mnew == -INFINITY ? 0.f : mnew;
      alpha[h] = exp2f(m_run[h] - shift[h]);
      m_run[h] = mnew;
      l_run[h] *= alpha[h];
    }
    uint32_t pa[8][4];
#pragma unroll
    for (int i = 0; i < 64; i += 2) {
      const float e0 = exp2f(s[i] - shift[(i % 4) / 2]);
      const float e1 = exp2f(s[i + 1] - shift[(i % 4) / 2]);
      l_run[(i % 4) / 2] += e0 + e1;
      pa[i / 8][(i % 8) / 2] = pack2<T>(e0, e1);
    }
#pragma unroll
    for (int i = 0; i < 64; ++i) o[i] *= alpha[(i % 4) / 2];

    // O += P V: 8 k16 steps over the keys, V MN-major.
    wg_fence_operands(o);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < kWgPreKeys / 16; ++kk)
      wgmma_rs_tb<T>(o, pa[kk], wg_desc(vs + uint32_t(kk) * 16u * 128u, SM::panel, 1024));
    wg_commit();
    wg_wait<0>();
    wg_fence_operands(o);
  }
  cp_async_wait<0>();

  // O / l, staged in this warpgroup's rows of Q's space (its own last reads of them are done),
  // then written with 16-byte stores.
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 1);
    l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 2);
    l_run[h] = l_run[h] > 0.f ? 1.f / l_run[h] : 0.f;
  }
#pragma unroll
  for (int i = 0; i < 64; i += 2) {
    const int h = (i % 4) / 2;
    const int r = 64 * wg + 16 * warp + g + 8 * h, col = 8 * (i / 4) + 2 * tq;
    *reinterpret_cast<uint32_t*>(smem + SM::q + sw128_offset(r, col / 8, kWgPreRows) +
                                 (col % 8) * 2) = pack2<T>(o[i] * l_run[h], o[i + 1] * l_run[h]);
  }
  __syncthreads();
  T* og = static_cast<T*>(p.o) + (bh * p.q_len + qt * kWgPreRows) * D;
  for (int i = tid; i < kWgPreRows * 16; i += kWgPreThreads) {
    const int r = i / 16, c = i % 16;
    if (r < rows_here)
      *reinterpret_cast<uint4*>(og + r * D + 8 * c) =
          *reinterpret_cast<const uint4*>(smem + SM::q + sw128_offset(r, c, kWgPreRows));
  }
#else
  __trap();  // built without sm_90a code: the host launches it only where
           // wgmma_probe_kernel found sm_90a code (Ctx::wgmma)
#endif
}

}  // namespace kvscope::kernels::cuda
