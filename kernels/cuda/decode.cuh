// Split-K decode attention on tensor cores (attention.cu); the Fourier decode
// (fourier_decode.cuh) writes partial records of the same layout.
//
// One block = one (batch, kv head) and a range of tokens (a "split"); its up to 8 query columns
// are the group's query heads times q_len (GQA: K and V are read once for the whole group). The
// tokens are the M side of m16n8k16 (16 per warp per 64-token tile) and the query columns the N
// side, so the group's 4-8 queries waste no more than half an n8 tile:
//   S^T[t, j]  = K[t, :] . Q[j, :]
//   O^T[d, j] += V[t, d]^T W[t, j]                         (online softmax weights W)
// Each warp keeps its own running max/sum; the block merges its warps and writes one partial
// (m, l, O) per query column; combine_kernel merges the splits.
#pragma once

#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace kvscope::kernels::cuda {

constexpr int kDecThreads = 128;  // 4 warps x 16 tokens = one 64-token tile
constexpr int kDecTile = 64;
constexpr int kDecCols = 8;

struct DecodeParams {
  const void* q;  // [B, Hq, q_len, D]
  const void* k;  // [B, Hkv, tokens, DK]
  const void* v;
  int64_t kv_heads, group, q_len, head_dim, tokens;
  int64_t row0;  // token index of row 0 of k/v for this range
  int64_t rows;  // rows in the range
  int64_t pos0;  // absolute position of row 0 (for causal masking)
  int64_t rows_per_split;
  bool causal;
  float scale_log2;      // log2(e) / sqrt(head_dim)
  float* partial;        // [B*Hkv][splits][rec]
  int64_t rec;           // floats per partial record
  int64_t splits_total;  // splits per head in the partial buffer
  int16_t kdim[256];     // query dim of dim i (the identity here)
};

// Partial record layout per (head, split): m[8], l[8], O[8][DK], R[8][MP], OC[8][C] (R and OC:
// Fourier attention only, MP = C = 0 otherwise).
// Where a record's parts start (floats): m at 0, l at kDecCols, then these.
__host__ __device__ constexpr int64_t dec_rec_o() { return 2 * kDecCols; }
__host__ __device__ constexpr int64_t dec_rec_r(int64_t dk) { return dec_rec_o() + kDecCols * dk; }
__host__ __device__ constexpr int64_t dec_rec_oc(int64_t dk, int64_t mp) {
  return dec_rec_r(dk) + kDecCols * mp;
}
__host__ __device__ constexpr int64_t dec_rec_floats(int64_t dk, int64_t mp, int64_t c) {
  return dec_rec_oc(dk, mp) + kDecCols * c;
}

// Shared-memory rows are not padded but XOR-swizzled in 16-byte chunks: the 8 rows an ldmatrix
// reads land in 8 different bank groups, and the tiles fit three blocks per SM.
template <int kChunksPerRow>
__device__ __forceinline__ int swz(int row, int chunk) {
  if constexpr (kChunksPerRow >= 8) return chunk ^ (row & 7);
  if constexpr (kChunksPerRow == 4) return chunk ^ ((row >> 1) & 3);
  return chunk ^ ((row >> 2) & 1);
}

template <class T, int DK, int kStages>
struct DecodeSmem {
  static constexpr int KC = DK / 8;  // 16-byte chunks per K/V row
  static constexpr size_t tiles = size_t(kStages) * 2 * kDecTile * DK * sizeof(T);
  static constexpr size_t merge = size_t(4) * kDecCols * (DK + 2) * sizeof(float);
  static constexpr size_t bytes = tiles > merge ? tiles : merge;
};

// The running-max step of the online softmax fragments (online_softmax_fragment here, the
// mirrored one in fourier_decode.cuh): this thread's per-column maxima mx, reduced over the 8
// lanes that hold a column's rows, fold into m_run; l_run is rescaled. mbase is what the
// weights are taken against (0 while a column has no visible token yet) and alpha the factor
// the caller's accumulators shrink by (exactly 1 then).
__device__ __forceinline__ void fold_running_max(float (&mx)[2], float (&m_run)[2],
                                                 float (&l_run)[2], float (&mbase)[2],
                                                 float (&alpha)[2]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
#pragma unroll
    for (int o2 = 4; o2 < 32; o2 <<= 1)
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], o2));
    const float mnew = fmaxf(m_run[h], mx[h]);
    mbase[h] = mnew == -INFINITY ? 0.f : mnew;
    alpha[h] = mnew == -INFINITY ? 1.f : exp2f(m_run[h] - mbase[h]);
    m_run[h] = mnew;
    l_run[h] *= alpha[h];
  }
}

// One step of the online softmax over a 16-token x 8-column score fragment of
// mma.m16n8k16: this thread holds tokens row0 + g and row0 + g + 8 of columns 2tq and 2tq + 1
// (sc[e]: token e / 2, column e % 2). Masks what a column may not see (past `valid` tokens of
// the tile, an absent column, a causal limit), scales to log2 units, folds the fragment into
// the running maxima and sums, and leaves the softmax weights in sc. alpha is the factor the
// caller's accumulators must be scaled by; a column without a visible token yet has nothing to
// rescale and gets exactly 1, so callers may skip the rescale when every alpha is 1.
__device__ __forceinline__ void online_softmax_fragment(float (&sc)[4], int row0, int g, int valid,
                                                        int64_t t0, const bool (&col_ok)[2],
                                                        const int64_t (&last_row)[2],
                                                        float scale_log2, float (&m_run)[2],
                                                        float (&l_run)[2], float (&alpha)[2]) {
  float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int row = row0 + g + 8 * (e / 2);
    const int h = e % 2;
    const bool ok = row < valid && col_ok[h] && t0 + row <= last_row[h];
    sc[e] = ok ? sc[e] * scale_log2 : -INFINITY;
    mx[h] = fmaxf(mx[h], sc[e]);
  }
  float mbase[2];
  fold_running_max(mx, m_run, l_run, mbase, alpha);
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    sc[e] = exp2f(sc[e] - mbase[e % 2]);
    l_run[e % 2] += sc[e];
  }
}

template <class T, int DK, int kStages>
__global__ void __launch_bounds__(kDecThreads, 2) decode_kernel(const DecodeParams p) {
  using SM = DecodeSmem<T, DK, kStages>;
  constexpr int KC = SM::KC;
  extern __shared__ __align__(16) unsigned char smem[];
  T* tiles = reinterpret_cast<T*>(smem);

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

  float o[DK / 16][4] = {};
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

    // Scores of this warp's 16 tokens: S^T[16 x 8].
    float sc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int ks = 0; ks < DK / 16; ++ks) {
      uint32_t a[4];
      const int row = 16 * warp + lane % 16;
      ldmatrix_x4(a, kt + row * DK + 8 * swz<KC>(row, 2 * ks + lane / 16));
      mma16816<T>(sc, a, qf[ks]);
    }
    float alpha[2];
    online_softmax_fragment(sc, 16 * warp, g, valid, t0, col_ok, last_row, p.scale_log2, m_run,
                            l_run, alpha);
#pragma unroll
    for (int i = 0; i < DK / 16; ++i)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[i][e] *= alpha[e % 2];
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
  }
  cp_async_wait<0>();
  __syncthreads();

  // Merge the 4 warps: per column m = max over warps, each warp's sums scaled by 2^(m_w - m).
  float* mw = reinterpret_cast<float*>(smem);  // [4][8] maxima, [4][8] sums, then [4][8][DK]
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
  constexpr int W = DK;
#pragma unroll
  for (int i = 0; i < DK / 16; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      acc[(warp * kDecCols + 2 * tq + e % 2) * W + 16 * i + g + 8 * (e / 2)] = o[i][e];
  __syncthreads();
  float* out = p.partial + (head * p.splits_total + split) * p.rec;
  // out: m[8], l[8], O[8][DK]
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
    out[dec_rec_o() + j * DK + x] = s;
    if (x == 0) {
      float l = 0.f;
#pragma unroll
      for (int w = 0; w < 4; ++w) l += exp2f(mw[w * kDecCols + j] - base) * lw[w * kDecCols + j];
      out[j] = m;
      out[kDecCols + j] = l;
    }
  }
}

// Merges the splits of decode_kernel into O.
struct CombineParams {
  const float* partial;
  void* o;  // [B, Hq, q_len, D]
  int64_t kv_heads, group, q_len, head_dim;
  int64_t splits, rec, DK;
  int16_t kdim[256];
};

template <class T>
__global__ void __launch_bounds__(128) combine_kernel(const CombineParams p) {
  extern __shared__ __align__(16) float sh[];  // [8][splits]: 2^(m_s - m) / l
  const int64_t head = blockIdx.x;
  const int64_t b = head / p.kv_heads, kvh = head % p.kv_heads;
  const int ncols = static_cast<int>(p.group * p.q_len);
  const float* part = p.partial + head * p.splits * p.rec;
  float* wsplit = sh;
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
  const int64_t o_off = dec_rec_o();
  for (int64_t i = threadIdx.x; i < ncols * p.DK; i += blockDim.x) {
    const int j = static_cast<int>(i / p.DK);
    const int64_t x = i % p.DK;
    float acc = 0.f;
    for (int64_t s = 0; s < p.splits; ++s)
      acc += wsplit[j * p.splits + s] * part[s * p.rec + o_off + j * p.DK + x];
    const int64_t qh = kvh * p.group + j / p.q_len, qi = j % p.q_len;
    o[((b * p.kv_heads * p.group + qh) * p.q_len + qi) * p.head_dim + p.kdim[x]] = from_f32<T>(acc);
  }
}

}  // namespace kvscope::kernels::cuda
