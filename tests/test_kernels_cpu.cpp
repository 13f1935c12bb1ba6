// Pieces of the kernels library below the backend interface: the f32 <-> bf16 conversions and
// the CPU backend's FFT-based DCT (checked against direct cosine sums in double).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <numbers>
#include <random>
#include <stdexcept>
#include <string>

#include "kernels/convert.h"
#include "kernels/cpu/dct.h"

using namespace kvscope;
using namespace kvscope::kernels;

TEST(Bf16, RoundsToNearestEven) {
  // 1 + 2^-8 lies exactly half-way between bf16 1.0 and 1 + 2^-7: ties go to the even (1.0).
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  // 1 + 3*2^-8 is half-way between 1 + 2^-7 (odd mantissa) and 1 + 2^-6: goes up to even.
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  // Just above half-way rounds up.
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(-2.0f), 0xc000);
  EXPECT_EQ(bf16_to_f32(0x3f81), 1.0f + std::ldexp(1.0f, -7));
  // Overflow rounds to infinity; NaN stays NaN; infinities are kept.
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
}

TEST(Bf16, RelativeErrorWithinHalfUlp) {
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> u(-1000.0f, 1000.0f);
  for (int i = 0; i < 10000; ++i) {
    const float x = u(gen);
    const float y = bf16_to_f32(f32_to_bf16(x));
    EXPECT_LE(std::abs(y - x), std::abs(x) * std::ldexp(1.0f, -8)) << x;
  }
}

TEST(Convert, RoundTripsEveryDtype) {
  const std::vector<float> v{0.0f, 1.5f, -3.25f, 1024.0f, 0.0078125f};
  for (DType t : {DType::f32, DType::bf16, DType::f16}) EXPECT_EQ(round_through(t, v), v);
  EXPECT_EQ(encode(DType::bf16, v).size(), v.size() * 2);
}

namespace {
double direct_dct2(const std::vector<float>& x, int64_t k) {
  const auto n = static_cast<double>(x.size());
  double acc = 0;
  for (size_t j = 0; j < x.size(); ++j)
    acc += static_cast<double>(x[j]) *
           std::cos(std::numbers::pi * (static_cast<double>(j) + 0.5) * static_cast<double>(k) / n);
  return acc;
}
}  // namespace

class Dct : public ::testing::TestWithParam<int64_t> {};

TEST_P(Dct, MatchesDirectSums) {
  const int64_t n = GetParam();
  std::mt19937 gen(static_cast<unsigned>(n));
  std::normal_distribution<float> d;
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = d(gen);
  cpu::DctPlan plan(n);
  const int64_t kc = std::min<int64_t>(n, 50);
  std::vector<float> out(static_cast<size_t>(kc + 3), NAN);
  plan.dct2(x.data(), out.data(), kc);
  const double tol =
      2e-5 * std::sqrt(static_cast<double>(n)) * std::log2(static_cast<double>(n) + 2);
  for (int64_t k = 0; k < kc; ++k)
    EXPECT_NEAR(out[static_cast<size_t>(k)], direct_dct2(x, k), tol) << k;

  // DCT-III of w against direct sums.
  std::vector<float> w(static_cast<size_t>(kc));
  for (auto& v : w) v = d(gen);
  std::vector<float> y(static_cast<size_t>(n), NAN);
  plan.dct3(w.data(), kc, y.data());
  for (int64_t j = 0; j < n; ++j) {
    double acc = 0;
    for (int64_t k = 0; k < kc; ++k)
      acc += static_cast<double>(w[static_cast<size_t>(k)]) *
             std::cos(std::numbers::pi * (static_cast<double>(j) + 0.5) * static_cast<double>(k) /
                      static_cast<double>(n));
    EXPECT_NEAR(y[static_cast<size_t>(j)], acc, tol) << j;
  }
}

// Even, odd, power of two, small primes, and large primes (the Bluestein path).
INSTANTIATE_TEST_SUITE_P(Lengths, Dct,
                         ::testing::Values(1, 2, 3, 7, 16, 45, 100, 127, 257, 1000, 1009, 4099));

TEST(DctPlanChoice, LargePrimeLengthsUseBluestein) {
  EXPECT_TRUE(cpu::DctPlan(1009).uses_bluestein());
  EXPECT_TRUE(cpu::DctPlan(2 * 4099).uses_bluestein());
  EXPECT_FALSE(cpu::DctPlan(1024).uses_bluestein());
  EXPECT_FALSE(cpu::DctPlan(3 * 5 * 7 * 16).uses_bluestein());
}

// fourier_attention has two ways through the middle tokens on the CPU (an FFT per query row, or
// a GEMM against the cached DCT basis); the cross-backend table only runs the automatic choice,
// so each path is forced here against the float64 reference.
#include "kernels/cpu/cpu_backend.h"
#include "kernels/reference/reference.h"

namespace {
struct MiddlePathCase {
  cpu::TransformPath path;
  int64_t q_len, tokens, m;
};
class CpuMiddlePath : public ::testing::TestWithParam<MiddlePathCase> {
 protected:
  void TearDown() override { cpu::set_transform_path(cpu::TransformPath::automatic); }
};
}  // namespace

TEST_P(CpuMiddlePath, MatchesReference) {
  const MiddlePathCase p = GetParam();
  cpu::set_transform_path(p.path);
  auto be = make_backend("cpu");
  const AttentionArgs a{1, 4, 2, 16, p.q_len, p.tokens, true, DType::f32};
  const FourierLayout f{{0, 1, 2, 3, 9, 10}, p.m, 4, 8};
  const KvShape s{1, 2, p.tokens, 16, DType::f32};
  std::mt19937 gen(11);
  std::normal_distribution<double> d;
  auto rnd = [&](size_t n) {
    reference::Vec v(n);
    for (auto& x : v) x = static_cast<double>(static_cast<float>(d(gen)));
    return v;
  };
  const reference::Vec q = rnd(static_cast<size_t>(4 * p.q_len * 16));
  auto f32 = [](const reference::Vec& v) { return std::vector<float>(v.begin(), v.end()); };
  auto up = [&](const reference::Vec& v) {
    auto buf = be->alloc(v.size() * 4);
    const auto h = f32(v);
    be->upload(*buf, h.data(), h.size() * 4);
    return buf;
  };
  auto make = [&](reference::Fourier64& keep) {
    keep = reference::fourier_compress(s, f, rnd(static_cast<size_t>(s.elements())));
    for (auto* part : {&keep.kept, &keep.edge, &keep.coeffs})
      for (auto& x : *part) x = static_cast<double>(static_cast<float>(x));
    FourierTensor t;
    t.kept = up(keep.kept);
    t.edge = up(keep.edge);
    t.coeffs = up(keep.coeffs);
    return t;
  };
  reference::Fourier64 k64, v64;
  FourierTensor k = make(k64), v = make(v64);
  auto qd = up(q);
  auto o = be->alloc(q.size() * 4);
  be->fill(*o, 0xFF);
  be->fourier_attention(a, f, *qd, k, v, *o);
  std::vector<float> got(q.size());
  be->download(*o, got.data(), got.size() * 4);
  const reference::Vec want = reference::fourier_attention(a, f, q, k64, v64);
  double max_ref = 0, max_err = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << i;
    max_ref = std::max(max_ref, std::abs(want[i]));
    max_err = std::max(max_err, std::abs(static_cast<double>(got[i]) - want[i]));
  }
  EXPECT_LE(max_err / max_ref, 2e-4);
}

INSTANTIATE_TEST_SUITE_P(
    Paths, CpuMiddlePath,
    ::testing::Values(MiddlePathCase{cpu::TransformPath::fft, 1, 300, 24},
                      MiddlePathCase{cpu::TransformPath::basis, 1, 300, 24},
                      MiddlePathCase{cpu::TransformPath::fft, 50, 269, 40},  // L prime
                      MiddlePathCase{cpu::TransformPath::basis, 50, 269, 40},
                      MiddlePathCase{cpu::TransformPath::fft, 1, 40, 64},  // M > L
                      MiddlePathCase{cpu::TransformPath::basis, 1, 40, 64}));

// Compression and reconstruction through each path, against the reference.
class CpuCompressPath : public ::testing::TestWithParam<cpu::TransformPath> {
 protected:
  void TearDown() override { cpu::set_transform_path(cpu::TransformPath::automatic); }
};

TEST_P(CpuCompressPath, MatchesReference) {
  cpu::set_transform_path(GetParam());
  auto be = make_backend("cpu");
  const KvShape s{2, 3, 311, 16, DType::f32};  // L = 299 = 13 * 23
  const FourierLayout f{{0, 2, 3, 7, 12}, 48, 4, 8};
  std::mt19937 gen(5);
  std::normal_distribution<float> d;
  std::vector<float> kv(static_cast<size_t>(s.elements()));
  for (auto& v : kv) v = d(gen);
  auto in = be->alloc(kv.size() * 4);
  be->upload(*in, kv.data(), kv.size() * 4);
  FourierTensor t = alloc_fourier_tensor(*be, s, f);
  be->fill(*t.coeffs, 0xFF);
  be->fourier_compress(s, f, *in, t);
  const reference::Fourier64 want =
      reference::fourier_compress(s, f, reference::Vec(kv.begin(), kv.end()));
  std::vector<float> coeffs(want.coeffs.size());
  be->download(*t.coeffs, coeffs.data(), coeffs.size() * 4);
  double max_ref = 0, max_err = 0;
  for (size_t i = 0; i < coeffs.size(); ++i) {
    max_ref = std::max(max_ref, std::abs(want.coeffs[i]));
    max_err = std::max(max_err, std::abs(static_cast<double>(coeffs[i]) - want.coeffs[i]));
  }
  EXPECT_LE(max_err / max_ref, 1e-5);
  // Reconstruct from exactly those coefficients.
  reference::Fourier64 seen = want;
  seen.coeffs.assign(coeffs.begin(), coeffs.end());
  auto back = be->alloc(kv.size() * 4);
  be->fill(*back, 0xFF);
  be->fourier_reconstruct(s, f, t, *back);
  std::vector<float> got(kv.size());
  be->download(*back, got.data(), got.size() * 4);
  const reference::Vec rec = reference::fourier_reconstruct(s, f, seen);
  max_ref = max_err = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << i;
    max_ref = std::max(max_ref, std::abs(rec[i]));
    max_err = std::max(max_err, std::abs(static_cast<double>(got[i]) - rec[i]));
  }
  EXPECT_LE(max_err / max_ref, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Paths, CpuCompressPath,
                         ::testing::Values(cpu::TransformPath::fft, cpu::TransformPath::basis));

// KVSCOPE_CPU_DCT: each value chooses its path, unset is the automatic choice, and a value it
// does not know is an error naming the variable, the value and what is allowed (a typo once fell
// back to the automatic choice without a word).
TEST(CpuTransformPathFromEnv, ValuesAndBadValues) {
  unsetenv("KVSCOPE_CPU_DCT");
  EXPECT_EQ(cpu::transform_path_from_env(), cpu::TransformPath::automatic);
  for (const cpu::TransformPath t :
       {cpu::TransformPath::automatic, cpu::TransformPath::fft, cpu::TransformPath::basis}) {
    setenv("KVSCOPE_CPU_DCT", cpu::transform_path_name(t), 1);
    EXPECT_EQ(cpu::transform_path_from_env(), t) << cpu::transform_path_name(t);
  }
  setenv("KVSCOPE_CPU_DCT", "bassis", 1);
  try {
    cpu::transform_path_from_env();
    ADD_FAILURE() << "KVSCOPE_CPU_DCT=bassis accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "KVSCOPE_CPU_DCT=bassis: expected one of auto, fft, basis, or unset");
  }
  unsetenv("KVSCOPE_CPU_DCT");
}

// The switch as info() reports it, for the calibration profile's device block.
TEST(CpuTransformPathFromEnv, InfoReportsThePathInEffect) {
  cpu::CpuBackend b;
  cpu::set_transform_path(cpu::TransformPath::basis);
  EXPECT_EQ(b.info().switches, (std::map<std::string, std::string>{{"KVSCOPE_CPU_DCT", "basis"}}));
  cpu::set_transform_path(cpu::TransformPath::automatic);
  EXPECT_EQ(b.info().switches.at("KVSCOPE_CPU_DCT"), "auto");
}

#ifdef _OPENMP
#include <omp.h>
#endif

// The CPU backend keeps one team size for its life and reports it: a profile records the
// threads its times were measured with, and kvscope check compares them with its own.
TEST(CpuBackendThreads, OneTeamSizeReportedByInfo) {
  kvscope::kernels::cpu::CpuBackend b;
  const int64_t threads = b.info().multiprocessors;
  EXPECT_GE(threads, 1);
#ifdef _OPENMP
  EXPECT_LE(threads, omp_get_num_procs());
  int team = 0;
#pragma omp parallel
  {
#pragma omp single
    team = omp_get_num_threads();
  }
  EXPECT_EQ(team, threads);  // what a parallel region gets is what info() says
#endif
}
