// The cuFFT path of spectral compression and reconstruction, kept to compare with the fused
// kernels (fourier.cu; BENCHMARKS.md has both). The DCT-II of length L is one real FFT of length
// L after Makhoul's reordering (v_j = x_{2j}, v_{L-1-j} = x_{2j+1}) and a twiddle:
//   C_k = Re(e^{-i pi k / (2L)} V_k),  c_k = s_k C_k.
// Inverse: V_k = e^{i pi k / (2L)} (C_k - i C_{L-k}) (C_L = 0), v = IFFT(V), undo the reordering.
// Each costs a gather (transposing) pass, the FFT itself (which reads and writes the full
// length-L spectrum of every column though only M values are kept) and a twiddle pass.
// Plans are cached per (L, columns, direction).
#include <cufft.h>

#include <cmath>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace kvscope::kernels::cuda {

class FftPlans {
 public:
  ~FftPlans() {
    for (auto& kv : plans_) cufftDestroy(kv.second);
  }
  cufftHandle get(int64_t n, int64_t batch, cufftType type) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto key = std::make_tuple(n, batch, static_cast<int>(type));
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
    cufftHandle h{};
    long long nn = n;
    size_t ws = 0;
    check(cufftCreate(&h), "cufftCreate");
    check(cufftMakePlanMany64(h, 1, &nn, nullptr, 1, 0, nullptr, 1, 0, type, batch, &ws),
          "cufftMakePlanMany64");
    plans_.emplace(key, h);
    return h;
  }
  static void check(cufftResult r, const char* what) {
    if (r != CUFFT_SUCCESS)
      throw std::runtime_error(std::string("cuFFT: ") + what + " failed with code " +
                               std::to_string(static_cast<int>(r)));
  }

 private:
  std::map<std::tuple<int64_t, int64_t, int>, cufftHandle> plans_;
  std::mutex mu_;
};

FftPlans* fft_create() { return new FftPlans(); }
void fft_destroy(FftPlans* p) { delete p; }

namespace {

struct Dims {
  int16_t off[256];
};

// Position of middle token n in Makhoul's reordering.
__device__ __forceinline__ int64_t makhoul_pos(int64_t n, int64_t L) {
  return (n % 2 == 0) ? n / 2 : L - 1 - (n - 1) / 2;
}

// v[h*C + c][makhoul_pos(n)] = x[h][sink + n][dims[c]]: 32 x 32 tiles through shared memory so
// both the strided reads and the reordered writes stay coalesced.
template <class T>
__global__ void gather_kernel(int64_t L, int64_t T_, int64_t D, int64_t sink, int C, const T* x,
                              float* v, Dims dims) {
  __shared__ float tile[32][33];
  const int64_t h = blockIdx.z, n0 = int64_t(blockIdx.x) * 32;
  const int c0 = blockIdx.y * 32;
  for (int r = threadIdx.y; r < 32; r += 8) {
    const int64_t n = n0 + r;
    const int c = c0 + threadIdx.x;
    tile[r][threadIdx.x] =
        (n < L && c < C) ? to_f32(x[(h * T_ + sink + n) * D + dims.off[c]]) : 0.f;
  }
  __syncthreads();
  for (int r = threadIdx.y; r < 32; r += 8) {
    const int c = c0 + r;
    const int64_t n = n0 + threadIdx.x;
    if (c < C && n < L) v[(h * C + c) * L + makhoul_pos(n, L)] = tile[threadIdx.x][r];
  }
}

template <class T>
__global__ void scatter_kernel(int64_t L, int64_t T_, int64_t D, int64_t sink, int C,
                               const float* v, T* x, Dims dims) {
  __shared__ float tile[32][33];
  const int64_t h = blockIdx.z, n0 = int64_t(blockIdx.x) * 32;
  const int c0 = blockIdx.y * 32;
  const float inv_l = 1.f / static_cast<float>(L);  // cuFFT's inverse is unnormalised
  for (int r = threadIdx.y; r < 32; r += 8) {
    const int c = c0 + r;
    const int64_t n = n0 + threadIdx.x;
    tile[threadIdx.x][r] = (c < C && n < L) ? v[(h * C + c) * L + makhoul_pos(n, L)] * inv_l : 0.f;
  }
  __syncthreads();
  for (int r = threadIdx.y; r < 32; r += 8) {
    const int64_t n = n0 + r;
    const int c = c0 + threadIdx.x;
    if (n < L && c < C)
      x[(h * T_ + sink + n) * D + dims.off[c]] = from_f32<T>(tile[r][threadIdx.x]);
  }
}

__device__ __forceinline__ float ortho_scale(int64_t k, int64_t L) {
  return sqrtf((k == 0 ? 1.f : 2.f) / static_cast<float>(L));
}

// coeffs[h][k][c] = s_k Re(e^{-i pi k/(2L)} V_k) for k < min(M, L), else 0.
template <class T>
__global__ void twiddle_forward_kernel(int64_t heads, int64_t L, int64_t M, int C,
                                       const cufftComplex* F, T* coeffs) {
  const int64_t total = heads * M * C, nf = L / 2 + 1;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(i % C);
    const int64_t k = (i / C) % M, h = i / (C * M);
    float out = 0.f;
    if (k < L) {
      const cufftComplex* col = F + (h * C + c) * nf;
      cufftComplex z = k < nf ? col[k] : make_cuComplex(col[L - k].x, -col[L - k].y);
      float s, co;
      sincospif(static_cast<float>(k) / static_cast<float>(2 * L), &s, &co);
      out = ortho_scale(k, L) * (co * z.x + s * z.y);
    }
    coeffs[i] = from_f32<T>(out);
  }
}

// F[col][k] = e^{i pi k/(2L)} (C_k - i C_{L-k}), C_k = c_k / s_k for k < min(M, L), else 0.
template <class T>
__global__ void twiddle_inverse_kernel(int64_t heads, int64_t L, int64_t M, int C, const T* coeffs,
                                       cufftComplex* F) {
  const int64_t nf = L / 2 + 1, total = heads * C * nf;
  const int64_t kmax = M < L ? M : L;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = i % nf, col = i / nf;
    const int64_t h = col / C;
    const int c = static_cast<int>(col % C);
    const T* cf = coeffs + h * M * C + c;
    const float ck = k < kmax ? to_f32(cf[k * C]) / ortho_scale(k, L) : 0.f;
    const int64_t kr = L - k;
    const float clk = (k > 0 && kr < kmax) ? to_f32(cf[kr * C]) / ortho_scale(kr, L) : 0.f;
    float s, co;
    sincospif(static_cast<float>(k) / static_cast<float>(2 * L), &s, &co);
    F[i] = make_cuComplex(co * ck + s * clk, s * ck - co * clk);
  }
}

int grid_for(int64_t items, int sms) {
  const int64_t b = (items + 255) / 256;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(b, int64_t(sms) * 16)));
}

Dims make_dims(const FourierLayout& f) {
  Dims d{};
  for (size_t i = 0; i < f.compressed_dims.size() && i < 256; ++i)
    d.off[i] = static_cast<int16_t>(f.compressed_dims[i]);
  return d;
}

template <class T>
void compress_t(Ctx& c, const KvShape& s, const FourierLayout& f, const void* kv, void* coeffs) {
  const int64_t heads = s.batch * s.kv_heads, L = f.middle(s.tokens), M = f.m;
  const int C = static_cast<int>(f.compressed_dims.size());
  const size_t cbytes = size_t(heads) * M * C * sizeof(T);
  if (L == 0 || C == 0 || M == 0) {
    if (cbytes) KVS_CUDA(cudaMemsetAsync(coeffs, 0, cbytes, c.stream));
    return;
  }
  const int64_t cols = heads * C, nf = L / 2 + 1;
  auto* v = static_cast<float*>(c.scratch->get(size_t(cols) * L * 4, 1));
  auto* F = static_cast<cufftComplex*>(c.scratch->get(size_t(cols) * nf * 8, 2));
  const dim3 tg(static_cast<unsigned>((L + 31) / 32), static_cast<unsigned>((C + 31) / 32),
                static_cast<unsigned>(heads));
  gather_kernel<T><<<tg, dim3(32, 8), 0, c.stream>>>(L, s.tokens, s.head_dim, f.sink, C,
                                                     static_cast<const T*>(kv), v, make_dims(f));
  KVS_LAUNCH();
  cufftHandle plan = c.fft->get(L, cols, CUFFT_R2C);
  FftPlans::check(cufftSetStream(plan, c.stream), "cufftSetStream");
  FftPlans::check(cufftExecR2C(plan, v, F), "cufftExecR2C");
  twiddle_forward_kernel<T><<<grid_for(heads * M * C, c.sms), 256, 0, c.stream>>>(
      heads, L, M, C, F, static_cast<T*>(coeffs));
  KVS_LAUNCH();
}

template <class T>
void reconstruct_t(Ctx& c, const KvShape& s, const FourierLayout& f, const void* coeffs, void* kv) {
  const int64_t heads = s.batch * s.kv_heads, L = f.middle(s.tokens), M = f.m;
  const int C = static_cast<int>(f.compressed_dims.size());
  if (L == 0 || C == 0) return;
  const int64_t cols = heads * C, nf = L / 2 + 1;
  auto* v = static_cast<float*>(c.scratch->get(size_t(cols) * L * 4, 1));
  auto* F = static_cast<cufftComplex*>(c.scratch->get(size_t(cols) * nf * 8, 2));
  twiddle_inverse_kernel<T><<<grid_for(cols * nf, c.sms), 256, 0, c.stream>>>(
      heads, L, M, C, static_cast<const T*>(coeffs), F);
  KVS_LAUNCH();
  cufftHandle plan = c.fft->get(L, cols, CUFFT_C2R);
  FftPlans::check(cufftSetStream(plan, c.stream), "cufftSetStream");
  FftPlans::check(cufftExecC2R(plan, F, v), "cufftExecC2R");
  const dim3 tg(static_cast<unsigned>((L + 31) / 32), static_cast<unsigned>((C + 31) / 32),
                static_cast<unsigned>(heads));
  scatter_kernel<T><<<tg, dim3(32, 8), 0, c.stream>>>(L, s.tokens, s.head_dim, f.sink, C, v,
                                                      static_cast<T*>(kv), make_dims(f));
  KVS_LAUNCH();
}

}  // namespace

void fourier_compress_cufft(Ctx& c, const KvShape& s, const FourierLayout& f, const void* kv,
                            void* coeffs) {
  switch (s.dtype) {
    case DType::f32:
      return compress_t<float>(c, s, f, kv, coeffs);
    case DType::bf16:
      return compress_t<bf16>(c, s, f, kv, coeffs);
    case DType::f16:
      return compress_t<f16>(c, s, f, kv, coeffs);
  }
}

void fourier_reconstruct_cufft(Ctx& c, const KvShape& s, const FourierLayout& f, const void* coeffs,
                               void* kv) {
  switch (s.dtype) {
    case DType::f32:
      return reconstruct_t<float>(c, s, f, coeffs, kv);
    case DType::bf16:
      return reconstruct_t<bf16>(c, s, f, coeffs, kv);
    case DType::f16:
      return reconstruct_t<f16>(c, s, f, coeffs, kv);
  }
}

}  // namespace kvscope::kernels::cuda
