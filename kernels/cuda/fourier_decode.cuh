// Decode attention over the middle tokens of a Fourier-compressed cache (fourier_attention.cu):
// the scores of the compressed dims come straight from the coefficients and the values through
// the DCT of the softmax weights, so K and V are never rebuilt:
//   S^T[t, j]  = K[t, :] . Q[j, :]            (kept dims)
//              + sum_k B[k, t] P[j, k]         (compressed dims, P = Kc q_c / sqrt(L))
//   O^T[d, j] += V[t, d]^T W[t, j]            (kept dims, online softmax weights W)
//   R^T[k, j] += B[k, t] W[t, j]              (the weights' DCT; combine applies R to Vc)
// B[k, t] (the scaled DCT-II basis) depends only on the middle length L, which every head of a
// call shares. So a block takes one token range of several heads and generates each basis tile
// once for all of them, instead of once per head. And the basis is mirror-symmetric:
//   B[k, L-1-t] = (-1)^k B[k, t],
// so a tile takes 16 forward tokens t and their 16 mirrors L-1-t, and one basis tile of the
// forward tokens serves both. With E and O the sums over the even and the odd k,
//   S_c[t] = E + O,  S_c[L-1-t] = E - O,
//   R[k]  += B[k, t] (W[t] + W[L-1-t]) for even k,  B[k, t] (W[t] - W[L-1-t]) for odd k,
// which halves the basis and the M-dependent products per token. Basis rows, P's columns and
// R's rows are kept in that order, the even k first (fd_row_of_k).
//  - a block has kFdSets column sets of kDecCols (8) query columns, two warps per set: the
//    forward warp takes the forward rows' kept dims and V and the even k, the mirror warp the
//    mirrored rows and the odd k; they swap their score parts through shared memory, so both
//    hold all 32 scores and run the same online softmax (the same running maxima);
//  - a column set is one KV head's query group, or two heads when a group has <= 4 columns
//    (GQA 4 at q_len 1): the two heads share the basis fragments, the P operand and the R
//    accumulators, so the M-dependent products are done once for both;
//  - 3 stages of K/V tiles where they fit, so two tiles are in flight while one is used (one
//    block per SM); the basis tile is double-buffered where that still fits (the block writes
//    tile s+1's while its warps multiply with tile s's, one barrier per tile), else written
//    between two barriers.
// Each warp keeps its own running sum over its own rows; the block merges its warp pairs and
// writes one partial record (m, l, O, R) per head and query column; fourier_finish_kernel
// (fourier_finish.cuh) merges the splits.
#pragma once

#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/decode.cuh"
#include "kernels/cuda/timeline.cuh"

namespace kvscope::kernels::cuda {

constexpr int kFdSets = 4;         // column sets per block
constexpr int kFdWarpsPerSet = 2;  // the forward and the mirror warp of a set
constexpr int kFdWarps = kFdSets * kFdWarpsPerSet;
constexpr int kFdThreads = kFdWarps * 32;
constexpr int kFdFwd = 16;                    // forward tokens per tile (the M side of m16n8k16)
constexpr int kFdTile = 2 * kFdFwd;           // K/V rows per head and tile: forward, then mirrored
constexpr size_t kFdSmemBudget = 227 * 1024;  // opt-in shared memory per block on sm_90

// Position of coefficient k in the basis rows, in P's columns and in R's rows: the even k,
// then the odd k, so each parity is a contiguous run of k16 steps.
__host__ __device__ constexpr int fd_row_of_k(int k, int MP) { return (k % 2) * (MP / 2) + k / 2; }
__host__ __device__ constexpr int fd_k_of_row(int r, int MP) {
  return r < MP / 2 ? 2 * r : 2 * (r - MP / 2) + 1;
}

struct FourierDecodeParams {
  const void* q;     // [B, Hq, q_len, D]
  const void* k;     // kept dims of K [B*Hkv, tokens, DK]
  const void* v;     // kept dims of V
  const void* kc;    // coefficients of K [B*Hkv, M, C]
  const void* pmat;  // P from fourier_p_kernel [B*Hkv][8][MP], columns in fd_row_of_k order
  int64_t heads;     // B * Hkv
  int64_t kv_heads, group, q_len, head_dim, tokens;
  int64_t sink;  // token index of middle row 0
  int64_t M, C, L;
  int64_t rows_per_split;  // forward tokens per split
  bool causal;
  float scale_log2;      // log2(e) / sqrt(head_dim)
  float* partial;        // [B*Hkv][splits_total][rec], dec_rec_floats layout
  int64_t rec;           // floats per partial record
  int64_t splits_total;  // middle splits + the edge splits
  int16_t kdim[256];     // query dim of kept dim i
  int16_t cdim[256];     // query dim of compressed dim c
};

// kStages K/V tiles in flight; the basis tile is double-buffered where that still fits, else
// written between two barriers.
template <class T, int DK, int MT, int HPW, int kStages>
struct FourierDecodeSmem {
  static_assert(MT % 4 == 0, "each parity takes whole pairs of k16 steps");
  static constexpr int MP = MT * 16;
  static constexpr int PS = MP + 8;  // row stride of a set's P ([8][MP], padded for ldmatrix)
  static constexpr int kHeads = kFdSets * HPW;
  static constexpr size_t head_tile = size_t(kFdTile) * DK;  // elements of one head's K (or V)
  static constexpr size_t stage = 2 * kHeads * head_tile;    // K tiles, then V tiles
  static constexpr size_t tiles = kStages * stage * sizeof(T);
  static constexpr size_t basis_tile = size_t(MP) * kFdFwd;  // elements, [MP][kFdFwd]
  static constexpr size_t pmat = size_t(kFdSets) * kDecCols * PS * sizeof(T);
  // Per warp: the two score fragments it hands its partner, lane-major ([2][4][32] floats). They
  // need no space of their own: a warp writes them over its own 16 K rows of its set's first
  // head in the current stage, which it has read by then and no other warp reads (the partner
  // reads the other 16), and which the copies overwrite only after the next tile's barrier.
  // The 8 KB this saves is what lets the basis tile be double-buffered at M = 256.
  static constexpr int xchg_floats = 2 * 4 * 32;
  static_assert(size_t(kFdFwd) * DK * sizeof(T) >= xchg_floats * sizeof(float),
                "a warp's exchange fits in its 16 K rows");
  static constexpr int basis_bufs =
      tiles + 2 * basis_tile * sizeof(T) + pmat <= kFdSmemBudget ? 2 : 1;
  static constexpr size_t basis = basis_bufs * basis_tile * sizeof(T);
  static constexpr int merge_w = HPW * DK + MP / 2;  // per warp column: O of each head, R's half
  static constexpr size_t merge =
      size_t(kFdWarps) * (2 * kDecCols + kDecCols * merge_w) * sizeof(float);
  static constexpr size_t front = tiles > merge ? tiles : merge;  // the merge reuses the tiles
  static constexpr size_t bytes = front + basis + pmat;
};

// P[head][j][k] = sum_c q_c(j) Kc[k, c] / sqrt(L) for the (up to 8) query columns j of each KV
// head, k < MP (zero past min(M, L) and for absent columns), stored at column fd_row_of_k(k):
// the B operand of the scores of the compressed dims. Once per head, before
// fourier_decode_kernel's splits all read it. A block per head and kPRows rows k, a thread per
// (k, j): no reductions across threads, and enough blocks to spread over the device at batch 1
// (a block per head alone took ~70 us on an H200).
constexpr int kPThreads = 256;
constexpr int kPRows = kPThreads / kDecCols;
template <class T>
__global__ void __launch_bounds__(kPThreads)
    fourier_p_kernel(const FourierDecodeParams p, int64_t MP, T* pout, bool wait_before_exit) {
  extern __shared__ __align__(16) float qc[];  // [8][C + 1], padded: the 8 columns in 8 banks
  timeline_stamp(DecodeTimeline::p, DecodeTimeline::start);
  // The middle kernel may start its K/V copies now; it reads P after its own wait.
  allow_dependent_launch();
  const int64_t head = blockIdx.x;
  const int64_t b = head / p.kv_heads, kvh = head % p.kv_heads;
  const int ncols = static_cast<int>(p.group * p.q_len), qlen = static_cast<int>(p.q_len);
  const int C = static_cast<int>(p.C), QS = C + 1;
  const T* q = static_cast<const T*>(p.q);
  for (int i = threadIdx.x; i < kDecCols * C; i += blockDim.x) {
    const int j = i / C, c = i % C;
    float v = 0.f;
    if (j < ncols) {
      const int64_t qh = kvh * p.group + j / qlen, qi = j % qlen;
      v = to_f32(q[((b * p.kv_heads * p.group + qh) * p.q_len + qi) * p.head_dim + p.cdim[c]]);
    }
    qc[j * QS + c] = v;
  }
  __syncthreads();
  const int j = threadIdx.x % kDecCols;
  const int64_t k = int64_t(blockIdx.y) * kPRows + threadIdx.x / kDecCols;
  const int64_t kmax = p.M < p.L ? p.M : p.L;
  float acc = 0.f;
  if (k < kmax && k < MP) {
    const T* row = static_cast<const T*>(p.kc) + (head * p.M + k) * p.C;
    const float* qj = qc + j * QS;
    if (C % 8 == 0 && reinterpret_cast<uintptr_t>(p.kc) % 16 == 0) {
      // The row as 16-byte vectors, 8 loads issued together: element loads waited on one
      // 2-byte load at a time, and this kernel is on the decode's critical path.
#pragma unroll 8
      for (int c = 0; c < C; c += 8) {
        Vec16<T> kv;
        kv.u = ldg16(row + c);
#pragma unroll
        for (int e = 0; e < 8; ++e) acc = fmaf(qj[c + e], to_f32(kv.e[e]), acc);
      }
    } else {
      for (int c = 0; c < C; ++c) acc = fmaf(qj[c], to_f32(row[c]), acc);
    }
  }
  if (k < MP)
    pout[(head * kDecCols + j) * MP + fd_row_of_k(static_cast<int>(k), static_cast<int>(MP))] =
        from_f32<T>(acc * rsqrtf(static_cast<float>(p.L)));
  // wait_before_exit: in the chain of programmatic launches where the sink-and-window kernel
  // comes first, whose records only the finishing kernel reads.
  // One block waits for it before exiting, so that this grid finishes after it: the middle
  // kernel's wait for this grid then covers both, and the finishing kernel's wait for the middle
  // kernel covers all three. The other blocks leave at once: a middle block needs a whole SM,
  // and waiting blocks kept it from their SMs.
  timeline_stamp(DecodeTimeline::p, DecodeTimeline::end);
  if (wait_before_exit && blockIdx.x == 0 && blockIdx.y == 0) {
    grid_dependency_wait();
    timeline_stamp(DecodeTimeline::p, DecodeTimeline::waited);
  }
}

// The online softmax step of a mirrored tile: sf[e] holds forward token t0 + i and sm[e] its
// mirror L-1-(t0+i), i = g + 8 (e / 2), column 2tq + e % 2 (the m16n8k16 fragment layout).
// Like online_softmax_fragment (decode.cuh), over both fragments at once: masks, scales to log2
// units, folds the 32 rows into the running maxima and leaves the weights in sf and sm. The
// running sum takes only this warp's own rows (the forward rows, or the mirrored ones with
// `mirror`), so that the pair's sums add up at the merge.
__device__ __forceinline__ void online_softmax_mirrored(
    float (&sf)[4], float (&sm)[4], int g, int valid_f, int valid_m, int64_t t0, int64_t L,
    const bool (&col_ok)[2], const int64_t (&last_row)[2], float scale_log2, bool mirror,
    float (&m_run)[2], float (&l_run)[2], float (&alpha)[2]) {
  float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int i = g + 8 * (e / 2), h = e % 2;
    const bool okf = i < valid_f && col_ok[h] && t0 + i <= last_row[h];
    const bool okm = i < valid_m && col_ok[h] && L - 1 - t0 - i <= last_row[h];
    sf[e] = okf ? sf[e] * scale_log2 : -INFINITY;
    sm[e] = okm ? sm[e] * scale_log2 : -INFINITY;
    mx[h] = fmaxf(mx[h], fmaxf(sf[e], sm[e]));
  }
  float mbase[2];
  fold_running_max(mx, m_run, l_run, mbase, alpha);
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    sf[e] = exp2f(sf[e] - mbase[e % 2]);
    sm[e] = exp2f(sm[e] - mbase[e % 2]);
    l_run[e % 2] += mirror ? sm[e] : sf[e];
  }
}

// HPW: KV heads per column set (2 when group * q_len <= 4, else 1).
template <class T, int DK, int MT, int HPW, int kStages>
__global__ void __launch_bounds__(kFdThreads, 1)
    fourier_decode_kernel(const FourierDecodeParams p) {
  using SM = FourierDecodeSmem<T, DK, MT, HPW, kStages>;
  static_assert(kFdWarpsPerSet == 2, "a set is one forward and one mirror warp");
  constexpr int kBasisBufs = SM::basis_bufs;
  constexpr int KC = DK / 8, MP = SM::MP, PS = SM::PS, kHeads = SM::kHeads;
  constexpr int kColsPerHead = kDecCols / HPW;
  constexpr int KH = MT / 2;  // k16 steps of one parity
  // Basis generation: runs of 8 tokens (one 16-byte store) of one row.
  constexpr int kRunsPerRow = kFdFwd / 8;
  static_assert(kFdThreads % MP == 0 && kFdThreads / MP <= kRunsPerRow, "basis rows per thread");
  constexpr int kRunsPerThread = kRunsPerRow / (kFdThreads / MP);
  extern __shared__ __align__(16) unsigned char smem[];
  timeline_stamp(DecodeTimeline::middle, DecodeTimeline::start);
  T* tiles = reinterpret_cast<T*>(smem);
  T* basis_bufs = reinterpret_cast<T*>(smem + SM::front);  // kBasisBufs x [MP][kFdFwd], swizzled
  T* pmat = reinterpret_cast<T*>(smem + SM::front + SM::basis);  // [kFdSets][8][PS]

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, tq = lane % 4;
  const int set = warp / kFdWarpsPerSet, part = warp % kFdWarpsPerSet;  // part 1: mirror warp
  const int64_t head0 = int64_t(blockIdx.y) * kHeads;                   // first head of this block
  const int split = blockIdx.x;
  // Forward tokens [nb, ne) of [0, H); forward token t has a mirror L-1-t while t < L / 2.
  const int64_t H = (p.L + 1) / 2, mirrored = p.L / 2;
  const int64_t nb = int64_t(split) * p.rows_per_split;
  const int64_t ne = min(nb + p.rows_per_split, H);
  const int64_t ne_m = min(ne, mirrored);
  const int ncols = static_cast<int>(p.group * p.q_len);
  const int qlen = static_cast<int>(p.q_len);
  const T* q = static_cast<const T*>(p.q);
  auto head_of = [&](int set_index, int slot) { return head0 + set_index * HPW + slot; };
  const bool set_active = head_of(set, 0) < p.heads;

  // This thread's two score columns (2tq, 2tq+1): valid, and the last visible row.
  bool col_ok[2];
  int64_t last_row[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int j = 2 * tq + h, jl = j % kColsPerHead;
    col_ok[h] = jl < ncols && head_of(set, j / kColsPerHead) < p.heads;
    const int64_t qpos = p.tokens - p.q_len + (jl % qlen);
    last_row[h] = p.causal ? qpos - p.sink : INT64_MAX;
  }

  // B fragments of Q over the kept dims, per head slot: b0 = Q[g][16ks + 2tq, +1], b1 = +8;
  // zero in the columns of the other slot.
  uint32_t qf[HPW][DK / 16][2];
#pragma unroll
  for (int hs = 0; hs < HPW; ++hs) {
    const int64_t head = head_of(set, hs);
    const int jl = g % kColsPerHead;
    const bool ok = g / kColsPerHead == hs && jl < ncols && head < p.heads;
    const int64_t b = ok ? head / p.kv_heads : 0, kvh = ok ? head % p.kv_heads : 0;
    const int64_t qh = kvh * p.group + (ok ? jl / qlen : 0), qi = ok ? jl % qlen : 0;
    const T* qr = q + ((b * p.kv_heads * p.group + qh) * p.q_len + qi) * p.head_dim;
#pragma unroll
    for (int ks = 0; ks < DK / 16; ++ks)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int i = 16 * ks + 2 * tq + 8 * h;
        const float a = ok ? to_f32(qr[p.kdim[i]]) : 0.f;
        const float c = ok ? to_f32(qr[p.kdim[i + 1]]) : 0.f;
        qf[hs][ks][h] = pack2<T>(a, c);
      }
  }

  // Basis: this thread writes row br (coefficient bk), runs first_run .. first_run +
  // kRunsPerThread - 1 of each tile's forward tokens. Per tile an exact start (integer phase
  // (2n+1)k mod 4L), the next run by a rotation of 8 tokens, each run advanced by the
  // three-term recurrence (one multiply-add per value).
  const int br = threadIdx.x % MP, first_run = (threadIdx.x / MP) * kRunsPerThread;
  const int bk = fd_k_of_row(br, MP);
  float cd, sd, c8, s8, wk;
  int64_t phase, step;
  {
    const int64_t L4 = 4 * p.L, kmax = p.M < p.L ? p.M : p.L;
    sincospif(static_cast<float>(bk % (2 * p.L)) / static_cast<float>(p.L), &sd, &cd);
    sincospif(static_cast<float>((16 * int64_t(bk)) % L4) / static_cast<float>(2 * p.L), &s8, &c8);
    wk = bk >= kmax ? 0.f : (bk == 0 ? 1.f : 1.41421356237309515f);
    phase = ((2 * (nb + 8 * first_run) + 1) * bk) % L4;
    step = (2 * kFdFwd * int64_t(bk)) % L4;
  }
  auto make_basis = [&](T* basis, int64_t t0) {
    const int lim = static_cast<int>(min(int64_t(kFdFwd), H - t0));  // basis 0 past H
    float s0, c0;
    sincospif(static_cast<float>(phase) / static_cast<float>(2 * p.L), &s0, &c0);
    phase += step;
    if (phase >= 4 * p.L) phase -= 4 * p.L;
    c0 *= wk;
    s0 *= wk;
    float x[kRunsPerThread], prev[kRunsPerThread];
#pragma unroll
    for (int r = 0; r < kRunsPerThread; ++r) {
      x[r] = c0;
      prev[r] = c0 * cd + s0 * sd;
      const float c1 = c0 * c8 - s0 * s8;
      s0 = s0 * c8 + c0 * s8;
      c0 = c1;
    }
    uint32_t packed[kRunsPerThread][4];
#pragma unroll
    for (int e = 0; e < 8; e += 2)
#pragma unroll
      for (int r = 0; r < kRunsPerThread; ++r) {
        const float v0 = x[r];
        float nx = fmaf(2.f * cd, x[r], -prev[r]);
        prev[r] = x[r];
        x[r] = nx;
        const float v1 = x[r];
        nx = fmaf(2.f * cd, x[r], -prev[r]);
        prev[r] = x[r];
        x[r] = nx;
        packed[r][e / 2] = pack2<T>(v0, v1);
      }
    T* row = basis + br * kFdFwd;
#pragma unroll
    for (int r = 0; r < kRunsPerThread; ++r)
      *reinterpret_cast<uint4*>(row + 8 * swz<kFdFwd / 8>(br, first_run + r)) =
          make_uint4(packed[r][0], packed[r][1], packed[r][2], packed[r][3]);
    // Only the last tile of the middle can reach past H: zero its rows there afterwards, rather
    // than compare every value with the limit.
    if (lim < kFdFwd) {
#pragma unroll
      for (int r = 0; r < kRunsPerThread; ++r)
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const int n = 8 * (first_run + r) + j;
          if (n >= lim) row[8 * swz<kFdFwd / 8>(br, n / 8) + n % 8] = from_f32<T>(0.f);
        }
    }
  };

  float o[HPW][DK / 16][4] = {};
  float racc[KH][4] = {};  // R rows of this warp's parity
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};

  const int tiles_n = static_cast<int>((ne - nb + kFdFwd - 1) / kFdFwd);
  // The K/V copies: the block's threads cover kCopyHeads heads' tiles per round, so a thread's
  // row and chunk are the same in every round and tile and only its head and the tile advance.
  // Its source addresses are one pointer plus a stride per round and per tile, computed once:
  // 64-bit index arithmetic per 16-byte copy was 40 % of the kernel's instructions. Rows
  // kFdFwd.. of a head's tile are the mirrors of its rows 0.., so their tokens run backwards.
  constexpr int kTileChunks = kFdTile * KC;  // 16-byte chunks of one head's tile
  static_assert(kFdThreads % kTileChunks == 0, "copy rounds take whole heads");
  constexpr int kCopyHeads = kFdThreads / kTileChunks;
  static_assert(kHeads % kCopyHeads == 0, "copy rounds cover the block's heads");
  const int cp_c = threadIdx.x % KC, cp_r = (threadIdx.x / KC) % kFdTile;
  const int cp_h = threadIdx.x / kTileChunks;  // head of the first round
  const bool cp_mirror = cp_r >= kFdFwd;
  const int cp_i = cp_r % kFdFwd;  // the forward token's index in the tile
  const size_t cp_dst = size_t(cp_h) * SM::head_tile + cp_r * DK + 8 * swz<KC>(cp_r, cp_c);
  const int64_t cp_round = int64_t(kCopyHeads) * p.tokens * DK;         // elements between rounds
  const int64_t cp_row0 = cp_mirror ? p.L - 1 - nb - cp_i : nb + cp_i;  // middle row, tile 0
  const int64_t cp_step = (cp_mirror ? -1 : 1) * int64_t(kFdFwd) * DK;  // elements per tile
  const int64_t cp_src = ((head0 + cp_h) * p.tokens + p.sink + cp_row0) * DK + 8 * cp_c;
  const int64_t cp_lim = (cp_mirror ? ne_m : ne) - nb - cp_i;  // row valid in tile s: 16 s < it
  const int64_t heads_left = p.heads - head0 - cp_h;           // round it copies a head while
                                                               // it * kCopyHeads < heads_left
  auto issue = [&](int s) {
    if (s < tiles_n) {
      T* kt = tiles + size_t(s % kStages) * SM::stage + cp_dst;
      const bool row_ok = int64_t(s) * kFdFwd < cp_lim;
      const T* k0 = static_cast<const T*>(p.k);
      const T* v0 = static_cast<const T*>(p.v);
      const int64_t off = cp_src + int64_t(s) * cp_step;
#pragma unroll
      for (int it = 0; it < kHeads / kCopyHeads; ++it) {
        const bool ok = row_ok && int64_t(it) * kCopyHeads < heads_left;
        T* dst = kt + size_t(it) * kCopyHeads * SM::head_tile;
        const int64_t src = ok ? off + int64_t(it) * cp_round : 0;  // zeros where !ok
        cp_async16(dst, k0 + src, ok);
        cp_async16(dst + kHeads * SM::head_tile, v0 + src, ok);
      }
    }
    cp_async_commit();
  };
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(s);
  if constexpr (kBasisBufs == 2) make_basis(basis_bufs, nb);

  // P of each set's heads (columns [kColsPerHead * slot, ...) of a set are head slot's columns),
  // written by fourier_p_kernel: read after the wait for it, once the K/V copies of the first
  // stages and the first basis tile are under way. Through L2 (ld.global.cg), and into shared
  // memory before the first tile's barrier.
  grid_dependency_wait();
  timeline_stamp(DecodeTimeline::middle, DecodeTimeline::waited);
  allow_dependent_launch();
  {
    const T* pg = static_cast<const T*>(p.pmat);
    for (int i = threadIdx.x; i < kFdSets * kDecCols * (MP / 8); i += kFdThreads) {
      const int c8 = (i % (MP / 8)) * 8, j = (i / (MP / 8)) % kDecCols, s = i / (MP / 8 * kDecCols);
      const int64_t head = head_of(s, j / kColsPerHead);
      const uint4 v = head < p.heads ? ldcg16(pg + (head * kDecCols + j % kColsPerHead) * MP + c8)
                                     : make_uint4(0u, 0u, 0u, 0u);
      *reinterpret_cast<uint4*>(pmat + (s * kDecCols + j) * PS + c8) = v;
    }
  }

  for (int s = 0; s < tiles_n; ++s) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    issue(s + kStages - 1);
    T* kt = tiles + size_t(s % kStages) * SM::stage;  // written: the score exchange
    const T* basis = basis_bufs + (s % kBasisBufs) * SM::basis_tile;
    const int64_t t0 = nb + int64_t(s) * kFdFwd;
    const int valid_f = static_cast<int>(min(int64_t(kFdFwd), ne - t0));
    const int valid_m = static_cast<int>(max(int64_t(0), min(int64_t(kFdFwd), ne_m - t0)));
    if constexpr (kBasisBufs == 1) {  // every warp is past the previous tile: overwrite it
      make_basis(basis_bufs, t0);
      __syncthreads();
    }
    if (set_active) {
      // This warp's parts of the scores: its own rows' kept dims (the forward rows, or the
      // mirrored ones) and its parity's sum over k, E or O. Four partial accumulators (the kept
      // dims of each head slot, alternate k16 steps), summed at the end: one accumulator
      // would chain DK / 16 * HPW + KH dependent MMAs, on every tile's critical path.
      float part_sc[4][4] = {};
      const int krow0 = kFdFwd * part, krow = krow0 + lane % 16;
#pragma unroll
      for (int hs = 0; hs < HPW; ++hs) {
        const T* kh = kt + (set * HPW + hs) * SM::head_tile;
#pragma unroll
        for (int ks = 0; ks < DK / 16; ++ks) {
          uint32_t a[4];
          ldmatrix_x4(a, kh + krow * DK + 8 * swz<KC>(krow, 2 * ks + lane / 16));
          mma16816<T>(part_sc[HPW == 1 ? ks % 2 : hs], a, qf[hs][ks]);
        }
      }
      const T* pm = pmat + set * kDecCols * PS;
#pragma unroll
      for (int ks = part * KH; ks < (part + 1) * KH; ks += 2) {
        uint32_t a[4], pb[4];
        ldmatrix_x4(pb, pm + (lane % 8) * PS + 16 * ks + (lane / 8) * 8);
        const uint32_t b0[2] = {pb[0], pb[1]}, b1[2] = {pb[2], pb[3]};
#pragma unroll
        for (int u = 0; u < 2; ++u) {
          const int row = 16 * (ks + u) + (lane % 8) + (lane / 16) * 8;
          ldmatrix_x4_trans(a, basis + row * kFdFwd + 8 * swz<kFdFwd / 8>(row, (lane / 8) % 2));
          mma16816<T>(part_sc[2 + u], a, u == 0 ? b0 : b1);
        }
      }
      // Forward scores (kept + E + O) and mirrored ones (kept' + E - O): the forward warp hands
      // over (kept + E, E), the mirror warp (O, kept' - O), and each adds its partner's pair to
      // its own. Float addition commutes, so both warps hold the same scores to the bit. The
      // exchange goes over each warp's own K rows (FourierDecodeSmem::xchg_floats): the warp's
      // ldmatrix reads of them are done before any lane stores (__syncwarp).
      float* x_mine = reinterpret_cast<float*>(kt + set * HPW * SM::head_tile + krow0 * DK);
      const float* x_partner =
          reinterpret_cast<const float*>(kt + set * HPW * SM::head_tile + (kFdFwd - krow0) * DK);
      __syncwarp();
      float pub[2][4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float kept = part_sc[0][e] + part_sc[1][e], spec = part_sc[2][e] + part_sc[3][e];
        pub[0][e] = part == 0 ? kept + spec : spec;
        pub[1][e] = part == 0 ? spec : kept - spec;
        x_mine[e * 32 + lane] = pub[0][e];
        x_mine[(4 + e) * 32 + lane] = pub[1][e];
      }
      asm volatile("bar.sync %0, 64;" ::"r"(1 + set) : "memory");
      float sf[4], sm[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        sf[e] = pub[0][e] + x_partner[e * 32 + lane];
        sm[e] = pub[1][e] + x_partner[(4 + e) * 32 + lane];
      }
      float alpha[2];
      online_softmax_mirrored(sf, sm, g, valid_f, valid_m, t0, p.L, col_ok, last_row, p.scale_log2,
                              part == 1, m_run, l_run, alpha);
      // Once the running maxima settle, most tiles leave them unchanged: skip the rescale of
      // the accumulators then (alpha = 1 exactly).
      if (!__all_sync(0xffffffffu, alpha[0] == 1.f && alpha[1] == 1.f)) {
#pragma unroll
        for (int hs = 0; hs < HPW; ++hs)
#pragma unroll
          for (int i = 0; i < DK / 16; ++i)
#pragma unroll
            for (int e = 0; e < 4; ++e) o[hs][i][e] *= alpha[e % 2];
#pragma unroll
        for (int i = 0; i < KH; ++i)
#pragma unroll
          for (int e = 0; e < 4; ++e) racc[i][e] *= alpha[e % 2];
      }
      // W of this warp's own rows, and W_f +- W_m for its parity's R, as B operands (k =
      // token, n = column): transpose the two 8x8 halves in registers.
      const float sg = part == 0 ? 1.f : -1.f;
      float w[4], wr[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        w[e] = part == 0 ? sf[e] : sm[e];
        wr[e] = fmaf(sg, sm[e], sf[e]);
      }
      uint32_t wf[2], wrf[2];
      wf[0] = movmatrix_trans(pack2<T>(w[0], w[1]));
      wf[1] = movmatrix_trans(pack2<T>(w[2], w[3]));
      wrf[0] = movmatrix_trans(pack2<T>(wr[0], wr[1]));
      wrf[1] = movmatrix_trans(pack2<T>(wr[2], wr[3]));
      const int vrow = 16 * part + (lane % 8) + (lane / 16) * 8;
#pragma unroll
      for (int hs = 0; hs < HPW; ++hs) {
        const T* vh = kt + (kHeads + set * HPW + hs) * SM::head_tile;
#pragma unroll
        for (int i = 0; i < DK / 16; ++i) {
          uint32_t a[4];
          ldmatrix_x4_trans(a, vh + vrow * DK + 8 * swz<KC>(vrow, 2 * i + (lane / 8) % 2));
          mma16816<T>(o[hs][i], a, wf);
        }
      }
#pragma unroll
      for (int i = 0; i < KH; ++i) {
        uint32_t a[4];
        const int row = 16 * (part * KH + i) + lane % 16;
        ldmatrix_x4(a, basis + row * kFdFwd + 8 * swz<kFdFwd / 8>(row, lane / 16));
        mma16816<T>(racc[i], a, wrf);
      }
    }
    if constexpr (kBasisBufs == 2)
      if (s + 1 < tiles_n) make_basis(basis_bufs + ((s + 1) % 2) * SM::basis_tile, t0 + kFdFwd);
  }
  cp_async_wait<0>();
  __syncthreads();

  // Merge the warps of each set: per column m = max over its warps (the pair's are equal), each
  // warp's sums scaled by 2^(m_w - m). Per warp: m[8], l[8], then [8][merge_w] (O of each head
  // slot, then the R rows of its parity).
  constexpr int W = SM::merge_w;
  constexpr int kWarpFloats = 2 * kDecCols + kDecCols * W;
  float* mine = reinterpret_cast<float*>(smem) + warp * kWarpFloats;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
#pragma unroll
    for (int o2 = 4; o2 < 32; o2 <<= 1) l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], o2);
    if (g == 0) {
      mine[2 * tq + h] = m_run[h];
      mine[kDecCols + 2 * tq + h] = l_run[h];
    }
  }
  float* acc = mine + 2 * kDecCols;
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int j = 2 * tq + e % 2, r = g + 8 * (e / 2);
#pragma unroll
    for (int hs = 0; hs < HPW; ++hs)
#pragma unroll
      for (int i = 0; i < DK / 16; ++i) acc[j * W + hs * DK + 16 * i + r] = o[hs][i][e];
#pragma unroll
    for (int i = 0; i < KH; ++i) acc[j * W + HPW * DK + 16 * i + r] = racc[i][e];
  }
  __syncthreads();
  // out per head: m[8], l[8], O[8][DK], R[8][MP] in k order (OC belongs to the edge splits only).
  constexpr int X = DK + MP;
  const float* all = reinterpret_cast<const float*>(smem);
  for (int i = threadIdx.x; i < kHeads * kColsPerHead * X; i += kFdThreads) {
    const int x = i % X, jl = (i / X) % kColsPerHead, hh = i / (X * kColsPerHead);
    const int64_t head = head0 + hh;
    if (jl >= ncols || head >= p.heads) continue;
    const int s = hh / HPW, hs = hh % HPW, j = hs * kColsPerHead + jl;
    const float* w0 = all + s * kFdWarpsPerSet * kWarpFloats;
    float m = -INFINITY;
#pragma unroll
    for (int w = 0; w < kFdWarpsPerSet; ++w) m = fmaxf(m, w0[w * kWarpFloats + j]);
    const float base = m == -INFINITY ? 0.f : m;
    // O sums over both warps; R row k is held by the warp of its parity only.
    const int rrow = x < DK ? 0 : fd_row_of_k(x - DK, MP);
    const int owner = x < DK ? -1 : rrow / (MP / 2);
    const int col = x < DK ? hs * DK + x : HPW * DK + rrow % (MP / 2);
    float sum = 0.f, l = 0.f;
#pragma unroll
    for (int w = 0; w < kFdWarpsPerSet; ++w) {
      const float* ww = w0 + w * kWarpFloats;
      const float f = exp2f(ww[j] - base);
      if (owner < 0 || owner == w) sum += f * ww[2 * kDecCols + j * W + col];
      l += f * ww[kDecCols + j];
    }
    float* out = p.partial + (head * p.splits_total + split) * p.rec;
    out[x < DK ? dec_rec_o() + jl * DK + x : dec_rec_r(DK) + jl * MP + (x - DK)] = sum;
    if (x == 0) {
      out[jl] = m;
      out[kDecCols + jl] = l;
    }
  }
  timeline_stamp(DecodeTimeline::middle, DecodeTimeline::end);
}

}  // namespace kvscope::kernels::cuda
