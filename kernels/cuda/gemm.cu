// Y[rows, out] = X[rows, in] W[out, in]^T (+ b): the CCV layer and the dense layers.
// Large rows: cuBLASLt with the bias fused into its epilogue. rows <= 16 (decode): a library GEMM
// tiles for large matrices and leaves most of the weight-read bandwidth unused, so kvscope's own
// kernels stream W once with 16-byte loads straight into tensor-core fragments (no shared memory
// staging): for one row a warp per output feature reading its W row contiguously, for 2..16 rows
// a block per 16 features that splits the reduction over its warps.
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

// ---- small-rows tile kernel ---------------------------------------------------------------------
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
// Programmatic dependent launch: W is a weight, so a block issues its W
// loads before griddepcontrol.wait (which returns once the previous kernel in the stream has
// finished and its writes are visible) and reads X and writes Y after it. Every thread then
// allows the next kernel to launch; as it does so only after its own wait, a next kernel's early
// reads can only overlap this kernel, which writes nothing but Y. Without the launch attribute
// both instructions are no-ops.
constexpr int kGemvWarps = 16;
constexpr int kGemvGroup = 8;  // chunks per warp in flight

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
  const Launch l(c.stream, dim3(unsigned((g.out + 15) / 16)), kGemvWarps * 32, 0, true);
  const auto kernel = g.rows <= 8 ? gemv_kernel<T, 1> : gemv_kernel<T, 2>;
  KVS_CUDA(cudaLaunchKernelEx(&l.cfg, kernel, g.rows, g.out, g.in, static_cast<const T*>(x),
                              static_cast<const T*>(w),
                              g.bias ? static_cast<const T*>(bias) : nullptr, static_cast<T*>(y)));
  KVS_LAUNCH();
}

// ---- one-row kernel (rows == 1) -------------------------------------------------------------
// A warp owns one output feature and reads its W row as one contiguous run: lane l's 16-byte
// vectors are l, l + 32, ..., so each load instruction covers 512 consecutive bytes and a warp's
// kRowLoads loads are 8 KB of the row in flight (all of it for in = 4096). The tile kernel above
// spreads each load instruction over 8 rows in 64-byte pieces and reduces through shared memory
// after a barrier: eight calls of it chained with programmatic dependent launch on the H200 (4096
// -> 2048, after a read flush) reached 60 % of the weight floor, this kernel 74 %
// (kernels/BENCHMARKS.md).
// The dot product still runs on the tensor cores, so that the work after the wait (X's loads,
// then the multiplies) stays short: the warp's 512 bytes are viewed as 8 segments of 32
// elements, segment g in A's row g (rows g + 8 are zero) and the same 32 elements of X in B's
// column g, with the k-permutation of the tile kernel. Then C[g][g] accumulates segment g's dot
// product; the other entries are never read. Four accumulators keep the MMA chain short.
// Programmatic dependent launch as in the tile kernel: W before griddepcontrol.wait, X and Y
// after it.
constexpr int kRowWarps = 8;
constexpr int kRowLoads = 16;  // 16-byte vectors per lane in flight

template <class T>
__global__ void __launch_bounds__(kRowWarps * 32, 2)
    gemv_row_kernel(int64_t out, int64_t in, const T* __restrict__ x, const T* __restrict__ w,
                    const T* __restrict__ bias, T* __restrict__ y) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t f = static_cast<int64_t>(blockIdx.x) * kRowWarps + warp;
  // A warp past `out` reads the last row and stores nothing.
  const auto* wr = reinterpret_cast<const uint4*>(w + (f < out ? f : out - 1) * in);
  const auto* xr = reinterpret_cast<const uint4*>(x);
  const int64_t vecs = in / 8;
  float acc[4][4] = {};
  bool waited = false;
  for (int64_t v0 = 0; v0 < vecs; v0 += 32 * kRowLoads) {
    uint4 a[kRowLoads], b[kRowLoads];
#pragma unroll
    for (int u = 0; u < kRowLoads; ++u) {
      const int64_t v = v0 + u * 32 + lane;
      a[u] = v < vecs ? ldg16_stream(wr + v) : make_uint4(0u, 0u, 0u, 0u);
    }
    if (!waited) {
      grid_dependency_wait();
      allow_dependent_launch();
      waited = true;
    }
#pragma unroll
    for (int u = 0; u < kRowLoads; ++u) {
      const int64_t v = v0 + u * 32 + lane;
      b[u] = v < vecs ? ldg16(xr + v) : make_uint4(0u, 0u, 0u, 0u);
    }
#pragma unroll
    for (int u = 0; u < kRowLoads; ++u) {
      const uint32_t fa0[4] = {a[u].x, 0u, a[u].y, 0u}, fa1[4] = {a[u].z, 0u, a[u].w, 0u};
      const uint32_t fb0[2] = {b[u].x, b[u].y}, fb1[2] = {b[u].z, b[u].w};
      mma16816<T>(acc[(2 * u) % 4], fa0, fb0);
      mma16816<T>(acc[(2 * u + 1) % 4], fa1, fb1);
    }
  }
  if (!waited) {  // in < 8: no vectors, but Y is still written after the wait
    grid_dependency_wait();
    allow_dependent_launch();
  }
  // C[g][g] is entry g % 2 of lane (g, g / 2).
  const int g = lane / 4, t = lane % 4;
  float s = 0.f;
  if (t == g / 2)
#pragma unroll
    for (int k = 0; k < 4; ++k) s += (g & 1) ? acc[k][1] : acc[k][0];
#pragma unroll
  for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (lane == 0 && f < out) y[f] = from_f32<T>(bias ? s + to_f32(bias[f]) : s);
}

template <class T>
void gemv_row_t(Ctx& c, const GemmArgs& g, const void* x, const void* w, const void* bias,
                void* y) {
  const Launch l(c.stream, dim3(unsigned((g.out + kRowWarps - 1) / kRowWarps)), kRowWarps * 32, 0,
                 true);
  KVS_CUDA(cudaLaunchKernelEx(&l.cfg, gemv_row_kernel<T>, g.out, g.in, static_cast<const T*>(x),
                              static_cast<const T*>(w),
                              g.bias ? static_cast<const T*>(bias) : nullptr, static_cast<T*>(y)));
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
    const bool bf = g.dtype == DType::bf16;
    if (g.rows == 1)
      (bf ? gemv_row_t<bf16> : gemv_row_t<f16>)(c, g, x, w, bias, y);
    else
      (bf ? gemv_t<bf16> : gemv_t<f16>)(c, g, x, w, bias, y);
    return;
  }
  gemm_cublaslt(c, g, x, w, bias, y);
}

}  // namespace kvscope::kernels::cuda
