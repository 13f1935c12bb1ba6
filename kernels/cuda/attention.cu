// Exact attention (backend.h op 4), GQA, causal or not:
//  - decode (q_len * group <= 8): split-K over the tokens on tensor cores (decode.cuh), then a
//    combine kernel; K and V are read once per KV head.
//  - otherwise: the flash-style tiled kernel: with warpgroup MMA at head_dim 128 where the
//    device and the build have it (prefill_wgmma.cuh), else with mma.sync (prefill.cuh).
//  - f32, other head dims, or CudaOptions::simple_attention: one warp per query row, CUDA cores.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda/attention_dispatch.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/decode.cuh"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/prefill.cuh"
#include "kernels/cuda/prefill_wgmma.cuh"

namespace kvscope::kernels::cuda {
namespace {

struct SimpleParams {
  const void *q, *k, *v;
  void* o;
  int64_t batch, kv_heads, group, q_len, tokens, head_dim;
  bool causal;
  float scale;
};

// One warp per query row; lanes split the head dims (up to 8 each).
template <class T>
__global__ void __launch_bounds__(256) simple_attention_kernel(const SimpleParams p) {
  const int64_t rows = p.batch * p.kv_heads * p.group * p.q_len;
  const int64_t row = int64_t(blockIdx.x) * 8 + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x % 32;
  const int64_t qi = row % p.q_len, bqh = row / p.q_len;
  const int64_t b = bqh / (p.kv_heads * p.group), qh = bqh % (p.kv_heads * p.group);
  const int64_t head = b * p.kv_heads + qh / p.group;
  const T* q = static_cast<const T*>(p.q) + row * p.head_dim;
  const T* k = static_cast<const T*>(p.k) + head * p.tokens * p.head_dim;
  const T* v = static_cast<const T*>(p.v) + head * p.tokens * p.head_dim;
  float qv[8], acc[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int64_t d = lane + 32 * i;
    qv[i] = d < p.head_dim ? to_f32(q[d]) : 0.f;
    acc[i] = 0.f;
  }
  const int64_t qpos = p.tokens - p.q_len + qi;
  const int64_t end = p.causal ? min(p.tokens, qpos + 1) : p.tokens;
  float m = -INFINITY, l = 0.f;
  for (int64_t t = 0; t < end; ++t) {
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int64_t d = lane + 32 * i;
      if (d < p.head_dim) s = fmaf(qv[i], to_f32(k[t * p.head_dim + d]), s);
    }
    s = warp_sum(s) * p.scale;
    const float mn = fmaxf(m, s);
    const float alpha = expf(m - mn), w = expf(s - mn);
    l = l * alpha + w;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int64_t d = lane + 32 * i;
      acc[i] = acc[i] * alpha + (d < p.head_dim ? w * to_f32(v[t * p.head_dim + d]) : 0.f);
    }
    m = mn;
  }
  T* o = static_cast<T*>(p.o) + row * p.head_dim;
  const float inv_l = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < p.head_dim) o[d] = from_f32<T>(acc[i] * inv_l);
  }
}

template <class T>
void simple_t(Ctx& c, const AttentionArgs& a, const void* q, const void* k, const void* v,
              void* o) {
  SimpleParams p{q,
                 k,
                 v,
                 o,
                 a.batch,
                 a.kv_heads,
                 a.q_heads / a.kv_heads,
                 a.q_len,
                 a.tokens,
                 a.head_dim,
                 a.causal,
                 1.f / std::sqrt(static_cast<float>(a.head_dim))};
  const int64_t rows = a.batch * a.q_heads * a.q_len;
  simple_attention_kernel<T><<<static_cast<unsigned>((rows + 7) / 8), 256, 0, c.stream>>>(p);
  KVS_LAUNCH();
}

template <class T, int D>
void decode_t(Ctx& c, const AttentionArgs& a, const void* q, const void* k, const void* v,
              void* o) {
  constexpr int kStages = 3;
  using SM = DecodeSmem<T, D, kStages>;
  DecodeParams p{};
  p.q = q;
  p.k = k;
  p.v = v;
  p.kv_heads = a.kv_heads;
  p.group = a.q_heads / a.kv_heads;
  p.q_len = a.q_len;
  p.head_dim = D;
  p.tokens = a.tokens;
  p.row0 = 0;
  p.rows = a.tokens;
  p.pos0 = 0;
  p.causal = a.causal;
  p.scale_log2 = 1.4426950408889634f / std::sqrt(static_cast<float>(D));
  for (int i = 0; i < D; ++i) p.kdim[i] = static_cast<int16_t>(i);
  const int64_t heads = a.batch * a.kv_heads;
  KVS_CUDA(cudaFuncSetAttribute(decode_kernel<T, D, kStages>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize, int(SM::bytes)));
  int per_sm = 1;
  KVS_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, decode_kernel<T, D, kStages>,
                                                         kDecThreads, SM::bytes));
  const DecodeSplit sp = decode_split(heads, a.tokens, int64_t(c.sms) * std::max(per_sm, 1));
  p.rows_per_split = sp.rows_per_split;
  p.splits_total = sp.splits;
  p.rec = dec_rec_floats(D, 0, 0);
  p.partial =
      static_cast<float*>(c.scratch->get(size_t(heads) * sp.splits * p.rec * sizeof(float), 0));
  KVS_CUDA(cudaFuncSetAttribute(decode_kernel<T, D, kStages>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize, int(SM::bytes)));
  decode_kernel<T, D, kStages>
      <<<dim3(unsigned(sp.splits), unsigned(heads)), kDecThreads, SM::bytes, c.stream>>>(p);
  KVS_LAUNCH();
  CombineParams cp{};
  cp.partial = p.partial;
  cp.o = o;
  cp.kv_heads = a.kv_heads;
  cp.group = p.group;
  cp.q_len = a.q_len;
  cp.head_dim = D;
  cp.splits = sp.splits;
  cp.rec = p.rec;
  cp.DK = D;
  for (int i = 0; i < D; ++i) cp.kdim[i] = static_cast<int16_t>(i);
  const size_t smem = size_t(kDecCols) * sp.splits * sizeof(float);
  combine_kernel<T><<<unsigned(heads), 128, smem, c.stream>>>(cp);
  KVS_LAUNCH();
}

// The exact prefill kernels' parameters (the Fourier fields stay empty).
PrefillParams exact_prefill_params(const AttentionArgs& a, const void* q, const void* k,
                                   const void* v, void* o) {
  PrefillParams p{};
  p.q = q;
  p.k = k;
  p.v = v;
  p.o = o;
  p.kv_heads = a.kv_heads;
  p.group = a.q_heads / a.kv_heads;
  p.q_len = a.q_len;
  p.tokens = a.tokens;
  p.causal = a.causal;
  p.scale_log2 = 1.4426950408889634f / std::sqrt(static_cast<float>(a.head_dim));
  return p;
}

template <class T, int D>
void prefill_t(Ctx& c, const AttentionArgs& a, const void* q, const void* k, const void* v,
               void* o) {
  using SM = PrefillSmem<T, D, D, 0>;
  const PrefillParams p = exact_prefill_params(a, q, k, v, o);
  KVS_CUDA(cudaFuncSetAttribute(prefill_kernel<T, D, D, 0>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize, int(SM::bytes)));
  const int64_t qtiles = (a.q_len + kPreRows - 1) / kPreRows;
  prefill_kernel<T, D, D, 0>
      <<<dim3(unsigned(qtiles), unsigned(a.batch * a.q_heads)), kPreThreads, SM::bytes, c.stream>>>(
          p);
  KVS_LAUNCH();
}

// A tensor map of [heads, rows, 128] 16-bit elements read as [128 rows x 64 columns] boxes with
// the 128-byte swizzle (the layout of wgmma.cuh); rows past `rows` read as zeros. The driver's
// encoder is looked up through the runtime, so nothing links against libcuda.
CUtensorMap tile_map(DType t, const void* data, int64_t rows, int64_t heads) {
  using Encode =
      CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                   const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                   CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
  static const Encode encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    KVS_CUDA(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000,
                                              cudaEnableDefault, &found));
    if (found != cudaDriverEntryPointSuccess || !fn)
      throw std::runtime_error("cuda: the driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<Encode>(fn);
  }();
  CUtensorMap m{};
  const cuuint64_t dims[3] = {128, cuuint64_t(rows), cuuint64_t(heads)};
  const cuuint64_t strides[2] = {128 * 2, cuuint64_t(rows) * 128 * 2};  // bytes, dims 1 and 2
  const cuuint32_t box[3] = {64, 128, 1};
  const cuuint32_t step[3] = {1, 1, 1};
  const CUresult r = encode(
      &m, t == DType::bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 3,
      const_cast<void*>(data), dims, strides, box, step, CU_TENSOR_MAP_INTERLEAVE_NONE,
      CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw std::runtime_error("cuda: cuTensorMapEncodeTiled failed (" + std::to_string(int(r)) +
                             ")");
  return m;
}

template <class T>
void prefill_wgmma_t(Ctx& c, const AttentionArgs& a, const void* q, const void* k, const void* v,
                     void* o) {
  const PrefillParams p = exact_prefill_params(a, q, k, v, o);
  const CUtensorMap qm = tile_map(a.dtype, q, a.q_len, a.batch * a.q_heads);
  const CUtensorMap km = tile_map(a.dtype, k, a.tokens, a.batch * a.kv_heads);
  const CUtensorMap vm = tile_map(a.dtype, v, a.tokens, a.batch * a.kv_heads);
  constexpr size_t smem = WgPrefillSmem::bytes;
  KVS_CUDA(cudaFuncSetAttribute(prefill_wgmma_kernel<T>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const int64_t qtiles = (a.q_len + kWgPreRows - 1) / kWgPreRows;
  if (qtiles > 65535) throw std::invalid_argument("attention: q_len too long for one launch");
  prefill_wgmma_kernel<T>
      <<<dim3(unsigned(a.batch * a.q_heads), unsigned(qtiles)), kWgPreThreads, smem, c.stream>>>(
          p, qm, km, vm);
  KVS_LAUNCH();
}

__global__ void wgmma_probe_kernel(int* out) { *out = KVS_HAVE_WGMMA; }

template <class T>
void fast_t(Ctx& c, const AttentionArgs& a, const void* q, const void* k, const void* v, void* o) {
  const int64_t cols = (a.q_heads / a.kv_heads) * a.q_len;
  if (cols <= kDecCols) {
    if (a.head_dim == 128) return decode_t<T, 128>(c, a, q, k, v, o);
    return decode_t<T, 64>(c, a, q, k, v, o);
  }
  if (a.head_dim == 128) {
    // On the H200 the wgmma kernel took 32 heads x 16384 causal from 9.8 ms (the mma.sync
    // kernel) to 4.5 ms (kernels/BENCHMARKS.md).
    if (c.wgmma) return prefill_wgmma_t<T>(c, a, q, k, v, o);
    return prefill_t<T, 128>(c, a, q, k, v, o);
  }
  return prefill_t<T, 64>(c, a, q, k, v, o);
}

}  // namespace

bool wgmma_available(cudaStream_t stream) {
  int dev = 0;
  cudaDeviceProp prop{};
  KVS_CUDA(cudaGetDevice(&dev));
  KVS_CUDA(cudaGetDeviceProperties(&prop, dev));
  if (prop.major != 9 || prop.minor != 0) return false;  // sm_90a code runs on 9.0 only
  int* d = nullptr;
  int h = 0;
  KVS_CUDA(cudaMalloc(&d, sizeof(int)));
  wgmma_probe_kernel<<<1, 1, 0, stream>>>(d);
  const cudaError_t launched = cudaGetLastError();
  if (launched == cudaSuccess) {
    KVS_CUDA(cudaMemcpyAsync(&h, d, sizeof(int), cudaMemcpyDeviceToHost, stream));
    KVS_CUDA(cudaStreamSynchronize(stream));
  }
  KVS_CUDA(cudaFree(d));
  return launched == cudaSuccess && h == 1;
}

DecodeSplit decode_split(int64_t heads, int64_t rows, int64_t slots) {
  const int64_t tiles = std::max<int64_t>(1, (rows + kDecTile - 1) / kDecTile);
  int64_t splits = std::max<int64_t>(1, slots / std::max<int64_t>(heads, 1));
  splits = std::min(splits, std::max<int64_t>(1, tiles / 4));
  const int64_t per = (tiles + splits - 1) / splits * kDecTile;
  return {std::max<int64_t>(1, (rows + per - 1) / per), per};
}

void check_attention(const AttentionArgs& a) {
  if (a.batch < 0 || a.q_heads <= 0 || a.kv_heads <= 0 || a.q_heads % a.kv_heads != 0)
    throw std::invalid_argument("attention: q_heads must be a positive multiple of kv_heads");
  if (a.head_dim <= 0 || a.head_dim > 256)
    throw std::invalid_argument("attention: head_dim must be in 1..256");
  if (a.q_len <= 0 || a.tokens < a.q_len)
    throw std::invalid_argument("attention: need 0 < q_len <= tokens");
}

void attention(Ctx& c, const AttentionArgs& a, const void* q, const void* k, const void* v,
               void* o) {
  check_attention(a);
  if (a.batch == 0) return;
  const bool fast =
      !c.opt.simple_attention && a.dtype != DType::f32 && (a.head_dim == 64 || a.head_dim == 128);
  if (fast) {
    if (a.dtype == DType::bf16) return fast_t<bf16>(c, a, q, k, v, o);
    return fast_t<f16>(c, a, q, k, v, o);
  }
  switch (a.dtype) {
    case DType::f32:
      return simple_t<float>(c, a, q, k, v, o);
    case DType::bf16:
      return simple_t<bf16>(c, a, q, k, v, o);
    case DType::f16:
      return simple_t<f16>(c, a, q, k, v, o);
  }
}

}  // namespace kvscope::kernels::cuda
