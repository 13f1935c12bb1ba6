// The DCT basis as a table in device memory (16-bit types, and float's hi and lo parts for the
// warpgroup forward kernel), built once per (L, kmax, type) into the scratch's basis slot and
// read by the transform kernels instead of generating it in every block.
// Private to fourier.cu, the one translation unit that includes it (hence the unnamed namespace).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/fourier_mma.cuh"
#include "kernels/cuda/fourier_wgmma.cuh"
#include "kernels/cuda/kept_copy.h"
#include "kernels/cuda/ops.h"

namespace kvscope::kernels::cuda {
namespace {

// The basis table (BasisTable) in 8-token groups, each computed as the inverse kernel's
// generator computes it (basis8).
// kSplit: the table holds the rounded values and lo what their rounding left.
template <class TM, bool kSplit>
__global__ void dct_basis_kernel(int64_t L, int64_t kmax, int64_t kpad, int64_t npad, TM* table,
                                 TM* lo) {
  const int64_t groups = npad / 8, L4 = 4 * L;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < kpad * groups;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = i / groups, n0 = (i % groups) * 8;
    float vals[8];
    basis8(((2 * n0 + 1) * k) % L4, k, L, kmax, static_cast<int>(min(int64_t(8), L - n0)), vals);
    store8<TM, kSplit>(table + k * npad + n0, kSplit ? lo + k * npad + n0 : nullptr, vals);
  }
}

// Above this size a call generates its basis in the transform kernels instead.
constexpr size_t kMaxBasisTableBytes = size_t(64) << 20;

// The basis table for a transform over L middle tokens with kmax coefficients, covering both
// kernels' tiles (k up to a kWgBM multiple, tokens n up to a BMI multiple of ceil(L/2)); for float
// as hi and lo parts, and only for the warpgroup forward kernel. None (null data; the kernels
// then generate the basis in every block) for float without that kernel, or above
// kMaxBasisTableBytes. Built on c.stream into the scratch's basis slot unless the slot already
// holds this (L, kmax, type): at the issue's layout 8 MB, ~10 us under ncu, against a ~300 us
// transform; on the H200 the table took the issue layout's reconstruction from 0.562 to 0.428 ms
// and its compression from 0.314 to 0.292 ms (kernels/BENCHMARKS.md).
template <class T>
BasisTable basis_table(Ctx& c, int64_t L, int64_t kmax) {
  using TM = typename Mma<T>::type;
  constexpr bool split = Mma<T>::split;
  // float's table serves only the warpgroup forward kernel.
  if (split && !c.wgmma) return {};
  // k up to a kWgBM multiple, which is also a BM multiple.
  const int64_t kpad = (kmax + kWgBM - 1) / kWgBM * kWgBM;
  const int64_t npad = ((L + 1) / 2 + BMI - 1) / BMI * BMI;
  const size_t part = size_t(kpad) * size_t(npad);
  const size_t bytes = (split ? 2 : 1) * part * sizeof(TM);
  if (bytes > kMaxBasisTableBytes) return {};
  const Scratch::BasisKey key{L, kmax, split ? 3 : std::is_same_v<T, bf16> ? 1 : 2};
  TM* table = static_cast<TM*>(c.scratch->get(bytes, Scratch::kBasisSlot));
  TM* lo = split ? table + part : nullptr;
  if (!(c.scratch->basis == key)) {
    c.scratch->basis = {};  // not valid until the kernel has been queued
    dct_basis_kernel<TM, split><<<grid_for(kpad * (npad / 8), 256, c.sms), 256, 0, c.stream>>>(
        L, kmax, kpad, npad, table, lo);
    KVS_LAUNCH();
    c.scratch->basis = key;
  }
  return {table, lo, npad};
}

}  // namespace
}  // namespace kvscope::kernels::cuda
