// Y[rows, out] = X[rows, in] W[out, in]^T (+ b): the CCV layer and the dense layers.
// Large rows: cuBLASLt with the bias fused into its epilogue. rows <= 16 (decode): a library GEMM
// tiles for large matrices and leaves most of the weight-read bandwidth unused, so kvscope's own
// kernel streams W once with 16-byte loads straight into tensor-core fragments (no shared memory
// staging) and splits the reduction over the warps of a block.
#include <cublasLt.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace kvscope::kernels::cuda {

namespace {

void lt_check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLASLt: ") + what + " failed with status " +
                             std::to_string(static_cast<int>(s)));
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::f32:
      return CUDA_R_32F;
    case DType::bf16:
      return CUDA_R_16BF;
    case DType::f16:
      return CUDA_R_16F;
  }
  return CUDA_R_32F;
}

}  // namespace

class LtState {
 public:
  LtState() { lt_check(cublasLtCreate(&handle), "cublasLtCreate"); }
  ~LtState() { cublasLtDestroy(handle); }
  cublasLtHandle_t handle{};
  static constexpr size_t kWorkspaceBytes = 32u << 20;
  using Key = std::tuple<int64_t, int64_t, int64_t, int, bool>;
  std::map<Key, cublasLtMatmulAlgo_t> algos;  // heuristic's first choice per shape
  std::mutex mu;
};

LtState* lt_create() { return new LtState(); }
void lt_destroy(LtState* s) { delete s; }

namespace {

void gemm_cublaslt(Ctx& c, const GemmArgs& g, const void* x, const void* w, const void* bias,
                   void* y) {
  LtState& lt = *c.lt;
  const cudaDataType_t t = cuda_type(g.dtype);
  cublasLtMatmulDesc_t op{};
  lt_check(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "MatmulDescCreate");
  // Column-major view: Y^T[out x rows] = W[out x in] (stored as W^T, so op T) * X^T[in x rows].
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta));
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb));
  const bool has_bias = g.bias && bias != nullptr;
  if (has_bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi));
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias));
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &t, sizeof(t));
  }
  cublasLtMatrixLayout_t la{}, lb{}, lc{};
  lt_check(cublasLtMatrixLayoutCreate(&la, t, static_cast<uint64_t>(g.in),
                                      static_cast<uint64_t>(g.out), g.in),
           "MatrixLayoutCreate(W)");
  lt_check(cublasLtMatrixLayoutCreate(&lb, t, static_cast<uint64_t>(g.in),
                                      static_cast<uint64_t>(g.rows), g.in),
           "MatrixLayoutCreate(X)");
  lt_check(cublasLtMatrixLayoutCreate(&lc, t, static_cast<uint64_t>(g.out),
                                      static_cast<uint64_t>(g.rows), g.out),
           "MatrixLayoutCreate(Y)");
  void* ws = c.scratch->get(LtState::kWorkspaceBytes, 3);
  cublasLtMatmulAlgo_t algo{};
  {
    std::lock_guard<std::mutex> lock(lt.mu);
    const LtState::Key key{g.rows, g.out, g.in, static_cast<int>(g.dtype), has_bias};
    auto it = lt.algos.find(key);
    if (it == lt.algos.end()) {
      cublasLtMatmulPreference_t pref{};
      lt_check(cublasLtMatmulPreferenceCreate(&pref), "MatmulPreferenceCreate");
      const size_t wsb = LtState::kWorkspaceBytes;
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb,
                                           sizeof(wsb));
      cublasLtMatmulHeuristicResult_t res{};
      int found = 0;
      const cublasStatus_t st =
          cublasLtMatmulAlgoGetHeuristic(lt.handle, op, la, lb, lc, lc, pref, 1, &res, &found);
      cublasLtMatmulPreferenceDestroy(pref);
      if (st != CUBLAS_STATUS_SUCCESS || found == 0)
        throw std::runtime_error("cuBLASLt: no algorithm for GEMM rows=" + std::to_string(g.rows) +
                                 " out=" + std::to_string(g.out) + " in=" + std::to_string(g.in));
      it = lt.algos.emplace(key, res.algo).first;
    }
    algo = it->second;
  }
  const float alpha = 1.f, beta = 0.f;
  lt_check(cublasLtMatmul(lt.handle, op, &alpha, w, la, x, lb, &beta, y, lc, y, lc, &algo, ws,
                          LtState::kWorkspaceBytes, c.stream),
           "Matmul");
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatmulDescDestroy(op);
}

// ---- small-rows kernel ---------------------------------------------------------------------
// A block owns 16 output features (the M of one m16n8k16 tile) and all `rows` (<= 16, one or two
// n8 tiles); its 16 warps split `in` in chunks of 32. In a chunk each thread loads 8 consecutive
// elements of W rows g and g+8 and of X rows g (and g+8): the same permutation of k applies to
// both operands, so the 16-byte vectors are the fragments as loaded.
// 16 warps x 8 chunks in flight per warp: for in = 4096 every load of a block is issued before
// the first multiply, which is what it takes to keep HBM busy with one block per SM. The loads
// of a group of chunks are unconditional (rows past `out` or `rows` read a valid row whose
// products are never stored; a partial group goes chunk by chunk): a load behind a branch let
// ptxas interleave the multiplies with the loads and keep about one chunk in flight per thread.
//
// Programmatic dependent launch (CudaOptions::gemv_pdl): W is a weight, so a block issues its W
// loads before griddepcontrol.wait (which returns once the previous kernel in the stream has
// finished and its writes are visible) and reads X and writes Y after it. Every thread then
// allows the next kernel to launch; as it does so only after its own wait, a next kernel's early
// reads can only overlap this kernel, which writes nothing but Y. Without the launch attribute
// both instructions are no-ops.
constexpr int kGemvWarps = 16;
constexpr int kGemvGroup = 8;  // chunks per warp in flight

__device__ __forceinline__ void grid_dependency_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// The products of U chunks starting at chunk c (stride kGemvWarps) into acc.
template <class T, int NT, int U>
__device__ __forceinline__ void gemv_chunks(float (&acc)[NT][4], int64_t c, const T* w0,
                                            const T* w1, const T* const (&xr)[NT]) {
  uint4 a0[U], a1[U], b[U][NT];
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int64_t off = (c + int64_t(u) * kGemvWarps) * 32;
    a0[u] = ldg16_stream(w0 + off);
    a1[u] = ldg16_stream(w1 + off);
  }
  grid_dependency_wait();
  allow_dependent_launch();
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int64_t off = (c + int64_t(u) * kGemvWarps) * 32;
#pragma unroll
    for (int j = 0; j < NT; ++j) b[u][j] = ldg16(xr[j] + off);
  }
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const uint32_t fa0[4] = {a0[u].x, a1[u].x, a0[u].y, a1[u].y};
    const uint32_t fa1[4] = {a0[u].z, a1[u].z, a0[u].w, a1[u].w};
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const uint32_t fb0[2] = {b[u][j].x, b[u][j].y};
      const uint32_t fb1[2] = {b[u][j].z, b[u][j].w};
      mma16816<T>(acc[j], fa0, fb0);
      mma16816<T>(acc[j], fa1, fb1);
    }
  }
}

template <class T, int NT>  // NT: number of n8 tiles (rows <= 8 * NT)
__global__ void __launch_bounds__(kGemvWarps * 32)
    gemv_kernel(int64_t rows, int64_t out, int64_t in, const T* __restrict__ x,
                const T* __restrict__ w, const T* __restrict__ bias, T* __restrict__ y) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int64_t o0 = static_cast<int64_t>(blockIdx.x) * 16;
  auto last_out = [&](int64_t o) { return o < out ? o : out - 1; };
  const T* w0 = w + last_out(o0 + g) * in + 8 * t;
  const T* w1 = w + last_out(o0 + g + 8) * in + 8 * t;
  const T* xr[NT];
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    const int64_t r = g + 8 * j < rows ? g + 8 * j : rows - 1;
    xr[j] = x + r * in + 8 * t;
  }
  float acc[NT][4] = {};
  const int64_t chunks = in / 32;
  int64_t c = warp;
  for (; c + (kGemvGroup - 1) * kGemvWarps < chunks; c += kGemvWarps * kGemvGroup)
    gemv_chunks<T, NT, kGemvGroup>(acc, c, w0, w1, xr);
  for (; c < chunks; c += kGemvWarps) gemv_chunks<T, NT, 1>(acc, c, w0, w1, xr);
  __shared__ float red[kGemvWarps][16][16];  // [warp][feature][row]
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    red[warp][g][8 * j + 2 * t] = acc[j][0];
    red[warp][g][8 * j + 2 * t + 1] = acc[j][1];
    red[warp][g + 8][8 * j + 2 * t] = acc[j][2];
    red[warp][g + 8][8 * j + 2 * t + 1] = acc[j][3];
  }
  // A warp without chunks (in < 32 * kGemvWarps) has not waited yet; Y is written after.
  grid_dependency_wait();
  allow_dependent_launch();
  __syncthreads();
  const int f = threadIdx.x % 16, r = threadIdx.x / 16;  // 16 rows x 16 features
  if (threadIdx.x < 256 && r < 8 * NT && r < rows && o0 + f < out) {
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < kGemvWarps; ++k) s += red[k][f][r];
    if (bias) s += to_f32(bias[o0 + f]);
    y[r * out + o0 + f] = from_f32<T>(s);
  }
}

template <class T>
void gemv_t(Ctx& c, const GemmArgs& g, const void* x, const void* w, const void* bias, void* y) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>((g.out + 15) / 16));
  cfg.blockDim = dim3(kGemvWarps * 32);
  cfg.stream = c.stream;
  cudaLaunchAttribute pdl{};
  pdl.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  pdl.val.programmaticStreamSerializationAllowed = 1;
  if (c.opt.gemv_pdl) {
    cfg.attrs = &pdl;
    cfg.numAttrs = 1;
  }
  const auto* tx = static_cast<const T*>(x);
  const auto* tw = static_cast<const T*>(w);
  const auto* tb = g.bias ? static_cast<const T*>(bias) : nullptr;
  auto* ty = static_cast<T*>(y);
  if (g.rows <= 8)
    KVS_CUDA(cudaLaunchKernelEx(&cfg, gemv_kernel<T, 1>, g.rows, g.out, g.in, tx, tw, tb, ty));
  else
    KVS_CUDA(cudaLaunchKernelEx(&cfg, gemv_kernel<T, 2>, g.rows, g.out, g.in, tx, tw, tb, ty));
  KVS_LAUNCH();
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

void gemm(Ctx& c, const GemmArgs& g, const void* x, const void* w, const void* bias, void* y) {
  if (g.rows <= 0 || g.out <= 0) return;
  if (g.bias && bias == nullptr) throw std::invalid_argument("gemm: bias requested but not given");
  const bool small = g.rows <= 16 && g.dtype != DType::f32 && g.in % 32 == 0 && aligned16(x) &&
                     aligned16(w) && c.opt.small_gemm == CudaOptions::SmallGemm::own;
  if (small) {
    if (g.dtype == DType::bf16)
      gemv_t<bf16>(c, g, x, w, bias, y);
    else
      gemv_t<f16>(c, g, x, w, bias, y);
    return;
  }
  gemm_cublaslt(c, g, x, w, bias, y);
}

}  // namespace kvscope::kernels::cuda
