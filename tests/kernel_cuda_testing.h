// What the CUDA backend's tests share (test_kernels_cuda.cpp, test_kernels_cuda_ops.cpp): the
// tolerances, the float64 transforms of a Fourier tensor, the named implementations, and the
// fixture that skips without a device, seeds fresh random inputs and poisons outputs.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/backend_factories.h"
#include "kernels/convert.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/reference/reference.h"

namespace kvscope::kernels::cuda_testing {

using namespace kvscope;
using namespace kvscope::kernels;
namespace ref = kvscope::kernels::reference;

// Normalised max error |got - want|_max / |want|_max, as in test_kernels_backends.cpp; f16 has
// 3 more mantissa bits than bf16.
inline double tolerance(DType t) {
  switch (t) {
    case DType::f32:
      return 2e-4;
    case DType::f16:
      return 4e-3;
    case DType::bf16:
      return 1.6e-2;
  }
  return 0;
}

inline uint64_t fresh_seed() {
  static const uint64_t base = std::random_device{}();
  static uint64_t n = 0;
  return base + 0x9e3779b97f4a7c15ull * ++n;
}

inline std::vector<int64_t> range(int64_t lo, int64_t hi) {
  std::vector<int64_t> v;
  for (int64_t i = lo; i < hi; ++i) v.push_back(i);
  return v;
}

// The shared reference (kernels/reference) evaluates a cosine per (token, k, dim); at the head
// dims and lengths these tests need that takes minutes. These two do the same float64 sums with
// the basis tabulated once per (L, M), and the first test below checks them against the shared
// reference on a small shape.
inline ref::Vec basis_table(int64_t L, int64_t M) {  // [min(M, L)][L]
  const int64_t K = std::min(M, L);
  ref::Vec b(size_t(K * L));
  const double pi = 3.14159265358979323846;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < L; ++n)
      b[size_t(k * L + n)] = std::sqrt((k == 0 ? 1.0 : 2.0) / double(L)) *
                             std::cos(pi * (double(n) + 0.5) * double(k) / double(L));
  return b;
}

inline int64_t slot_token(const KvShape& s, const FourierLayout& f, int64_t slot) {
  if (s.tokens <= f.edge()) return slot < s.tokens ? slot : -1;
  return slot < f.sink ? slot : s.tokens - f.window + (slot - f.sink);
}

inline ref::Fourier64 compress64(const KvShape& s, const FourierLayout& f, const ref::Vec& kv) {
  const int64_t T = s.tokens, D = s.head_dim, C = int64_t(f.compressed_dims.size());
  const int64_t E = f.edge(), M = f.m, L = f.middle(T), K = std::min(M, L);
  const ref::Vec B = basis_table(L, M);
  std::vector<bool> comp(size_t(D), false);
  for (int64_t d : f.compressed_dims) comp[size_t(d)] = true;
  ref::Fourier64 out;
  out.kept.assign(size_t(s.batch * s.kv_heads * T * (D - C)), 0.0);
  out.edge.assign(size_t(s.batch * s.kv_heads * E * C), 0.0);
  out.coeffs.assign(size_t(s.batch * s.kv_heads * M * C), 0.0);
  for (int64_t h = 0; h < s.batch * s.kv_heads; ++h) {
    const double* x = kv.data() + h * T * D;
    for (int64_t t = 0, j = 0; t < T; ++t)
      for (int64_t d = 0; d < D; ++d)
        if (!comp[size_t(d)]) out.kept[size_t(h * T * (D - C) + j++)] = x[t * D + d];
    for (int64_t e = 0; e < E; ++e) {
      const int64_t t = slot_token(s, f, e);
      for (int64_t c = 0; c < C && t >= 0; ++c)
        out.edge[size_t((h * E + e) * C + c)] = x[t * D + f.compressed_dims[size_t(c)]];
    }
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < C; ++c) {
        double acc = 0;
        for (int64_t n = 0; n < L; ++n)
          acc += B[size_t(k * L + n)] * x[(f.sink + n) * D + f.compressed_dims[size_t(c)]];
        out.coeffs[size_t((h * M + k) * C + c)] = acc;
      }
  }
  return out;
}

inline ref::Vec reconstruct64(const KvShape& s, const FourierLayout& f, const ref::Fourier64& in) {
  const int64_t T = s.tokens, D = s.head_dim, C = int64_t(f.compressed_dims.size());
  const int64_t E = f.edge(), M = f.m, L = f.middle(T), K = std::min(M, L);
  const ref::Vec B = basis_table(L, M);
  std::vector<bool> comp(size_t(D), false);
  for (int64_t d : f.compressed_dims) comp[size_t(d)] = true;
  ref::Vec kv(size_t(s.elements()), 0.0);
  for (int64_t h = 0; h < s.batch * s.kv_heads; ++h) {
    double* x = kv.data() + h * T * D;
    for (int64_t t = 0, j = 0; t < T; ++t)
      for (int64_t d = 0; d < D; ++d)
        if (!comp[size_t(d)]) x[t * D + d] = in.kept[size_t(h * T * (D - C) + j++)];
    for (int64_t e = 0; e < E; ++e) {
      const int64_t t = slot_token(s, f, e);
      for (int64_t c = 0; c < C && t >= 0; ++c)
        x[t * D + f.compressed_dims[size_t(c)]] = in.edge[size_t((h * E + e) * C + c)];
    }
    for (int64_t n = 0; n < L; ++n)
      for (int64_t c = 0; c < C; ++c) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += B[size_t(k * L + n)] * in.coeffs[size_t((h * M + k) * C + c)];
        x[(f.sink + n) * D + f.compressed_dims[size_t(c)]] = acc;
      }
  }
  return kv;
}

struct NamedOptions {
  const char* name;
  CudaOptions options;
};

// The options of what a device without sm_90a runs (the mma.sync transforms and prefill).
inline CudaOptions without_sm90a() {
  CudaOptions o;
  o.sm90a_kernels = false;
  return o;
}

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda_device_count(&why) == 0) GTEST_SKIP() << "no CUDA device here: " << why;
    seed_ = fresh_seed();
    gen_.seed(seed_);
    RecordProperty("seed", std::to_string(seed_));
  }
  std::unique_ptr<Backend> make(const CudaOptions& o = {}) { return make_cuda_backend_with(o); }

  std::vector<float> normal(size_t n, double scale = 1.0) {
    std::normal_distribution<float> d(0.f, static_cast<float>(scale));
    std::vector<float> v(n);
    for (auto& x : v) x = d(gen_);
    return v;
  }
  std::unique_ptr<DeviceBuffer> upload(Backend& b, DType t, const std::vector<float>& v,
                                       ref::Vec* seen) {
    const auto bytes = encode(t, v);
    auto buf = b.alloc(bytes.size());
    b.upload(*buf, bytes.data(), bytes.size());
    if (seen) {
      const std::vector<float> d = decode(t, bytes);
      seen->assign(d.begin(), d.end());
    }
    return buf;
  }
  std::unique_ptr<DeviceBuffer> poisoned(Backend& b, size_t bytes) {
    auto buf = b.alloc(bytes);
    b.fill(*buf, 0xFF);
    return buf;
  }
  std::vector<float> read(Backend& b, DType t, const DeviceBuffer& buf, size_t n) {
    std::vector<std::byte> bytes(n * static_cast<size_t>(dtype_bytes(t)));
    b.synchronize();
    b.download(buf, bytes.data(), bytes.size());
    return decode(t, bytes);
  }
  void expect_close(const std::string& what, const std::vector<float>& got, const ref::Vec& want,
                    double tol) {
    ASSERT_EQ(got.size(), want.size()) << what;
    double max_err = 0, max_ref = 0;
    size_t worst = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(std::isfinite(got[i])) << what << "[" << i << "] unwritten or non-finite";
      const double e = std::abs(double(got[i]) - want[i]);
      if (e > max_err) max_err = e, worst = i;
      max_ref = std::max(max_ref, std::abs(want[i]));
    }
    const double norm = max_ref > 0 ? max_err / max_ref : max_err;
    EXPECT_LE(norm, tol) << what << ": normalised max error " << norm << " at " << worst << " (got "
                         << got[worst] << ", want " << want[worst] << "), seed " << seed_;
  }
  ref::Fourier64 upload_fourier(Backend& b, DType t, const ref::Fourier64& f, FourierTensor& dev) {
    ref::Fourier64 seen;
    dev.kept = upload(b, t, std::vector<float>(f.kept.begin(), f.kept.end()), &seen.kept);
    dev.edge = upload(b, t, std::vector<float>(f.edge.begin(), f.edge.end()), &seen.edge);
    dev.coeffs = upload(b, t, std::vector<float>(f.coeffs.begin(), f.coeffs.end()), &seen.coeffs);
    return seen;
  }

  // Random kept and edge values and random coefficients (not only a compressed signal's: any
  // input must come back right); coefficients past L and unused edge slots zero, as defined.
  ref::Fourier64 random_fourier(const KvShape& s, const FourierLayout& f) {
    const FourierBufferBytes n = fourier_buffer_bytes(s, f);
    const size_t e = size_t(dtype_bytes(s.dtype));
    const auto C = int64_t(f.compressed_dims.size());
    const int64_t K = std::min(f.m, f.middle(s.tokens));
    auto vec = [&](size_t count) {
      const auto v = normal(count);
      return ref::Vec(v.begin(), v.end());
    };
    ref::Fourier64 r{vec(n.kept / e), vec(n.edge / e), vec(n.coeffs / e)};
    for (size_t i = 0; i < r.coeffs.size(); ++i)
      if ((int64_t(i) / C) % f.m >= K) r.coeffs[i] = 0.0;
    for (size_t i = 0; i < r.edge.size(); ++i)
      if (slot_token(s, f, (int64_t(i) / C) % f.edge()) < 0) r.edge[i] = 0.0;
    return r;
  }

  uint64_t seed_ = 0;
  std::mt19937_64 gen_;
};

inline const DType kTypes[] = {DType::bf16, DType::f16, DType::f32};

}  // namespace kvscope::kernels::cuda_testing
