// Spectral compression and reconstruction of one K or V tensor (backend.h, ops 1 and 2), fused:
// the orthonormal DCT-II over the middle tokens is a tensor-core GEMM, and the copies of the kept
// dims and the sink/window tokens either ride in the transform kernels or run concurrently on a
// second stream (they touch other bytes, so the two overlap compute with memory traffic). This
// file chooses the kernels and launches them; the kernels are in
//   fourier_copy.cuh   the kept-dims and sink/window copies
//   fourier_mma.cuh    the forward and inverse GEMMs on mma.sync
//   fourier_wgmma.cuh  the forward, inverse and resident inverse on warpgroup MMA (sm_90a)
//   fourier_basis.cuh  the basis table
// and the cuFFT reference path in fourier_cufft.cu.
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
#include "kernels/cuda/fourier_basis.cuh"
#include "kernels/cuda/fourier_copy.cuh"
#include "kernels/cuda/fourier_mma.cuh"
#include "kernels/cuda/fourier_wgmma.cuh"
#include "kernels/cuda/kept_copy.h"
#include "kernels/cuda/ops.h"

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

template <class T>
constexpr int fwd_stages() {
  return Mma<T>::split ? 2 : 3;
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
