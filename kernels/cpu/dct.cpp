#include "kernels/cpu/dct.h"

#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>
#include <unordered_map>

namespace kvscope::kernels::cpu {
namespace {

int64_t largest_prime_factor(int64_t n) {
  int64_t largest = 1;
  for (int64_t p = 2; p * p <= n; ++p) {
    while (n % p == 0) {
      largest = p;
      n /= p;
    }
  }
  return n > 1 ? n : largest;
}

// Above this prime factor kissfft's generic butterfly loses to three power-of-two FFTs.
constexpr int64_t kMaxKissPrime = 31;

}  // namespace

DctPlan::DctPlan(int64_t n) : n_(n) {
  fft_.SetFlag(Eigen::FFT<float>::Unscaled);
  const double pi = std::numbers::pi;
  twiddle_.resize(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    const double a = -pi * static_cast<double>(k) / (2.0 * static_cast<double>(n));
    twiddle_[static_cast<size_t>(k)] =
        cf(static_cast<float>(std::cos(a)), static_cast<float>(std::sin(a)));
  }
  bluestein_ = n > 64 && largest_prime_factor(n) > kMaxKissPrime;
  if (bluestein_) {
    p_ = 1;
    while (p_ < 2 * n - 1) p_ *= 2;
    chirp_.resize(static_cast<size_t>(n));
    for (int64_t m = 0; m < n; ++m) {
      // m^2 mod 2n keeps the angle small, so it stays exact in double for any n.
      const int64_t r = (m * m) % (2 * n);
      const double a = pi * static_cast<double>(r) / static_cast<double>(n);
      chirp_[static_cast<size_t>(m)] =
          cf(static_cast<float>(std::cos(a)), static_cast<float>(std::sin(a)));
    }
    std::vector<cf> kernel(static_cast<size_t>(p_), cf(0, 0));
    kernel[0] = chirp_[0];
    for (int64_t m = 1; m < n; ++m) {
      kernel[static_cast<size_t>(m)] = chirp_[static_cast<size_t>(m)];
      kernel[static_cast<size_t>(p_ - m)] = chirp_[static_cast<size_t>(m)];
    }
    fft_.fwd(kernel_fft_, kernel);
    const float inv_p = 1.0f / static_cast<float>(p_);
    for (auto& c : kernel_fft_) c *= inv_p;
  }
}

void DctPlan::dft(std::vector<cf>& buf, bool inverse) {
  if (n_ == 1) return;  // the identity; kissfft does not handle length 1
  if (!bluestein_) {
    if (inverse)
      fft_.inv(tmp_, buf);
    else
      fft_.fwd(tmp_, buf);
    buf.swap(tmp_);
    return;
  }
  // X_k = conj(c_k) sum_j (x_j conj(c_j)) c_{k-j}; the inverse is conj(DFT(conj(x))).
  tmp_.assign(static_cast<size_t>(p_), cf(0, 0));
  for (int64_t j = 0; j < n_; ++j) {
    const cf x = inverse ? std::conj(buf[static_cast<size_t>(j)]) : buf[static_cast<size_t>(j)];
    tmp_[static_cast<size_t>(j)] = x * std::conj(chirp_[static_cast<size_t>(j)]);
  }
  fft_.fwd(tmp2_, tmp_);
  for (int64_t i = 0; i < p_; ++i)
    tmp2_[static_cast<size_t>(i)] *= kernel_fft_[static_cast<size_t>(i)];
  fft_.inv(tmp_, tmp2_);
  for (int64_t k = 0; k < n_; ++k) {
    const cf y = tmp_[static_cast<size_t>(k)] * std::conj(chirp_[static_cast<size_t>(k)]);
    buf[static_cast<size_t>(k)] = inverse ? std::conj(y) : y;
  }
}

void DctPlan::dct2(const float* x, float* out, int64_t k_count) {
  const int64_t n = n_;
  buf_.resize(static_cast<size_t>(n));
  for (int64_t m = 0; 2 * m < n; ++m) buf_[static_cast<size_t>(m)] = cf(x[2 * m], 0.0f);
  for (int64_t m = 0; 2 * m + 1 < n; ++m)
    buf_[static_cast<size_t>(n - 1 - m)] = cf(x[2 * m + 1], 0.0f);
  dft(buf_, false);
  for (int64_t k = 0; k < k_count && k < n; ++k)
    out[k] = (twiddle_[static_cast<size_t>(k)] * buf_[static_cast<size_t>(k)]).real();
  for (int64_t k = n; k < k_count; ++k) out[k] = 0.0f;
}

void DctPlan::dct3(const float* w, int64_t k_count, float* x) {
  const int64_t n = n_;
  const int64_t kc = std::min(k_count, n);
  // X'_0 = w_0, X'_k = w_k / 2 is the raw DCT-II (divided by n) of the wanted x, so inverting
  // Makhoul's steps yields x.
  auto coef = [&](int64_t k) -> float {
    if (k >= kc || k >= n) return 0.0f;
    return k == 0 ? w[0] : 0.5f * w[k];
  };
  buf_.resize(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    const cf z(coef(k), k == 0 ? 0.0f : -coef(n - k));
    buf_[static_cast<size_t>(k)] = std::conj(twiddle_[static_cast<size_t>(k)]) * z;
  }
  dft(buf_, true);
  for (int64_t m = 0; 2 * m < n; ++m) x[2 * m] = buf_[static_cast<size_t>(m)].real();
  for (int64_t m = 0; 2 * m + 1 < n; ++m)
    x[2 * m + 1] = buf_[static_cast<size_t>(n - 1 - m)].real();
}

DctPlan& dct_plan(int64_t n) {
  thread_local std::unordered_map<int64_t, std::unique_ptr<DctPlan>> cache;
  auto it = cache.find(n);
  if (it != cache.end()) return *it->second;
  // Bounded: a replay touches many lengths, each plan holds O(n) twiddles.
  if (cache.size() >= 16) cache.clear();
  return *cache.emplace(n, std::make_unique<DctPlan>(n)).first->second;
}

std::shared_ptr<const BasisMatrix> dct_basis(int64_t n_len, int64_t k_count) {
  if (n_len * k_count * static_cast<int64_t>(sizeof(float)) > kMaxBasisBytes) return nullptr;
  static std::mutex mu;
  static std::map<std::pair<int64_t, int64_t>, std::shared_ptr<const BasisMatrix>> cache;
  static int64_t cached_bytes = 0;
  {
    const std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find({n_len, k_count});
    if (it != cache.end()) return it->second;
  }
  auto b = std::make_shared<BasisMatrix>(k_count, n_len);
  const double pi = std::numbers::pi;
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < k_count; ++k) {
    const double s = static_cast<double>(dct_scale(k, n_len));
    for (int64_t n = 0; n < n_len; ++n) {
      // (2n + 1) k mod 4 n_len keeps the angle below 2 pi, exact in double for any length.
      const int64_t r = ((2 * n + 1) * k) % (4 * n_len);
      (*b)(k, n) = static_cast<float>(
          s * std::cos(pi * static_cast<double>(r) / (2.0 * static_cast<double>(n_len))));
    }
  }
  const std::lock_guard<std::mutex> lock(mu);
  const int64_t bytes = n_len * k_count * static_cast<int64_t>(sizeof(float));
  if (cached_bytes + bytes > 2 * kMaxBasisBytes) {
    cache.clear();
    cached_bytes = 0;
  }
  cache[{n_len, k_count}] = b;
  cached_bytes += bytes;
  return b;
}

}  // namespace kvscope::kernels::cpu
