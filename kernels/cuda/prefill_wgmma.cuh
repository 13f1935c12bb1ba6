// Exact prefill attention with Hopper's warpgroup MMA (wgmma, sm_90a) and its copy engine (TMA),
// head_dim 128, 16-bit types. One block = 128 query rows of one query head, two consumer
// warpgroups of 64 rows each, over 128-key tiles of the matching KV head (GQA):
//  - S = Q K^T reads both operands from shared memory through descriptors; the online softmax
//    runs on the S accumulators in registers, which then become the A operand of O += P V with V
//    read from shared memory transposed. So no warp loads a K or V fragment itself (the mma.sync
//    kernel in prefill.cuh does, 256 bytes of shared-memory traffic per MMA), and one
//    instruction does a 64 x 128 x 16 product.
//  - Each warpgroup overlaps its softmax with its tensor-core work: it issues S_j = Q K_j^T and
//    O += P_{j-1} V_{j-1} together and waits for S_j only, so P V runs while it computes P_j.
//  - A third warpgroup's first thread copies Q and each K and V tile as tensor-map boxes of
//    [128 rows x 64 columns] (two per tile), which the copy engine swizzles into the layout of
//    wgmma.cuh, into rings of three slots per tensor, completing on each slot's "full" mbarrier.
//    Each consumer warp arrives on the slot's "empty" mbarrier once its warpgroup's product that
//    read the slot has completed, and the producer waits for all 8 before reusing the slot. So
//    no barrier of the whole block runs per tile, the two warpgroups are not held in step, and
//    no consumer thread spends instructions on copies.
//  - Blocks run the longest (causal) query tiles of every head first: blockIdx.x is the head, so
//    the grid's first wave holds them all.
// (An earlier version had all 256 consumer threads issue cp.async copies, with a block barrier
// per tile: 6.29 ms against 4.50 ms for this one at 32 heads x 16384, kernels/BENCHMARKS.md.)
#pragma once

#include <cuda.h>

#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/prefill.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace kvscope::kernels::cuda {

constexpr int kWgPreRows = 128;  // query rows per block
constexpr int kWgPreKeys = 128;  // keys per tile

// One warpgroup's 64 query rows of a 128-row block: the O accumulators, the running max (log2
// units) and sum of its softmax, and P of its last tile as the A operand of P V.
#if KVS_HAVE_WGMMA
template <class T>
struct WgRows {
  static constexpr uint32_t panel = 128u * 128u;  // bytes of a [128 x 64] 16-bit panel
  float o[64];
  float m_run[2], l_run[2];
  uint32_t pa[8][4];
  int64_t warp_first;  // position of this warp's first row
  int g, tq;
  int64_t tokens;
  bool causal;
  float scale_log2;

  __device__ __forceinline__ void init(int64_t wg_first, int warp, int lane,
                                       const PrefillParams& p) {
#pragma unroll
    for (int i = 0; i < 64; ++i) o[i] = 0.f;
    m_run[0] = m_run[1] = -INFINITY;
    l_run[0] = l_run[1] = 0.f;
    warp_first = wg_first + 16 * warp;
    g = lane / 4;
    tq = lane % 4;
    tokens = p.tokens;
    causal = p.causal;
    scale_log2 = p.scale_log2;
  }
  // S = Q K^T over 8 k16 steps of the head dims, Q and K K-major [128-row tiles of two panels]
  // at these shared addresses (q: this warpgroup's first row).
  __device__ __forceinline__ void issue_s(float (&s)[64], uint32_t q, uint32_t k) {
    wgmma_ss_zero<T>(s, wg_desc(q, 16, 1024), wg_desc(k, 16, 1024));
#pragma unroll
    for (int kk = 1; kk < 8; ++kk) {
      const uint32_t off = uint32_t(kk / 4) * panel + uint32_t(kk % 4) * 32u;
      wgmma_ss<T>(s, wg_desc(q + off, 16, 1024), wg_desc(k + off, 16, 1024));
    }
    wg_commit();
  }
  // O += P V for the tile whose probabilities are in pa: V MN-major, 8 k16 steps over the keys.
  __device__ __forceinline__ void issue_pv(uint32_t v) {
#pragma unroll
    for (int kk = 0; kk < 8; ++kk)
      wgmma_rs_tb<T>(o, pa[kk], wg_desc(v + uint32_t(kk) * 16u * 128u, panel, 1024));
    wg_commit();
  }
  // Keys past the sequence or (causal) past a row's position get -inf. Only the tiles that
  // reach the diagonal or the end pay for it (the caller branches once around the whole loop,
  // not once per element), and the comparisons are 32-bit, against bounds computed per tile.
  __device__ __forceinline__ void mask(float (&s)[64], int64_t t0) {
    const int64_t row0 = warp_first + g;
    // Key k (counted from t0) is kept while k < key0 and, for row g + 8 h, k <= diag + 8 h; the
    // clamps keep both exact for every k in 0 .. 127 (a warp's rows may end up to 63 before t0).
    const int key0 = static_cast<int>(min(tokens - t0, int64_t(129)));
    const int diag =
        causal ? static_cast<int>(max(int64_t(-16), min(row0 - t0, int64_t(129)))) : 129;
#pragma unroll
    for (int i = 0; i < 64; ++i) {
      const int key = 8 * (i / 4) + 2 * tq + (i % 2);
      if (key >= key0 || key > diag + 8 * ((i % 4) / 2)) s[i] = -INFINITY;
    }
  }
  // The online softmax of the tile of keys t0 .. t0+127 in place (s becomes unnormalized
  // probabilities); alpha gets the factors by which O and l shrink. Per row, the max is a tree
  // over 8 partials and the sum 4 independent chains of 8, not chains of 32 dependent
  // instructions: the softmax sits between S_j's completion and the next products, so its
  // latency is the warpgroup's.
  __device__ __forceinline__ void softmax(float (&s)[64], int64_t t0, float (&alpha)[2]) {
    if (t0 + 128 > tokens || (causal && t0 + 127 > warp_first)) mask(s, t0);
    float mx[2][8];
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int k = 0; k < 8; ++k)
        mx[h][k] = fmaxf(fmaxf(s[8 * k + 2 * h], s[8 * k + 2 * h + 1]),
                         fmaxf(s[8 * k + 4 + 2 * h], s[8 * k + 5 + 2 * h]));
    float shift[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float m = fmaxf(fmaxf(fmaxf(mx[h][0], mx[h][1]), fmaxf(mx[h][2], mx[h][3])),
                      fmaxf(fmaxf(mx[h][4], mx[h][5]), fmaxf(mx[h][6], mx[h][7])));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
      const float mnew = fmaxf(m_run[h], m * scale_log2);
      shift[h] = mnew == -INFINITY ? 0.f : mnew;
      alpha[h] = fast_exp2(m_run[h] - shift[h]);
      m_run[h] = mnew;
    }
    float sum[2][4] = {};
#pragma unroll
    for (int i = 0; i < 64; ++i) {
      s[i] = fast_exp2(fmaf(s[i], scale_log2, -shift[(i % 4) / 2]));
      sum[(i % 4) / 2][(i / 4) % 4] += s[i];
    }
#pragma unroll
    for (int h = 0; h < 2; ++h)
      l_run[h] = fmaf(l_run[h], alpha[h], (sum[h][0] + sum[h][1]) + (sum[h][2] + sum[h][3]));
  }
  // After P_{j-1} V_{j-1} has completed: O shrinks by alpha_j, and P_j becomes the A operand.
  __device__ __forceinline__ void next(const float (&s)[64], const float (&alpha)[2]) {
#pragma unroll
    for (int i = 0; i < 64; ++i) o[i] *= alpha[(i % 4) / 2];
#pragma unroll
    for (int i = 0; i < 64; i += 2) pa[i / 8][(i % 8) / 2] = pack2<T>(s[i], s[i + 1]);
  }
  // O / l into rows row0 .. row0+63 of the swizzled [128 x 128] tile at smem (Q's space), the
  // rows of this warpgroup (warp w of it: rows 16 w ..).
  __device__ __forceinline__ void stage_output(unsigned char* smem, int row_base) {
    quad_row_sum_inverse(l_run);
#pragma unroll
    for (int i = 0; i < 64; i += 2) {
      const int h = (i % 4) / 2;
      const int r = row_base + g + 8 * h, col = 8 * (i / 4) + 2 * tq;
      *reinterpret_cast<uint32_t*>(smem + sw128_offset(r, col / 8, 128) + (col % 8) * 2) =
          pack2<T>(o[i] * l_run[h], o[i + 1] * l_run[h]);
    }
  }
};
#endif  // KVS_HAVE_WGMMA

// The producer is a whole warpgroup so that registers can move between warpgroups: it gives
// back all but 24 per thread (setmaxnreg), and the consumers take 240, where the block's 384
// threads would otherwise be held to 168 and the products serialised for want of registers.
constexpr int kWgPreThreads = 384;  // 2 consumer warpgroups + 1 producer warpgroup

struct WgPrefillSmem {
  static constexpr uint32_t tile = 128u * 128u * 2u;
  static constexpr uint32_t panel = tile / 2;
  static constexpr int slots = 3;  // per ring
  static constexpr uint32_t q = 0;
  static constexpr uint32_t k = tile;              // K ring: slot s at k + s tile
  static constexpr uint32_t v = k + slots * tile;  // V ring
  static constexpr uint32_t bars = v + slots * tile;
  // bars: q full, then K full, K empty, V full, V empty (slots each)
  static constexpr int nbars = 1 + 4 * slots;
  static constexpr size_t bytes = size_t(bars) + nbars * 8 + 1024;  // + alignment slack
  static_assert(bytes <= 227 * 1024, "more than an sm_90 block's shared memory");
};

// Written for D = 128 (one tile row is two 64-element panels); p.perm is not used.
template <class T>
__global__ void __launch_bounds__(kWgPreThreads, 1)
    prefill_wgmma_kernel(const PrefillParams p, const __grid_constant__ CUtensorMap qmap,
                         const __grid_constant__ CUtensorMap kmap,
                         const __grid_constant__ CUtensorMap vmap) {
#if KVS_HAVE_WGMMA
  using SM = WgPrefillSmem;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const uint32_t raw = smem_addr(smem_raw);
  const uint32_t base = (raw + 1023u) & ~1023u;
  unsigned char* smem = smem_raw + (base - raw);
  uint64_t* bar = reinterpret_cast<uint64_t*>(smem + SM::bars);
  uint64_t* q_full = bar;
  uint64_t* k_full = bar + 1;
  uint64_t* k_empty = k_full + SM::slots;
  uint64_t* v_full = k_empty + SM::slots;
  uint64_t* v_empty = v_full + SM::slots;

  const int tid = threadIdx.x;
  const int warp_id = __shfl_sync(0xffffffffu, tid / 32, 0);
  const int lane = tid % 32;
  if (tid == 0) {
    mbar_init(q_full, 1);
    for (int i = 0; i < SM::slots; ++i) {
      mbar_init(k_full + i, 1);
      mbar_init(v_full + i, 1);
      mbar_init(k_empty + i, 8);  // one arrival per consumer warp
      mbar_init(v_empty + i, 8);
    }
    mbar_init_fence();
  }
  __syncthreads();

  const int64_t qtiles = (p.q_len + kWgPreRows - 1) / kWgPreRows;
  const int64_t qt = qtiles - 1 - blockIdx.y;  // longest (causal) tiles first
  const int64_t bh = blockIdx.x;               // b * Hq + qh
  const int64_t b = bh / (p.kv_heads * p.group), qh = bh % (p.kv_heads * p.group);
  const int64_t head = b * p.kv_heads + qh / p.group;
  const int64_t T_ = p.tokens;
  const int64_t rows_here = min(int64_t(kWgPreRows), p.q_len - qt * kWgPreRows);
  const int64_t qpos0 = T_ - p.q_len + qt * kWgPreRows;
  const int64_t kend = p.causal ? min(T_, qpos0 + int64_t(kWgPreRows)) : T_;
  const int ntiles = static_cast<int>((kend + kWgPreKeys - 1) / kWgPreKeys);

  if (warp_id >= 8) {  // the producer warpgroup
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n" ::: "memory");
    if (warp_id == 8 && lane == 0) {
      mbar_arrive_expect_tx(q_full, SM::tile);
      tma_load_3d(smem + SM::q, &qmap, 0, int(qt * kWgPreRows), int(bh), q_full);
      tma_load_3d(smem + SM::q + SM::panel, &qmap, 64, int(qt * kWgPreRows), int(bh), q_full);
      for (int j = 0; j < ntiles; ++j) {
        const int slot = j % SM::slots;
        const uint32_t round = uint32_t(j / SM::slots);
        const int row = j * kWgPreKeys;
        if (j >= SM::slots) mbar_wait(k_empty + slot, (round - 1) & 1);
        mbar_arrive_expect_tx(k_full + slot, SM::tile);
        tma_load_3d(smem + SM::k + slot * SM::tile, &kmap, 0, row, int(head), k_full + slot);
        tma_load_3d(smem + SM::k + slot * SM::tile + SM::panel, &kmap, 64, row, int(head),
                    k_full + slot);
        if (j >= SM::slots) mbar_wait(v_empty + slot, (round - 1) & 1);
        mbar_arrive_expect_tx(v_full + slot, SM::tile);
        tma_load_3d(smem + SM::v + slot * SM::tile, &vmap, 0, row, int(head), v_full + slot);
        tma_load_3d(smem + SM::v + slot * SM::tile + SM::panel, &vmap, 64, row, int(head),
                    v_full + slot);
      }
    }
    return;
  }

  // Consumers: warpgroup wg of rows 64 wg .. 64 wg + 63.
  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n" ::: "memory");
  const int wg = warp_id / 4, warp = warp_id % 4;
  const int64_t wg_first = qpos0 + 64 * wg, wg_last = wg_first + 63;
  WgRows<T> w;
  w.init(wg_first, warp, lane, p);
  const uint32_t q_wg = base + SM::q + uint32_t(64 * wg) * 128u;
  auto kaddr = [&](int j) { return base + SM::k + uint32_t(j % SM::slots) * SM::tile; };
  auto vaddr = [&](int j) { return base + SM::v + uint32_t(j % SM::slots) * SM::tile; };
  auto wait_k = [&](int j) { mbar_wait(k_full + j % SM::slots, uint32_t(j / SM::slots) & 1); };
  auto wait_v = [&](int j) { mbar_wait(v_full + j % SM::slots, uint32_t(j / SM::slots) & 1); };
  auto release = [&](uint64_t* ring, int j) {
    if (lane == 0) mbar_arrive(ring + j % SM::slots);
  };
  const int nact =
      p.causal ? static_cast<int>(min(int64_t(ntiles), wg_last / kWgPreKeys + 1)) : ntiles;

  mbar_wait(q_full, 0);
  {
    wait_k(0);
    float s[64], alpha[2];
    wg_fence();
    w.issue_s(s, q_wg, kaddr(0));
    wg_wait<0>();
    wg_fence_operands(s);
    release(k_empty, 0);
    w.softmax(s, 0, alpha);
    w.next(s, alpha);
  }
  for (int j = 1; j < nact; ++j) {
    wait_k(j);
    wait_v(j - 1);
    float s[64], alpha[2];
    wg_fence_operands(w.o);
    wg_fence();
    w.issue_s(s, q_wg, kaddr(j));
    w.issue_pv(vaddr(j - 1));
    wg_wait<1>();
    wg_fence_operands(s);
    release(k_empty, j);
    w.softmax(s, int64_t(j) * kWgPreKeys, alpha);
    wg_wait<0>();
    wg_fence_operands(w.o);
    release(v_empty, j - 1);
    w.next(s, alpha);
  }
  wait_v(nact - 1);
  wg_fence_operands(w.o);
  wg_fence();
  w.issue_pv(vaddr(nact - 1));
  wg_wait<0>();
  wg_fence_operands(w.o);
  release(v_empty, nact - 1);

  // O / l in this warpgroup's rows of Q's space (only its own products read them), then its
  // rows written with 16-byte stores after a barrier of its 128 threads.
  w.stage_output(smem + SM::q, 64 * wg + 16 * warp);
  asm volatile("bar.sync %0, 128;" ::"r"(1 + wg) : "memory");
  T* og = static_cast<T*>(p.o) + (bh * p.q_len + qt * kWgPreRows) * 128;
  for (int i = tid % 128; i < 64 * 16; i += 128) {
    const int r = 64 * wg + i / 16, c = i % 16;
    if (r < rows_here)
      *reinterpret_cast<uint4*>(og + r * 128 + 8 * c) =
          *reinterpret_cast<const uint4*>(smem + SM::q + sw128_offset(r, c, kWgPreRows));
  }
#else
  __trap();  // built without sm_90a code: the host launches it only where
             // wgmma_probe_kernel found sm_90a code (Ctx::wgmma)
#endif
}

}  // namespace kvscope::kernels::cuda
