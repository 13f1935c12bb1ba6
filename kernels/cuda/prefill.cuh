// Tiled (flash-style) prefill attention on tensor cores, shared by exact attention and attention
// over a Fourier-compressed cache. One block = 128 query rows of one query head (8 warps x 16
// rows); it walks 64-key tiles of the matching KV head (GQA), keeps Q in registers, the running
// max/sum and O in registers, and never writes S or P to memory (FlashAttention-2's scheme,
// with mma.sync m16n8k16 and ldmatrix).
//
// Fourier variant: the key tile is assembled in shared memory, never in global memory: the kept
// dims are copied, the compressed dims of middle tokens are rebuilt by a tensor-core product of
// a basis tile (generated in shared memory) with the head's coefficients (resident in shared
// memory for the whole block), and sink/window tokens take theirs from the edge buffer. Inside
// the block the dims are permuted to [kept | compressed]; Q is loaded and O stored through the
// same permutation, which leaves every dot product unchanged.
#pragma once

#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace kvscope::kernels::cuda {

constexpr int kPreThreads = 256;
constexpr int kPreRows = 128;
constexpr int kPreKeys = 64;

struct PrefillParams {
  const void* q;  // [B, Hq, q_len, D]
  const void* k;  // exact: [B, Hkv, T, D]; Fourier: kept [B, Hkv, T, DK]
  const void* v;
  void* o;  // [B, Hq, q_len, D]
  // Fourier only
  const void* kc;  // [B, Hkv, M, C]
  const void* vc;
  const void* ke;  // edge [B, Hkv, E, C]
  const void* ve;
  int64_t kv_heads, group, q_len, tokens;
  int64_t M, L, sink, window;
  bool causal;
  float scale_log2;
  int16_t perm[256];  // dim of Q/O held at position i of the permuted order
};

// The end of an online softmax whose row sums are spread over a quad of lanes (the MMA C layout:
// lanes 4g .. 4g+3 hold row g's columns): each lane's two rows' sums, totalled, inverted (0 for a
// row with nothing to sum).
__device__ __forceinline__ void quad_row_sum_inverse(float (&l)[2]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
    l[h] = l[h] > 0.f ? 1.f / l[h] : 0.f;
  }
}

template <class T, int D, int DK, int MT>
struct PrefillSmem {
  static constexpr int C = D - DK;
  static constexpr int MP = MT * 16;
  static constexpr bool fourier = MT > 0;
  static constexpr int RS = D + 8;
  static constexpr int CS = C + 8;
  static constexpr int BS = kPreKeys + 8;
  static constexpr int stages = fourier ? 1 : 2;
  static constexpr size_t q = size_t(kPreRows) * RS * sizeof(T);
  static constexpr size_t kv = size_t(stages) * 2 * kPreKeys * RS * sizeof(T);
  static constexpr size_t coef = fourier ? size_t(2) * MP * CS * sizeof(T) : 0;
  static constexpr size_t basis = fourier ? size_t(MP) * BS * sizeof(T) : 0;
  static constexpr size_t bytes = q + kv + coef + basis;
};

template <class T, int D, int DK, int MT>
__global__ void __launch_bounds__(kPreThreads, 1) prefill_kernel(const PrefillParams p) {
  using SM = PrefillSmem<T, D, DK, MT>;
  constexpr int RS = SM::RS, CS = SM::CS, BS = SM::BS, C = SM::C, MP = SM::MP;
  constexpr bool kFourier = SM::fourier;
  extern __shared__ __align__(16) unsigned char smem[];
  T* qs = reinterpret_cast<T*>(smem);
  T* kvs = reinterpret_cast<T*>(smem + SM::q);
  T* kcs = reinterpret_cast<T*>(smem + SM::q + SM::kv);
  T* vcs = kcs + MP * CS;
  T* bas = reinterpret_cast<T*>(smem + SM::q + SM::kv + SM::coef);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, tq = lane % 4;
  const int64_t qtiles = (p.q_len + kPreRows - 1) / kPreRows;
  const int64_t qt = qtiles - 1 - blockIdx.x;  // longest (causal) tiles first
  const int64_t bh = blockIdx.y;               // b * Hq + qh
  const int64_t b = bh / (p.kv_heads * p.group), qh = bh % (p.kv_heads * p.group);
  const int64_t head = b * p.kv_heads + qh / p.group;
  const int64_t T_ = p.tokens;
  constexpr int DKk = kFourier ? DK : D;  // row length of the k/v buffers
  const T* kg = static_cast<const T*>(p.k) + head * T_ * DKk;
  const T* vg = static_cast<const T*>(p.v) + head * T_ * DKk;
  const T* qg = static_cast<const T*>(p.q) + (bh * p.q_len + qt * kPreRows) * D;
  const int64_t rows_here = min(int64_t(kPreRows), p.q_len - qt * kPreRows);
  const int64_t qpos0 = T_ - p.q_len + qt * kPreRows;  // position of row 0

  // Q (permuted for Fourier) into shared memory, then A fragments into registers.
  if constexpr (kFourier) {
    for (int i = threadIdx.x; i < kPreRows * D; i += kPreThreads) {
      const int r = i / D, d = i % D;
      qs[r * RS + d] = r < rows_here ? qg[r * D + p.perm[d]] : from_f32<T>(0.f);
    }
  } else {
    for (int i = threadIdx.x; i < kPreRows * D / 8; i += kPreThreads) {
      const int r = i / (D / 8), cg = (i % (D / 8)) * 8;
      cp_async16(qs + r * RS + cg, qg + (r < rows_here ? r * D + cg : 0), r < rows_here);
    }
    cp_async_commit();
  }
  if constexpr (kFourier) {
    const T* kc = static_cast<const T*>(p.kc) + head * p.M * C;
    const T* vc = static_cast<const T*>(p.vc) + head * p.M * C;
    for (int i = threadIdx.x; i < MP * C / 8; i += kPreThreads) {
      const int k = i / (C / 8), cg = (i % (C / 8)) * 8;
      const bool ok = k < p.M && k < p.L;
      cp_async16(kcs + k * CS + cg, kc + (ok ? k * C + cg : 0), ok);
      cp_async16(vcs + k * CS + cg, vc + (ok ? k * C + cg : 0), ok);
    }
    cp_async_commit();
  }

  const int64_t kend = p.causal ? min(T_, qpos0 + int64_t(kPreRows)) : T_;
  const int ntiles = static_cast<int>((kend + kPreKeys - 1) / kPreKeys);

  auto issue = [&](int j) {
    if (j < ntiles) {
      T* ks = kvs + size_t(j % SM::stages) * 2 * kPreKeys * RS;
      T* vs = ks + kPreKeys * RS;
      const int64_t t0 = int64_t(j) * kPreKeys;
      constexpr int per_row = DKk / 8;
      for (int i = threadIdx.x; i < kPreKeys * per_row; i += kPreThreads) {
        const int r = i / per_row, cg = (i % per_row) * 8;
        const bool ok = t0 + r < T_;
        const int64_t off = ok ? (t0 + r) * DKk + cg : 0;
        cp_async16(ks + r * RS + cg, kg + off, ok);
        cp_async16(vs + r * RS + cg, vg + off, ok);
      }
      if constexpr (kFourier) {
        // Compressed dims of sink and window tokens from the edge buffers.
        const int64_t E = p.sink + p.window;
        const T* ke = static_cast<const T*>(p.ke) + head * E * C;
        const T* ve = static_cast<const T*>(p.ve) + head * E * C;
        for (int i = threadIdx.x; i < kPreKeys * C / 8; i += kPreThreads) {
          const int r = i / (C / 8), cg = (i % (C / 8)) * 8;
          const int64_t tok = t0 + r;
          int64_t er = -1;
          if (tok < T_) {
            if (p.L == 0)
              er = tok;
            else if (tok < p.sink)
              er = tok;
            else if (tok >= p.sink + p.L)
              er = p.sink + (tok - p.sink - p.L);
          }
          if (er >= 0) {
            cp_async16(ks + r * RS + DK + cg, ke + er * C + cg, true);
            cp_async16(vs + r * RS + DK + cg, ve + er * C + cg, true);
          } else if (tok >= T_) {
            cp_async16(ks + r * RS + DK + cg, ke, false);
            cp_async16(vs + r * RS + DK + cg, ve, false);
          }
        }
      }
    }
    cp_async_commit();
  };

  issue(0);
  cp_async_wait<0>();
  __syncthreads();
  uint32_t qa[D / 16][4];
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks)
    ldmatrix_x4(qa[ks], qs + (16 * warp + lane % 16) * RS + 16 * ks + (lane / 16) * 8);

  float o[D / 8][4] = {};
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};

  for (int j = 0; j < ntiles; ++j) {
    if constexpr (!kFourier) {
      issue(j + 1);  // the other buffer, freed by the barrier at the end of the last step
    }
    T* ks = kvs + size_t(j % SM::stages) * 2 * kPreKeys * RS;
    T* vs = ks + kPreKeys * RS;
    const int64_t t0 = int64_t(j) * kPreKeys;
    if constexpr (kFourier) {
      // Basis tile for the middle tokens of this key tile (n = t - sink), rows k < MP.
      if (p.L > 0) {
        const int64_t L4 = 4 * p.L, kmax = p.M < p.L ? p.M : p.L;
        for (int k = threadIdx.x; k < MP; k += kPreThreads) {
          const int64_t n0 = t0 - p.sink;
          int64_t ph = ((2 * n0 + 1) * int64_t(k)) % L4;
          if (ph < 0) ph += L4;
          float sv, cv, sd, cd;
          sincospif(static_cast<float>(ph) / static_cast<float>(2 * p.L), &sv, &cv);
          sincospif(static_cast<float>(k % (2 * p.L)) / static_cast<float>(p.L), &sd, &cd);
          const float w = k >= kmax ? 0.f : (k == 0 ? 1.f : 1.41421356237309515f);
          for (int e8 = 0; e8 < kPreKeys; e8 += 8) {
            float v8[8];
#pragma unroll
            for (int e = 0; e < 8; ++e) {
              const int64_t n = n0 + e8 + e;
              v8[e] = (n >= 0 && n < p.L) ? w * cv : 0.f;
              const float c2 = cv * cd - sv * sd;
              sv = sv * cd + cv * sd;
              cv = c2;
            }
            *reinterpret_cast<uint4*>(bas + k * BS + e8) = pack8<T>(v8);
          }
        }
      }
      cp_async_wait<0>();
      __syncthreads();
      // Rebuild the compressed dims of the middle tokens: warps 0-3 K, 4-7 V, 16 rows each.
      if (p.L > 0) {
        const T* coef = warp < 4 ? kcs : vcs;
        T* dst = warp < 4 ? ks : vs;
        const int r0 = 16 * (warp % 4);
        const float inv_sqrt_l = rsqrtf(static_cast<float>(p.L));
#pragma unroll
        for (int nt = 0; nt < C / 8; nt += 2) {
          float acc[2][4] = {};
#pragma unroll
          for (int kk = 0; kk < MT; ++kk) {
            uint32_t a[4], bfr[4];
            ldmatrix_x4_trans(
                a, bas + (16 * kk + (lane % 8) + (lane / 16) * 8) * BS + r0 + ((lane / 8) % 2) * 8);
            ldmatrix_x4_trans(bfr, coef + (16 * kk + (lane % 8) + ((lane / 8) % 2) * 8) * CS +
                                       8 * nt + (lane / 16) * 8);
            const uint32_t b0[2] = {bfr[0], bfr[1]}, b1[2] = {bfr[2], bfr[3]};
            mma16816<T>(acc[0], a, b0);
            mma16816<T>(acc[1], a, b1);
          }
#pragma unroll
          for (int h = 0; h < 2; ++h)
#pragma unroll
            for (int hh = 0; hh < 2; ++hh) {
              const int r = r0 + g + 8 * hh;
              const int64_t n = t0 + r - p.sink;
              if (n >= 0 && n < p.L)
                *reinterpret_cast<uint32_t*>(dst + r * RS + DK + 8 * (nt + h) + 2 * tq) =
                    pack2<T>(acc[h][2 * hh] * inv_sqrt_l, acc[h][2 * hh + 1] * inv_sqrt_l);
            }
        }
      }
      __syncthreads();
    } else {
      cp_async_wait<1>();
      __syncthreads();
    }

    // S = Q K^T for this warp's 16 rows and the 64 keys.
    float s[kPreKeys / 8][4] = {};
#pragma unroll
    for (int ks2 = 0; ks2 < D / 16; ++ks2)
#pragma unroll
      for (int pr = 0; pr < kPreKeys / 16; ++pr) {
        uint32_t r[4];
        ldmatrix_x4(r, ks + (16 * pr + (lane % 8) + (lane / 16) * 8) * RS + 16 * ks2 +
                           ((lane / 8) % 2) * 8);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma16816<T>(s[2 * pr], qa[ks2], b0);
        mma16816<T>(s[2 * pr + 1], qa[ks2], b1);
      }
    // Mask where the tile reaches past the diagonal or the end, then the online softmax.
    const bool need_mask =
        t0 + kPreKeys > T_ || (p.causal && t0 + kPreKeys - 1 > qpos0 + 16 * warp);
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < kPreKeys / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[nt][e] * p.scale_log2;
        if (need_mask) {
          const int64_t key = t0 + 8 * nt + 2 * tq + (e % 2);
          const int64_t qp = qpos0 + 16 * warp + g + 8 * (e / 2);
          if (key >= T_ || (p.causal && key > qp)) x = -INFINITY;
        }
        s[nt][e] = x;
        mx[e / 2] = fmaxf(mx[e / 2], x);
      }
    float alpha[2], base[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
      const float mnew = fmaxf(m_run[h], mx[h]);
      base[h] = mnew == -INFINITY ? 0.f : mnew;
      alpha[h] = exp2f(m_run[h] - base[h]);
      m_run[h] = mnew;
      l_run[h] *= alpha[h];
    }
#pragma unroll
    for (int nt = 0; nt < kPreKeys / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[nt][e] = exp2f(s[nt][e] - base[e / 2]);
        l_run[e / 2] += s[nt][e];
      }
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[dt][e] *= alpha[e / 2];
        // O += P V.
#pragma unroll
    for (int kk = 0; kk < kPreKeys / 16; ++kk) {
      uint32_t a[4];
      a[0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
      a[1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
      a[2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int pr = 0; pr < D / 16; ++pr) {
        uint32_t r[4];
        ldmatrix_x4_trans(
            r, vs + (16 * kk + (lane % 8) + ((lane / 8) % 2) * 8) * RS + 16 * pr + (lane / 16) * 8);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma16816<T>(o[2 * pr], a, b0);
        mma16816<T>(o[2 * pr + 1], a, b1);
      }
    }
    __syncthreads();  // every warp is done with this tile's buffers
    if constexpr (kFourier) issue(j + 1);
  }
  cp_async_wait<0>();

  // O / l, staged in shared memory (Q's space), then written with 16-byte stores.
  quad_row_sum_inverse(l_run);
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt)
#pragma unroll
    for (int h = 0; h < 2; ++h)
      *reinterpret_cast<uint32_t*>(qs + (16 * warp + g + 8 * h) * RS + 8 * dt + 2 * tq) =
          pack2<T>(o[dt][2 * h] * l_run[h], o[dt][2 * h + 1] * l_run[h]);
  __syncthreads();
  T* og = static_cast<T*>(p.o) + (bh * p.q_len + qt * kPreRows) * D;
  if constexpr (kFourier) {
    for (int i = threadIdx.x; i < kPreRows * D; i += kPreThreads) {
      const int r = i / D, d = i % D;
      if (r < rows_here) og[r * D + p.perm[d]] = qs[r * RS + d];
    }
  } else {
    for (int i = threadIdx.x; i < kPreRows * D / 8; i += kPreThreads) {
      const int r = i / (D / 8), cg = (i % (D / 8)) * 8;
      if (r < rows_here)
        *reinterpret_cast<uint4*>(og + r * D + cg) =
            *reinterpret_cast<const uint4*>(qs + r * RS + cg);
    }
  }
}

}  // namespace kvscope::kernels::cuda
