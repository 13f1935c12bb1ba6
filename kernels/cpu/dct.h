// The DCT-II / DCT-III pair of one length n, computed through an FFT of the same length with
// Eigen's FFT module (unsupported/Eigen/FFT, kissfft backend). Makhoul's reordering makes a
// length-n DCT-II one length-n complex FFT plus a twiddle:
//   v_m = x_{2m},  v_{n-1-m} = x_{2m+1}          (even samples forward, odd ones reversed)
//   X_k = sum_j x_j cos(pi (j + 1/2) k / n) = Re( e^{-i pi k / 2n} FFT(v)_k )
// and the DCT-III (the transpose, i.e. the inverse up to scaling) runs the same steps
// backwards: V_k = e^{i pi k / 2n} (X_k - i X_{n-k}), v = IFFT(V), then undo the reordering.
// kissfft is fast for lengths made of small primes; a length with a large prime factor p would
// cost O(n p), so such lengths use Bluestein's chirp-z identity, which turns the length-n DFT
// into a convolution done with power-of-two FFTs.
#pragma once

#include <complex>
#include <cstdint>
#include <memory>
#include <vector>

#include <Eigen/Core>
#include <unsupported/Eigen/FFT>

namespace kvscope::kernels::cpu {

class DctPlan {
 public:
  explicit DctPlan(int64_t n);
  int64_t size() const { return n_; }
  bool uses_bluestein() const { return bluestein_; }

  // out_k = sum_{j<n} x_j cos(pi (j + 1/2) k / n) for k < k_count (raw, unnormalised DCT-II).
  void dct2(const float* x, float* out, int64_t k_count);
  // x_j = sum_{k<k_count} w_k cos(pi (j + 1/2) k / n) for j < n (raw DCT-III; w_k = 0 past
  // k_count).
  void dct3(const float* w, int64_t k_count, float* x);

 private:
  using cf = std::complex<float>;
  void dft(std::vector<cf>& buf, bool inverse);  // in place, unscaled

  int64_t n_;
  bool bluestein_ = false;
  int64_t p_ = 0;               // Bluestein convolution length (power of two >= 2n - 1)
  std::vector<cf> twiddle_;     // e^{-i pi k / 2n}
  std::vector<cf> chirp_;       // e^{i pi m^2 / n}
  std::vector<cf> kernel_fft_;  // FFT of the chirp convolution kernel, pre-divided by p
  std::vector<cf> buf_, tmp_, tmp2_;
  Eigen::FFT<float> fft_;
};

// This thread's plan for length n (plans are cached per thread; Eigen::FFT is not thread-safe).
DctPlan& dct_plan(int64_t n);

// The orthonormal DCT-II basis as a matrix, B[k, n] = s_k cos(pi (n + 1/2) k / n_len) for
// k < k_count, n < n_len: with it the transforms of many rows at once are one GEMM each
// (scores: U B, outputs: P B^T), which beats one FFT per row when k_count is small against
// log n_len or when there are many rows (prefill). Cached and shared across threads; null when
// the matrix would exceed the cache's byte budget.
using BasisMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
std::shared_ptr<const BasisMatrix> dct_basis(int64_t n_len, int64_t k_count);
constexpr int64_t kMaxBasisBytes = int64_t{128} << 20;

// Orthonormal DCT-II scale: sqrt(1/n) for k = 0, sqrt(2/n) otherwise.
inline float dct_scale(int64_t k, int64_t n) {
  return static_cast<float>(k == 0 ? std::sqrt(1.0 / static_cast<double>(n))
                                   : std::sqrt(2.0 / static_cast<double>(n)));
}

}  // namespace kvscope::kernels::cpu
