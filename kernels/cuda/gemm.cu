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
// Programmatic dependent launch (CudaOptions::gemv_pdl): W is a weight, so a block issues its W
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
  const Launch l(c.stream, dim3(unsigned((g.out + 15) / 16)), kGemvWarps * 32, 0, c.opt.gemv_pdl);
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
                 c.opt.gemv_pdl);
  KVS_CUDA(cudaLaunchKernelEx(&l.cfg, gemv_row_kernel<T>, g.out, g.in, static_cast<const T*>(x),
                              static_cast<const T*>(w),
                              g.bias ? static_cast<const T*>(bias) : nullptr, static_cast<T*>(y)));
  KVS_LAUNCH();
}

// ---- small-rows kernel, W staged by bulk copies ---------------------------------------------
// The register kernel above holds its W in flight in registers: 102 per thread, one 512-thread
// block per SM, so under programmatic dependent launch the next kernel's blocks wait for an SM
// to empty before they can issue a load. Here one thread per block asks the copy engine for the
// block's W rows (cp.async.bulk into shared memory, completing on an mbarrier per stage) and no
// thread holds them: three blocks fit on an SM, and the next kernel's blocks start streaming
// while this one's are still computing.
// A block owns 8 output features, the N side of m16n8k16 (X's rows, up to 16, are the M side),
// for tiles of kBulkTileK elements of `in` in kBulkStages stages; its 8 warps split a tile in
// chunks of 32. In a chunk each thread reads 8 consecutive elements of W row g from shared
// memory and of X rows g and g+8 from global memory (X is small and read by every block, so it
// stays in L2): as in the register kernel, the same permutation of k applies to both operands.
// Rows are padded by 64 bytes so the 8 rows a warp reads start in alternating bank halves (4
// wavefronts per 16-byte-per-thread read, the minimum).
constexpr int kBulkWarps = 8;
constexpr int kBulkFeatures = 8;
constexpr int kBulkTileK = 2048;
constexpr int kBulkStages = 2;
constexpr int kBulkRowStride = kBulkTileK + 32;  // elements (16-bit)
constexpr int kBulkGroup = 4;                    // chunks per warp with loads in flight together

template <class T>
constexpr size_t bulk_smem_bytes(int stages) {
  return size_t(stages) * kBulkFeatures * kBulkRowStride * sizeof(T) + size_t(stages) * 8;
}

template <class T, bool kTwoRowTiles, int U>
__device__ __forceinline__ void bulk_chunks(float (&acc)[4], int c, int64_t k0, const T* ws,
                                            const T* x0, const T* x1) {
  uint4 wv[U], xa[U], xb[U];
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int e = (c + u * kBulkWarps) * 32;
    wv[u] = lds16(ws + e);
    xa[u] = ldg16(x0 + k0 + e);
    xb[u] = kTwoRowTiles ? ldg16(x1 + k0 + e) : make_uint4(0, 0, 0, 0);
  }
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const uint32_t a0[4] = {xa[u].x, xb[u].x, xa[u].y, xb[u].y};
    const uint32_t a1[4] = {xa[u].z, xb[u].z, xa[u].w, xb[u].w};
    const uint32_t b0[2] = {wv[u].x, wv[u].y};
    const uint32_t b1[2] = {wv[u].z, wv[u].w};
    mma16816<T>(acc, a0, b0);
    mma16816<T>(acc, a1, b1);
  }
}

template <class T, bool kTwoRowTiles>  // kTwoRowTiles: rows > 8
__global__ void __launch_bounds__(kBulkWarps * 32, 3)
    gemv_bulk_kernel(int64_t rows, int64_t out, int64_t in, int stages, const T* __restrict__ x,
                     const T* __restrict__ w, const T* __restrict__ bias, T* __restrict__ y) {
  extern __shared__ __align__(128) unsigned char gemv_smem[];
  T* wsm = reinterpret_cast<T*>(gemv_smem);
  auto* full = reinterpret_cast<uint64_t*>(gemv_smem + size_t(stages) * kBulkFeatures *
                                                           kBulkRowStride * sizeof(T));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int64_t o0 = static_cast<int64_t>(blockIdx.x) * kBulkFeatures;
  const int nf = static_cast<int>(out - o0 < kBulkFeatures ? out - o0 : kBulkFeatures);
  const int64_t tiles = (in + kBulkTileK - 1) / kBulkTileK;
  auto tile_len = [&](int64_t tile) {
    const int64_t left = in - tile * kBulkTileK;
    return static_cast<int>(left < kBulkTileK ? left : kBulkTileK);
  };
  // Thread 0: the W rows of `tile` into its stage.
  auto issue = [&](int64_t tile) {
    const int s = static_cast<int>(tile % stages);
    const auto bytes = static_cast<uint32_t>(tile_len(tile) * sizeof(T));
    mbar_arrive_expect_tx(&full[s], bytes * static_cast<uint32_t>(nf));
    for (int f = 0; f < nf; ++f)
      bulk_copy_g2s(wsm + (size_t(s) * kBulkFeatures + f) * kBulkRowStride,
                    w + (o0 + f) * in + tile * kBulkTileK, bytes, &full[s]);
  };
  if (threadIdx.x == 0) {
    for (int s = 0; s < stages; ++s) mbar_init(&full[s], 1);
    mbar_init_fence();
  }
  __syncthreads();
  // W is a weight: its copies may start before the previous kernel in the stream is done.
  if (threadIdx.x == 0)
    for (int64_t tile = 0; tile < stages && tile < tiles; ++tile) issue(tile);
  grid_dependency_wait();
  allow_dependent_launch();
  const T* x0 = x + (g < rows ? g : rows - 1) * in + 8 * t;
  const T* x1 = x + (g + 8 < rows ? g + 8 : rows - 1) * in + 8 * t;
  float acc[4] = {};
  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int s = static_cast<int>(tile % stages);
    mbar_wait(&full[s], static_cast<uint32_t>((tile / stages) & 1));
    // Rows g >= nf of the stage were never written: their products land in features that are
    // not stored.
    const T* ws = wsm + (size_t(s) * kBulkFeatures + g) * kBulkRowStride + 8 * t;
    const int64_t k0 = tile * kBulkTileK;
    const int chunks = tile_len(tile) / 32;
    int c = warp;
    for (; c + (kBulkGroup - 1) * kBulkWarps < chunks; c += kBulkWarps * kBulkGroup)
      bulk_chunks<T, kTwoRowTiles, kBulkGroup>(acc, c, k0, ws, x0, x1);
    for (; c < chunks; c += kBulkWarps) bulk_chunks<T, kTwoRowTiles, 1>(acc, c, k0, ws, x0, x1);
    if (tile + stages < tiles) {
      fence_proxy_async_smem();
      __syncthreads();  // every warp is done with stage s
      if (threadIdx.x == 0) issue(tile + stages);
    }
  }
  // D: rows g and g+8 of X, features 2t and 2t+1.
  __shared__ float red[kBulkWarps][16][kBulkFeatures];  // [warp][row][feature]
  red[warp][g][2 * t] = acc[0];
  red[warp][g][2 * t + 1] = acc[1];
  red[warp][g + 8][2 * t] = acc[2];
  red[warp][g + 8][2 * t + 1] = acc[3];
  __syncthreads();
  const int f = threadIdx.x % kBulkFeatures, r = threadIdx.x / kBulkFeatures;  // 16 x 8
  if (r < 16 && r < rows && f < nf) {
    float sum = 0.f;
#pragma unroll
    for (int k = 0; k < kBulkWarps; ++k) sum += red[k][r][f];
    if (bias) sum += to_f32(bias[o0 + f]);
    y[r * out + o0 + f] = from_f32<T>(sum);
  }
}

template <class T>
void gemv_bulk_t(Ctx& c, const GemmArgs& g, const void* x, const void* w, const void* bias,
                 void* y) {
  const int64_t tiles = (g.in + kBulkTileK - 1) / kBulkTileK;
  const int stages = static_cast<int>(tiles < kBulkStages ? tiles : kBulkStages);
  const Launch l(c.stream, dim3(unsigned((g.out + kBulkFeatures - 1) / kBulkFeatures)),
                 kBulkWarps * 32, bulk_smem_bytes<T>(stages), c.opt.gemv_pdl);
  const auto kernel = g.rows <= 8 ? gemv_bulk_kernel<T, false> : gemv_bulk_kernel<T, true>;
  // The opt-in above 48 KB of dynamic shared memory, per launch as for the other kernels: it is
  // a property of the function on the current device.
  KVS_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(l.cfg.dynamicSmemBytes)));
  KVS_CUDA(cudaLaunchKernelEx(&l.cfg, kernel, g.rows, g.out, g.in, stages, static_cast<const T*>(x),
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
                     aligned16(w) && c.opt.small_gemm != CudaOptions::SmallGemm::cublaslt;
  if (small) {
    const bool bf = g.dtype == DType::bf16;
    switch (c.opt.small_gemm) {
      case CudaOptions::SmallGemm::bulk:
        (bf ? gemv_bulk_t<bf16> : gemv_bulk_t<f16>)(c, g, x, w, bias, y);
        return;
      case CudaOptions::SmallGemm::own:
        if (g.rows == 1) {
          (bf ? gemv_row_t<bf16> : gemv_row_t<f16>)(c, g, x, w, bias, y);
          return;
        }
        break;
      default:
        break;
    }
    (bf ? gemv_t<bf16> : gemv_t<f16>)(c, g, x, w, bias, y);
    return;
  }
  gemm_cublaslt(c, g, x, w, bias, y);
}

}  // namespace kvscope::kernels::cuda
