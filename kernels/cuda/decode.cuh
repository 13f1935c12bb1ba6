// Split-K decode attention on tensor cores, shared by exact attention (attention.cu) and
// attention over a Fourier-compressed cache (fourier_attention.cu).
//
// One block = one (batch, kv head) and a range of tokens (a "split"); its up to 8 query columns
// are the group's query heads times q_len (GQA: K and V are read once for the whole group). The
// tokens are the M side of m16n8k16 (16 per warp per 64-token tile) and the query columns the N
// side, so the group's 4-8 queries waste no more than half an n8 tile:
//   S^T[t, j]  = K[t, :] . Q[j, :]                        (exact, or the kept dims)
//              + sum_k B[k, t] P[j, k]                     (Fourier: P = Kc q_c, scores of the
//                                                            compressed dims straight from the
//                                                            coefficients, no K rebuilt)
//   O^T[d, j] += V[t, d]^T W[t, j]                         (online softmax weights W)
//   R^T[k, j] += B[k, t] W[t, j]                           (Fourier: the DCT of the weights;
//                                                            the combine applies R to Vc)
// The basis tile B[k, t] is generated in shared memory per tile (BasisRun-style rotation), so
// nothing depends on a table for this L. Each warp keeps its own running max/sum; the block
// merges its warps and writes one partial (m, l, O, R) per query column; attention_combine
// merges the splits.
#pragma once

#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace kvscope::kernels::cuda {

constexpr int kDecThreads = 128;  // 4 warps x 16 tokens = one 64-token tile
constexpr int kDecTile = 64;
constexpr int kDecCols = 8;

struct DecodeParams {
  const void* q;  // [B, Hq, q_len, D]
  const void* k;  // rows of DK elements: exact K, or the kept dims of K
  const void* v;
  const void* kc;    // Fourier: coefficients of K [B, Hkv, M, C] (else null)
  const void* pmat;  // Fourier: P from fourier_p_kernel [B*Hkv][8][MP]
  int64_t kv_heads, group, q_len, head_dim, tokens;
  int64_t row0;  // token index of row 0 of k/v for this range (0, or sink for Fourier)
  int64_t rows;  // rows in the range (T, or the middle length L)
  int64_t pos0;  // absolute position of row 0 (for causal masking)
  int64_t rows_per_split;
  int64_t M, C, L;  // Fourier only
  bool causal;
  float scale_log2;      // log2(e) / sqrt(head_dim)
  float* partial;        // [B*Hkv][splits][rec]
  int64_t rec;           // floats per partial record
  int64_t splits_total;  // splits per head in the partial buffer (may include an edge split)
  int16_t kdim[256];     // query dim of kept dim i (identity for exact attention)
  int16_t cdim[256];     // query dim of compressed dim c
};

// Partial record layout per (head, split): m[8], l[8], O[8][DK], R[8][MP], OC[8][C].
__host__ __device__ inline int64_t dec_rec_floats(int64_t dk, int64_t mp, int64_t c) {
  return 2 * kDecCols + kDecCols * (dk + mp + c);
}

// Shared-memory rows are not padded but XOR-swizzled in 16-byte chunks: the 8 rows an ldmatrix
// reads land in 8 different bank groups, and the tiles fit three blocks per SM.
template <int kChunksPerRow>
__device__ __forceinline__ int swz(int row, int chunk) {
  if constexpr (kChunksPerRow >= 8) return chunk ^ (row & 7);
  if constexpr (kChunksPerRow == 4) return chunk ^ ((row >> 1) & 3);
  return chunk ^ ((row >> 2) & 1);
}

template <class T, int DK, int MT, int kStages>
struct DecodeSmem {
  static constexpr int KC = DK / 8;  // 16-byte chunks per K/V row
  static constexpr int MP = MT * 16;
  static constexpr int PS = MP + 8;  // row stride of P ([8][MP], padded: read by ldmatrix rows)
  static constexpr size_t tiles = size_t(kStages) * 2 * kDecTile * DK * sizeof(T);
  static constexpr size_t basis = size_t(MP) * kDecTile * sizeof(T);
  static constexpr size_t pmat = MT > 0 ? size_t(kDecCols) * PS * sizeof(T) : 0;
  static constexpr size_t merge = size_t(4) * kDecCols * (DK + MP + 2) * sizeof(float);
  static constexpr size_t loop = tiles + basis;
  static constexpr size_t front = loop > merge ? loop : merge;
  static constexpr size_t bytes = front + pmat;  // P lives after everything else
};

// P[head][j][k] = sum_c q_c(j) Kc[k, c] / sqrt(L) for the (up to 8) query columns j of each KV
// head, k < MP (zero past min(M, L) and for absent columns): the B operand of the scores of the
// compressed dims. Once per head, before decode_kernel's splits all read it.
template <class T>
__global__ void __launch_bounds__(256) fourier_p_kernel(const DecodeParams p, int64_t MP, T* pout) {
  extern __shared__ __align__(16) float qc[];  // [8][C]
  const int64_t head = blockIdx.x;
  const int64_t b = head / p.kv_heads, kvh = head % p.kv_heads;
  const int ncols = static_cast<int>(p.group * p.q_len), qlen = static_cast<int>(p.q_len);
  const int C = static_cast<int>(p.C);
  const T* q = static_cast<const T*>(p.q);
  for (int i = threadIdx.x; i < kDecCols * C; i += blockDim.x) {
    const int j = i / C, c = i % C;
    float v = 0.f;
    if (j < ncols) {
      const int64_t qh = kvh * p.group + j / qlen, qi = j % qlen;
      v = to_f32(q[((b * p.kv_heads * p.group + qh) * p.q_len + qi) * p.head_dim + p.cdim[c]]);
    }
    qc[i] = v;
  }
  __syncthreads();
  const T* kc = static_cast<const T*>(p.kc) + head * p.M * p.C;
  const int64_t kmax = p.M < p.L ? p.M : p.L;
  const float inv_sqrt_l = rsqrtf(static_cast<float>(p.L));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int64_t k = warp; k < MP; k += 8) {
    float acc[kDecCols] = {};
    if (k < kmax)
      for (int c = lane; c < C; c += 32) {
        const float x = to_f32(kc[k * C + c]);
#pragma unroll
        for (int j = 0; j < kDecCols; ++j) acc[j] = fmaf(qc[j * C + c], x, acc[j]);
      }
#pragma unroll
    for (int j = 0; j < kDecCols; ++j) {
      const float v = warp_sum(acc[j]);
      if (lane == j) pout[(head * kDecCols + j) * MP + k] = from_f32<T>(v * inv_sqrt_l);
    }
  }
}

template <class T, int DK, int MT, int kStages>
__global__ void __launch_bounds__(kDecThreads, MT > 0 ? 3 : 2) decode_kernel(const DecodeParams p) {
  using SM = DecodeSmem<T, DK, MT, kStages>;
  constexpr int KC = SM::KC, MP = SM::MP, PS = SM::PS;
  constexpr bool kFourier = MT > 0;
  constexpr int R = kFourier ? (MP + kDecThreads - 1) / kDecThreads : 1;
  extern __shared__ __align__(16) unsigned char smem[];
  T* tiles = reinterpret_cast<T*>(smem);
  T* basis = reinterpret_cast<T*>(smem + SM::tiles);  // [MP][64], swizzled
  T* pmat = reinterpret_cast<T*>(smem + SM::front);   // [8][PS]

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, tq = lane % 4;
  const int64_t head = blockIdx.y;  // b * kv_heads + kvh
  const int64_t b = head / p.kv_heads, kvh = head % p.kv_heads;
  const int split = blockIdx.x;
  const int64_t nb = int64_t(split) * p.rows_per_split;
  const int64_t ne = min(nb + p.rows_per_split, p.rows);
  const int ncols = static_cast<int>(p.group * p.q_len);
  const int qlen = static_cast<int>(p.q_len);
  const T* q = static_cast<const T*>(p.q);
  const T* kbase = static_cast<const T*>(p.k) + (head * p.tokens + p.row0) * DK;
  const T* vbase = static_cast<const T*>(p.v) + (head * p.tokens + p.row0) * DK;

  if constexpr (kFourier) {  // P of this head, computed by fourier_p_kernel
    const T* pg = static_cast<const T*>(p.pmat) + head * kDecCols * MP;
    for (int i = threadIdx.x; i < kDecCols * MP / 8; i += kDecThreads) {
      const int j = i / (MP / 8), c8 = (i % (MP / 8)) * 8;
      cp_async16(pmat + j * PS + c8, pg + j * MP + c8, true);
    }
  }

  // This thread's two score columns (2tq, 2tq+1): valid, and the last visible row.
  bool col_ok[2];
  int64_t last_row[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int j = 2 * tq + h;
    col_ok[h] = j < ncols;
    const int64_t qpos = p.tokens - p.q_len + (j % qlen);
    last_row[h] = p.causal ? qpos - p.pos0 : INT64_MAX;
  }

  // B fragments of Q over the kept dims: b0 = Q[g][16ks + 2tq, +1], b1 = +8.
  uint32_t qf[DK / 16][2];
  {
    const bool ok = g < ncols;
    const int64_t qh = kvh * p.group + (ok ? g / qlen : 0), qi = ok ? g % qlen : 0;
    const T* qr = q + ((b * p.kv_heads * p.group + qh) * p.q_len + qi) * p.head_dim;
#pragma unroll
    for (int ks = 0; ks < DK / 16; ++ks)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int i = 16 * ks + 2 * tq + 8 * h;
        const float a = ok ? to_f32(qr[p.kdim[i]]) : 0.f;
        const float c = ok ? to_f32(qr[p.kdim[i + 1]]) : 0.f;
        qf[ks][h] = pack2<T>(a, c);
      }
  }

  // Basis rows of this thread: k = threadIdx.x + 128 r. Per tile: an exact start (integer phase
  // (2n+1)k mod 4L), 4 chains of 16 tokens per row started by rotations of it, each advanced by
  // the three-term recurrence (one multiply-add per value).
  float cd[R], sd[R], c16[R][3], s16[R][3], wk[R];
  int64_t phase[R], step[R];
  if constexpr (kFourier) {
    const int64_t L4 = 4 * p.L, kmax = p.M < p.L ? p.M : p.L;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t k = threadIdx.x + int64_t(kDecThreads) * r;
      sincospif(static_cast<float>(k % (2 * p.L)) / static_cast<float>(p.L), &sd[r], &cd[r]);
#pragma unroll
      for (int j = 0; j < 3; ++j) {
        const int64_t pj = (32 * (j + 1) * k) % L4;  // 16 (j + 1) tokens
        sincospif(static_cast<float>(pj) / static_cast<float>(2 * p.L), &s16[r][j], &c16[r][j]);
      }
      wk[r] = k >= kmax ? 0.f : (k == 0 ? 1.f : 1.41421356237309515f);
      phase[r] = ((2 * nb + 1) * k) % L4;
      step[r] = (2 * kDecTile * k) % L4;
    }
  }

  float o[DK / 16][4] = {};
  float racc[MT > 0 ? MT : 1][4] = {};
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};

  const int tiles_n = static_cast<int>((ne - nb + kDecTile - 1) / kDecTile);
  auto issue = [&](int s) {
    if (s < tiles_n) {
      T* kt = tiles + size_t(s % kStages) * 2 * kDecTile * DK;
      T* vt = kt + kDecTile * DK;
      const int64_t t0 = nb + int64_t(s) * kDecTile;
      const int valid = static_cast<int>(min(int64_t(kDecTile), ne - t0));
      const T* ks = kbase + t0 * DK;
      const T* vs = vbase + t0 * DK;
#pragma unroll
      for (int i = threadIdx.x; i < kDecTile * KC; i += kDecThreads) {
        const int r = i / KC, c = i % KC;
        const bool ok = r < valid;
        const int off = ok ? r * DK + 8 * c : 0;
        const int dst = r * DK + 8 * swz<KC>(r, c);
        cp_async16(kt + dst, ks + off, ok);
        cp_async16(vt + dst, vs + off, ok);
      }
    }
    cp_async_commit();
  };
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(s);

  for (int s = 0; s < tiles_n; ++s) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    issue(s + kStages - 1);
    const T* kt = tiles + size_t(s % kStages) * 2 * kDecTile * DK;
    const T* vt = kt + kDecTile * DK;
    const int64_t t0 = nb + int64_t(s) * kDecTile;
    const int valid = static_cast<int>(min(int64_t(kDecTile), ne - t0));
    if constexpr (kFourier) {
      const int lim = static_cast<int>(min(int64_t(kDecTile), p.L - t0));  // basis 0 past L
      const int64_t L4 = 4 * p.L;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int k = threadIdx.x + kDecThreads * r;
        if (k >= MP) break;
        float s0, c0;
        sincospif(static_cast<float>(phase[r]) / static_cast<float>(2 * p.L), &s0, &c0);
        phase[r] += step[r];
        if (phase[r] >= L4) phase[r] -= L4;
        c0 *= wk[r];
        s0 *= wk[r];
        float x[4], prev[4];
        x[0] = c0;
        prev[0] = c0 * cd[r] + s0 * sd[r];
#pragma unroll
        for (int j = 1; j < 4; ++j) {
          const float cj = c0 * c16[r][j - 1] - s0 * s16[r][j - 1];
          const float sj = s0 * c16[r][j - 1] + c0 * s16[r][j - 1];
          x[j] = cj;
          prev[j] = cj * cd[r] + sj * sd[r];
        }
        const float two_cd = 2.f * cd[r];
        T* row = basis + k * kDecTile;
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          uint32_t packed[4][4];
#pragma unroll
          for (int e = 0; e < 8; e += 2)
#pragma unroll
            for (int j = 0; j < 4; ++j) {
              const int n = 16 * j + 8 * half + e;
              const float v0 = n < lim ? x[j] : 0.f;
              float nx = fmaf(two_cd, x[j], -prev[j]);
              prev[j] = x[j];
              x[j] = nx;
              const float v1 = n + 1 < lim ? x[j] : 0.f;
              nx = fmaf(two_cd, x[j], -prev[j]);
              prev[j] = x[j];
              x[j] = nx;
              packed[j][e / 2] = pack2<T>(v0, v1);
            }
#pragma unroll
          for (int j = 0; j < 4; ++j)
            *reinterpret_cast<uint4*>(row + 8 * swz<8>(k, 2 * j + half)) =
                make_uint4(packed[j][0], packed[j][1], packed[j][2], packed[j][3]);
        }
      }
      __syncthreads();
    }

    // Scores of this warp's 16 tokens: S^T[16 x 8].
    float sc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int ks = 0; ks < DK / 16; ++ks) {
      uint32_t a[4];
      const int row = 16 * warp + lane % 16;
      ldmatrix_x4(a, kt + row * DK + 8 * swz<KC>(row, 2 * ks + lane / 16));
      mma16816<T>(sc, a, qf[ks]);
    }
    if constexpr (kFourier) {
#pragma unroll
      for (int ks = 0; ks < MT; ks += 2) {
        uint32_t a[4], pb[4];
        ldmatrix_x4(pb, pmat + (lane % 8) * PS + 16 * ks + (lane / 8) * 8);
        const uint32_t b0[2] = {pb[0], pb[1]}, b1[2] = {pb[2], pb[3]};
#pragma unroll
        for (int u = 0; u < 2; ++u) {
          const int row = 16 * (ks + u) + (lane % 8) + (lane / 16) * 8;
          ldmatrix_x4_trans(a, basis + row * kDecTile + 8 * swz<8>(row, 2 * warp + (lane / 8) % 2));
          mma16816<T>(sc, a, u == 0 ? b0 : b1);
        }
      }
    }
    // Mask, scale, online softmax per column (this thread: columns 2tq, 2tq+1).
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int row = 16 * warp + g + 8 * (e / 2);
      const int h = e % 2;
      const bool ok = row < valid && col_ok[h] && t0 + row <= last_row[h];
      sc[e] = ok ? sc[e] * p.scale_log2 : -INFINITY;
      mx[h] = fmaxf(mx[h], sc[e]);
    }
    float alpha[2], mbase[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int o2 = 4; o2 < 32; o2 <<= 1)
        mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], o2));
      const float mnew = fmaxf(m_run[h], mx[h]);
      mbase[h] = mnew == -INFINITY ? 0.f : mnew;
      alpha[h] = exp2f(m_run[h] - mbase[h]);
      m_run[h] = mnew;
      l_run[h] *= alpha[h];
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      sc[e] = exp2f(sc[e] - mbase[e % 2]);
      l_run[e % 2] += sc[e];
    }
#pragma unroll
    for (int i = 0; i < DK / 16; ++i)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[i][e] *= alpha[e % 2];
    if constexpr (kFourier) {
#pragma unroll
      for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) racc[i][e] *= alpha[e % 2];
    }
    // W as the B operand (k = token, n = column): transpose the two 8x8 halves in registers.
    uint32_t wf[2];
    wf[0] = movmatrix_trans(pack2<T>(sc[0], sc[1]));
    wf[1] = movmatrix_trans(pack2<T>(sc[2], sc[3]));
#pragma unroll
    for (int i = 0; i < DK / 16; ++i) {
      uint32_t a[4];
      const int row = 16 * warp + (lane % 8) + (lane / 16) * 8;
      ldmatrix_x4_trans(a, vt + row * DK + 8 * swz<KC>(row, 2 * i + (lane / 8) % 2));
      mma16816<T>(o[i], a, wf);
    }
    if constexpr (kFourier) {
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        uint32_t a[4];
        const int row = 16 * i + lane % 16;
        ldmatrix_x4(a, basis + row * kDecTile + 8 * swz<8>(row, 2 * warp + lane / 16));
        mma16816<T>(racc[i], a, wf);
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();

  // Merge the 4 warps: per column m = max over warps, each warp's sums scaled by 2^(m_w - m).
  float* mw = reinterpret_cast<float*>(smem);  // [4][8] maxima, [4][8] sums, then [4][8][DK+MP]
  float* lw = mw + 4 * kDecCols;
  float* acc = lw + 4 * kDecCols;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
#pragma unroll
    for (int o2 = 4; o2 < 32; o2 <<= 1) l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], o2);
    if (g == 0) {
      mw[warp * kDecCols + 2 * tq + h] = m_run[h];
      lw[warp * kDecCols + 2 * tq + h] = l_run[h];
    }
  }
  constexpr int W = DK + MP;
#pragma unroll
  for (int i = 0; i < DK / 16; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      acc[(warp * kDecCols + 2 * tq + e % 2) * W + 16 * i + g + 8 * (e / 2)] = o[i][e];
  if constexpr (kFourier) {
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        acc[(warp * kDecCols + 2 * tq + e % 2) * W + DK + 16 * i + g + 8 * (e / 2)] = racc[i][e];
  }
  __syncthreads();
  float* out = p.partial + (head * p.splits_total + split) * p.rec;
  // out: m[8], l[8], O[8][DK], R[8][MP], OC[8][C] (OC zero: middle tokens have no exact dims)
  for (int i = threadIdx.x; i < kDecCols * W; i += kDecThreads) {
    const int j = i / W, x = i % W;
    float m = -INFINITY;
#pragma unroll
    for (int w = 0; w < 4; ++w) m = fmaxf(m, mw[w * kDecCols + j]);
    const float base = m == -INFINITY ? 0.f : m;
    float s = 0.f;
#pragma unroll
    for (int w = 0; w < 4; ++w)
      s += exp2f(mw[w * kDecCols + j] - base) * acc[(w * kDecCols + j) * W + x];
    out[x < DK ? 2 * kDecCols + j * DK + x : 2 * kDecCols + kDecCols * DK + j * MP + (x - DK)] = s;
    if (x == 0) {
      float l = 0.f;
#pragma unroll
      for (int w = 0; w < 4; ++w) l += exp2f(mw[w * kDecCols + j] - base) * lw[w * kDecCols + j];
      out[j] = m;
      out[kDecCols + j] = l;
    }
  }
  for (int i = threadIdx.x; i < kDecCols * p.C; i += kDecThreads)
    out[2 * kDecCols + kDecCols * (DK + MP) + i] = 0.f;
}

// Merges the splits of decode_kernel (and, for Fourier attention, the edge split) into O.
// Fourier: the compressed dims are R . Vc / sqrt(L) (the weights' DCT applied to the value
// coefficients) plus the edge tokens' exact contribution.
struct CombineParams {
  const float* partial;
  const void* vc;  // Fourier: value coefficients [B*Hkv, M, C]
  void* o;         // [B, Hq, q_len, D]
  int64_t kv_heads, group, q_len, head_dim;
  int64_t splits, rec, DK, MP, M, C, L;
  int16_t kdim[256];
  int16_t cdim[256];
};

template <class T>
__global__ void __launch_bounds__(128) combine_kernel(const CombineParams p) {
  extern __shared__ __align__(16) float sh[];  // [8] scale per split... see below
  const int64_t head = blockIdx.x;
  const int64_t b = head / p.kv_heads, kvh = head % p.kv_heads;
  const int ncols = static_cast<int>(p.group * p.q_len);
  const float* part = p.partial + head * p.splits * p.rec;
  float* wsplit = sh;                      // [8][splits]: 2^(m_s - m) / l
  float* rbuf = sh + kDecCols * p.splits;  // [8][MP]
  for (int j = threadIdx.x; j < ncols; j += blockDim.x) {
    float m = -INFINITY;
    for (int64_t s = 0; s < p.splits; ++s) m = fmaxf(m, part[s * p.rec + j]);
    const float base = m == -INFINITY ? 0.f : m;
    float l = 0.f;
    for (int64_t s = 0; s < p.splits; ++s)
      l += exp2f(part[s * p.rec + j] - base) * part[s * p.rec + kDecCols + j];
    const float inv_l = l > 0.f ? 1.f / l : 0.f;
    for (int64_t s = 0; s < p.splits; ++s)
      wsplit[j * p.splits + s] = exp2f(part[s * p.rec + j] - base) * inv_l;
  }
  __syncthreads();
  T* o = static_cast<T*>(p.o);
  auto orow = [&](int j) {
    const int64_t qh = kvh * p.group + j / p.q_len, qi = j % p.q_len;
    return o + ((b * p.kv_heads * p.group + qh) * p.q_len + qi) * p.head_dim;
  };
  const int64_t o_off = 2 * kDecCols, r_off = o_off + kDecCols * p.DK,
                c_off = r_off + kDecCols * p.MP;
  for (int64_t i = threadIdx.x; i < ncols * p.DK; i += blockDim.x) {
    const int j = static_cast<int>(i / p.DK);
    const int64_t x = i % p.DK;
    float acc = 0.f;
    for (int64_t s = 0; s < p.splits; ++s)
      acc += wsplit[j * p.splits + s] * part[s * p.rec + o_off + j * p.DK + x];
    orow(j)[p.kdim[x]] = from_f32<T>(acc);
  }
  if (p.C == 0) return;
  for (int64_t i = threadIdx.x; i < ncols * p.MP; i += blockDim.x) {
    const int j = static_cast<int>(i / p.MP);
    const int64_t k = i % p.MP;
    float acc = 0.f;
    for (int64_t s = 0; s < p.splits; ++s)
      acc += wsplit[j * p.splits + s] * part[s * p.rec + r_off + j * p.MP + k];
    rbuf[i] = acc;
  }
  __syncthreads();
  const T* vc = static_cast<const T*>(p.vc) + head * p.M * p.C;
  const float inv_sqrt_l = p.L > 0 ? rsqrtf(static_cast<float>(p.L)) : 0.f;
  const int64_t kmax = p.M < p.L ? p.M : p.L;
  for (int64_t i = threadIdx.x; i < ncols * p.C; i += blockDim.x) {
    const int j = static_cast<int>(i / p.C);
    const int64_t c = i % p.C;
    float acc = 0.f;
    for (int64_t k = 0; k < kmax; ++k) acc = fmaf(rbuf[j * p.MP + k], to_f32(vc[k * p.C + c]), acc);
    acc *= inv_sqrt_l;
    for (int64_t s = 0; s < p.splits; ++s)
      acc += wsplit[j * p.splits + s] * part[s * p.rec + c_off + j * p.C + c];
    orow(j)[p.cdim[c]] = from_f32<T>(acc);
  }
}

}  // namespace kvscope::kernels::cuda
