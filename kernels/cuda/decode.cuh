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
  const void* kc;  // Fourier: coefficients of K [B, Hkv, M, C] (else null)
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

template <class T, int DK, int MT, int kStages>
struct DecodeSmem {
  static constexpr int KS = DK + 8;        // row stride of K/V tiles (16-bit elements)
  static constexpr int BS = kDecTile + 8;  // row stride of the basis tile
  static constexpr int MP = MT * 16;
  static constexpr size_t tiles = size_t(kStages) * 2 * kDecTile * KS * sizeof(T);
  static constexpr size_t basis = size_t(MP) * BS * sizeof(T);
  static constexpr size_t merge = size_t(4) * kDecCols * (DK + MP + 2) * sizeof(float);
  static constexpr size_t pscratch = size_t(kDecCols) * (MP + 256) * sizeof(float);
  static constexpr size_t main0 = tiles + basis;
  static constexpr size_t main = main0 > pscratch ? main0 : pscratch;
  static constexpr size_t bytes = main > merge ? main : merge;
};

template <class T, int DK, int MT, int kStages>
__global__ void __launch_bounds__(kDecThreads) decode_kernel(const DecodeParams p) {
  using SM = DecodeSmem<T, DK, MT, kStages>;
  constexpr int KS = SM::KS, BS = SM::BS, MP = SM::MP;
  constexpr bool kFourier = MT > 0;
  extern __shared__ __align__(16) unsigned char smem[];
  T* tiles = reinterpret_cast<T*>(smem);
  T* basis = reinterpret_cast<T*>(smem + SM::tiles);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, tq = lane % 4;
  const int64_t head = blockIdx.y;  // b * kv_heads + kvh
  const int64_t b = head / p.kv_heads, kvh = head % p.kv_heads;
  const int split = blockIdx.x;
  const int64_t nb = int64_t(split) * p.rows_per_split;
  const int64_t ne = min(nb + p.rows_per_split, p.rows);
  const int ncols = static_cast<int>(p.group * p.q_len);
  const T* q = static_cast<const T*>(p.q);
  const T* kbase = static_cast<const T*>(p.k) + (head * p.tokens + p.row0) * DK;
  const T* vbase = static_cast<const T*>(p.v) + (head * p.tokens + p.row0) * DK;

  // Query column j = (head in group, query index); its row of Q and its position.
  auto qrow = [&](int j) {
    const int64_t qh = kvh * p.group + j / p.q_len, qi = j % p.q_len;
    return q + ((b * p.kv_heads * p.group + qh) * p.q_len + qi) * p.head_dim;
  };
  auto qpos = [&](int j) { return p.tokens - p.q_len + j % p.q_len; };

  // B fragments of Q over the kept dims: b0 = Q[g][16ks + 2tq, +1], b1 = +8.
  uint32_t qf[DK / 16][2];
  {
    const bool ok = g < ncols;
    const T* qr = ok ? qrow(g) : q;
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

  // Fourier: P[j, k] = sum_c q_c Kc[k, c] / sqrt(L), as B fragments (k = 16ks + 2tq.., col g).
  uint32_t pf[MT > 0 ? MT : 1][2];
  constexpr int kRowsPerThread = MT > 0 ? (MP + kDecThreads - 1) / kDecThreads : 1;
  float rcd[kRowsPerThread], rsd[kRowsPerThread];  // per basis row: rotation by pi k / L
  int64_t phase[kRowsPerThread];                   // (2n+1) k mod 4L at the tile's first token
  if constexpr (kFourier) {
    float* pbuf = reinterpret_cast<float*>(smem);  // [8][MP] f32, before any tile is loaded
    float* qc = pbuf + kDecCols * MP;              // [8][C]
    for (int i = threadIdx.x; i < kDecCols * p.C; i += kDecThreads) {
      const int j = static_cast<int>(i / p.C), c = static_cast<int>(i % p.C);
      qc[i] = j < ncols ? to_f32(qrow(j)[p.cdim[c]]) : 0.f;
    }
    __syncthreads();
    const T* kc = static_cast<const T*>(p.kc) + head * p.M * p.C;
    const float inv_sqrt_l = rsqrtf(static_cast<float>(p.L));
    for (int i = threadIdx.x; i < kDecCols * MP; i += kDecThreads) {
      const int j = i / MP, k = i % MP;
      float s = 0.f;
      if (k < p.M && j < ncols)
        for (int c = 0; c < p.C; ++c) s = fmaf(qc[j * p.C + c], to_f32(kc[k * p.C + c]), s);
      pbuf[j * MP + k] = s * inv_sqrt_l;
    }
    __syncthreads();
#pragma unroll
    for (int ks = 0; ks < MT; ++ks)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int k = 16 * ks + 2 * tq + 8 * h;
        pf[ks][h] = pack2<T>(pbuf[g * MP + k], pbuf[g * MP + k + 1]);
      }
    __syncthreads();
    // Basis rows owned by this thread: k = threadIdx.x + 128 r; phase of token nb advances by
    // 2 * 64 * k per tile.
#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      const int64_t k = threadIdx.x + int64_t(kDecThreads) * r;
      sincospif(static_cast<float>(k % (2 * p.L)) / static_cast<float>(p.L), &rsd[r], &rcd[r]);
      phase[r] = ((2 * nb + 1) * k) % (4 * p.L);
    }
  }

  float o[DK / 16][4] = {};
  float racc[MT > 0 ? MT : 1][4] = {};
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};

  const int tiles_n = static_cast<int>((ne - nb + kDecTile - 1) / kDecTile);
  auto issue = [&](int s) {
    if (s < tiles_n) {
      T* kt = tiles + size_t(s % kStages) * 2 * kDecTile * KS;
      T* vt = kt + kDecTile * KS;
      const int64_t t0 = nb + int64_t(s) * kDecTile;
      constexpr int per_row = DK / 8;
      for (int i = threadIdx.x; i < kDecTile * per_row; i += kDecThreads) {
        const int r = i / per_row, cg = (i % per_row) * 8;
        const bool ok = t0 + r < ne;
        const int64_t off = ok ? (t0 + r) * DK + cg : 0;
        cp_async16(kt + r * KS + cg, kbase + off, ok);
        cp_async16(vt + r * KS + cg, vbase + off, ok);
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
    const T* kt = tiles + size_t(s % kStages) * 2 * kDecTile * KS;
    const T* vt = kt + kDecTile * KS;
    const int64_t t0 = nb + int64_t(s) * kDecTile;
    if constexpr (kFourier) {
#pragma unroll
      for (int r = 0; r < kRowsPerThread; ++r) {
        const int k = threadIdx.x + kDecThreads * r;
        if (k >= MP) break;
        // Exact start for this tile, then 64 rotations.
        const int64_t kk = k;
        const int64_t kmax = p.M < p.L ? p.M : p.L;
        float sv, cv;
        sincospif(static_cast<float>(phase[r]) / static_cast<float>(2 * p.L), &sv, &cv);
        phase[r] = (phase[r] + 2 * kDecTile * kk) % (4 * p.L);
        const float w = kk >= kmax ? 0.f : (kk == 0 ? 1.f : 1.41421356237309515f);
        T* row = basis + k * BS;
#pragma unroll
        for (int e8 = 0; e8 < kDecTile; e8 += 8) {
          float v8[8];
#pragma unroll
          for (int e = 0; e < 8; ++e) {
            v8[e] = (t0 + e8 + e < p.L) ? w * cv : 0.f;
            const float c2 = cv * rcd[r] - sv * rsd[r];
            sv = sv * rcd[r] + cv * rsd[r];
            cv = c2;
          }
          uint4 u;
          u.x = pack2<T>(v8[0], v8[1]);
          u.y = pack2<T>(v8[2], v8[3]);
          u.z = pack2<T>(v8[4], v8[5]);
          u.w = pack2<T>(v8[6], v8[7]);
          *reinterpret_cast<uint4*>(row + e8) = u;
        }
      }
      __syncthreads();
    }

    // Scores of this warp's 16 tokens: S^T[16 x 8].
    float sc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int ks = 0; ks < DK / 16; ++ks) {
      uint32_t a[4];
      ldmatrix_x4(a, kt + (16 * warp + lane % 16) * KS + 16 * ks + (lane / 16) * 8);
      mma16816<T>(sc, a, qf[ks]);
    }
    if constexpr (kFourier) {
#pragma unroll
      for (int ks = 0; ks < MT; ++ks) {
        uint32_t a[4];
        ldmatrix_x4_trans(a, basis + (16 * ks + (lane % 8) + (lane / 16) * 8) * BS + 16 * warp +
                                 ((lane / 8) % 2) * 8);
        mma16816<T>(sc, a, pf[ks]);
      }
    }
    // Mask, scale, online softmax per column (this thread: columns 2tq, 2tq+1).
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int row = 16 * warp + g + 8 * (e / 2);
      const int j = 2 * tq + (e % 2);
      const int64_t t = t0 + row;
      bool ok = t < ne && j < ncols;
      if (ok && p.causal) ok = p.pos0 + t <= qpos(j);
      sc[e] = ok ? sc[e] * p.scale_log2 : -INFINITY;
      mx[e % 2] = fmaxf(mx[e % 2], sc[e]);
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
      ldmatrix_x4_trans(
          a, vt + (16 * warp + (lane % 8) + (lane / 16) * 8) * KS + 16 * i + ((lane / 8) % 2) * 8);
      mma16816<T>(o[i], a, wf);
    }
    if constexpr (kFourier) {
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        uint32_t a[4];
        ldmatrix_x4(a, basis + (16 * i + lane % 16) * BS + 16 * warp + (lane / 16) * 8);
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
