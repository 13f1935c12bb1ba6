// Every kernel operation on every backend against the float64 reference, driven by the test rows
// (case_test) of the one table of kernel shapes, kernels/cases.h. Inputs are fresh random values
// (rounded to the case's dtype, so the reference sees exactly what the backend sees); every output
// buffer is poisoned with 0xFF (NaN in f32 and bf16) first, so an element the backend forgets to
// write fails the test. Backends not available here (cuda without a GPU or built without CUDA) are
// reported skipped.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>

#include "kernels/backend.h"
#include "kernels/cases.h"
#include "kernels/convert.h"
#include "kernels/reference/reference.h"

using namespace kvscope;
using namespace kvscope::kernels;
namespace ref = kvscope::kernels::reference;

namespace kvscope::kernels {
// gtest prints parameters with this (instead of a hex dump of the struct).
void PrintTo(const KernelCase& c, std::ostream* os) { *os << c.name << " " << dtype_name(c.dtype); }
}  // namespace kvscope::kernels

namespace {

// Normalised max error: max |got - want| / max |want|. Per dtype: f32 leaves room for the
// FFT's and the f32 accumulations' rounding; bf16 for one rounding of each output (2^-9
// relative) plus the f32 work before it.
double tolerance(DType t) { return t == DType::f32 ? 2e-4 : 1.6e-2; }

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  std::vector<float> normal(size_t n, double scale = 1.0) {
    std::normal_distribution<float> d(0.0f, static_cast<float>(scale));
    std::vector<float> v(n);
    for (auto& x : v) x = d(gen_);
    return v;
  }

 private:
  std::mt19937_64 gen_;
};

ref::Vec to_double(const std::vector<float>& v) { return ref::Vec(v.begin(), v.end()); }

class BackendOps : public ::testing::TestWithParam<std::tuple<std::string, KernelCase>> {
 protected:
  void SetUp() override {
    const std::string& name = std::get<0>(GetParam());
    try {
      backend_ = make_backend(name);
    } catch (const std::exception& e) {
      GTEST_SKIP() << "backend '" << name << "' not available here: " << e.what();
    }
  }

  // Uploads v rounded to t; returns the buffer and the rounded values the backend sees.
  std::unique_ptr<DeviceBuffer> upload(DType t, const std::vector<float>& v, ref::Vec* seen) {
    const auto bytes = encode(t, v);
    auto buf = backend_->alloc(bytes.size());
    backend_->upload(*buf, bytes.data(), bytes.size());
    if (seen) *seen = to_double(decode(t, bytes));
    return buf;
  }
  std::unique_ptr<DeviceBuffer> output(size_t bytes) {
    auto buf = backend_->alloc(bytes);
    backend_->fill(*buf, 0xFF);
    return buf;
  }
  std::vector<float> read(DType t, const DeviceBuffer& buf, size_t count) {
    std::vector<std::byte> bytes(count * static_cast<size_t>(dtype_bytes(t)));
    backend_->synchronize();
    backend_->download(buf, bytes.data(), bytes.size());
    return decode(t, bytes);
  }
  void expect_close(const std::string& what, const std::vector<float>& got, const ref::Vec& want,
                    DType t) {
    ASSERT_EQ(got.size(), want.size()) << what;
    double max_err = 0, max_ref = 0;
    size_t worst = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(std::isfinite(got[i]))
          << what << "[" << i << "] = " << got[i] << " (unwritten or non-finite)";
      const double err = std::abs(static_cast<double>(got[i]) - want[i]);
      if (err > max_err) {
        max_err = err;
        worst = i;
      }
      max_ref = std::max(max_ref, std::abs(want[i]));
    }
    const double norm = max_ref > 0 ? max_err / max_ref : max_err;
    EXPECT_LE(norm, tolerance(t)) << what << ": normalised max error " << norm << " at " << worst
                                  << " (got " << (got.empty() ? 0.0f : got[worst]) << ", want "
                                  << (want.empty() ? 0.0 : want[worst]) << ")";
  }

  std::unique_ptr<Backend> backend_;
};

FourierLayout layout_of(const KernelCase& c) { return {c.dims, c.m, c.sink, c.window}; }

// A compressed tensor built from random K/V by the reference, rounded to t and uploaded.
struct UploadedFourier {
  FourierTensor dev;
  ref::Fourier64 seen;
};

TEST_P(BackendOps, MatchesFloat64Reference) {
  const KernelCase& c = std::get<1>(GetParam());
  const DType t = c.dtype;
  Rng rng(std::hash<std::string>{}(c.name) ^ (t == DType::f32 ? 1u : 2u));
  Backend& be = *backend_;
  const KvShape ks{c.batch, c.kv_heads, c.tokens, c.head_dim, t};
  const FourierLayout f = layout_of(c);
  const AttentionArgs aa{c.batch, c.q_heads, c.kv_heads, c.head_dim,
                         c.q_len, c.tokens,  c.causal,   t};
  const size_t kv_n = static_cast<size_t>(ks.elements());
  const size_t q_n = static_cast<size_t>(c.batch * c.q_heads * c.q_len * c.head_dim);

  auto upload_fourier = [&](const ref::Fourier64& from) {
    UploadedFourier u;
    u.dev.kept = upload(t, std::vector<float>(from.kept.begin(), from.kept.end()), &u.seen.kept);
    u.dev.edge = upload(t, std::vector<float>(from.edge.begin(), from.edge.end()), &u.seen.edge);
    u.dev.coeffs =
        upload(t, std::vector<float>(from.coeffs.begin(), from.coeffs.end()), &u.seen.coeffs);
    return u;
  };
  auto random_fourier = [&]() {
    return upload_fourier(ref::fourier_compress(ks, f, to_double(rng.normal(kv_n))));
  };

  switch (c.op) {
    case KernelOp::copy:
      FAIL() << c.name << ": copy rows are benchmark rows only (CopyFillAndTiming tests copy)";
    case KernelOp::compress: {
      ref::Vec kv;
      auto in = upload(t, rng.normal(kv_n), &kv);
      const FourierBufferBytes sz = fourier_buffer_bytes(ks, f);
      FourierTensor out{output(sz.kept), output(sz.edge), output(sz.coeffs)};
      be.fourier_compress(ks, f, *in, out);
      const ref::Fourier64 want = ref::fourier_compress(ks, f, kv);
      expect_close("kept", read(t, *out.kept, want.kept.size()), want.kept, t);
      expect_close("edge", read(t, *out.edge, want.edge.size()), want.edge, t);
      expect_close("coeffs", read(t, *out.coeffs, want.coeffs.size()), want.coeffs, t);
      break;
    }
    case KernelOp::reconstruct: {
      const UploadedFourier in = random_fourier();
      auto out = output(kv_n * static_cast<size_t>(dtype_bytes(t)));
      be.fourier_reconstruct(ks, f, in.dev, *out);
      expect_close("kv", read(t, *out, kv_n), ref::fourier_reconstruct(ks, f, in.seen), t);
      break;
    }
    case KernelOp::fourier_attention: {
      ref::Vec q;
      auto qd = upload(t, rng.normal(q_n, c.q_scale), &q);
      const UploadedFourier k = random_fourier(), v = random_fourier();
      auto out = output(q_n * static_cast<size_t>(dtype_bytes(t)));
      be.fourier_attention(aa, f, *qd, k.dev, v.dev, *out);
      expect_close("o", read(t, *out, q_n), ref::fourier_attention(aa, f, q, k.seen, v.seen), t);
      break;
    }
    case KernelOp::attention: {
      ref::Vec q, k, v;
      auto qd = upload(t, rng.normal(q_n, c.q_scale), &q);
      auto kd = upload(t, rng.normal(kv_n), &k);
      auto vd = upload(t, rng.normal(kv_n), &v);
      auto out = output(q_n * static_cast<size_t>(dtype_bytes(t)));
      be.attention(aa, *qd, *kd, *vd, *out);
      expect_close("o", read(t, *out, q_n), ref::attention(aa, q, k, v), t);
      break;
    }
    case KernelOp::gemm: {
      const GemmArgs g{c.rows, c.out, c.in, c.bias, t};
      ref::Vec x, w, b;
      auto xd = upload(t, rng.normal(static_cast<size_t>(c.rows * c.in)), &x);
      auto wd = upload(t, rng.normal(static_cast<size_t>(c.out * c.in), 0.1), &w);
      auto bd = upload(t, rng.normal(static_cast<size_t>(c.out)), &b);
      auto out = output(static_cast<size_t>(c.rows * c.out * dtype_bytes(t)));
      be.gemm(g, *xd, *wd, c.bias ? bd.get() : nullptr, *out);
      expect_close("y", read(t, *out, static_cast<size_t>(c.rows * c.out)),
                   ref::gemm(g, x, w, c.bias ? &b : nullptr), t);
      break;
    }
    case KernelOp::cosine_rows:
    case KernelOp::cosine_whole: {
      const size_t n = static_cast<size_t>(c.rows * c.in);
      // b = a + noise so the cosines spread over (0, 1) rather than sitting near 0.
      const std::vector<float> a = rng.normal(n);
      std::vector<float> b = rng.normal(n, 0.7);
      for (size_t i = 0; i < n; ++i) b[i] += a[i];
      ref::Vec ar, br;
      auto ad = upload(t, a, &ar);
      auto bd = upload(t, b, &br);
      if (c.op == KernelOp::cosine_rows) {
        auto out = output(static_cast<size_t>(c.rows) * sizeof(float));
        be.cosine_rows(c.rows, c.in, t, *ad, *bd, *out);
        // Results are f32 for every input type; the inputs' rounding is already in ar/br.
        expect_close("cos", read(DType::f32, *out, static_cast<size_t>(c.rows)),
                     ref::cosine_rows(c.rows, c.in, ar, br), DType::f32);
      } else {
        auto out = output(sizeof(float));
        be.cosine_whole(c.rows, c.in, t, *ad, *bd, *out);
        expect_close("cos", read(DType::f32, *out, 1), {ref::cosine_whole(c.rows, c.in, ar, br)},
                     DType::f32);
      }
      break;
    }
  }
}

std::string case_name(const ::testing::TestParamInfo<BackendOps::ParamType>& info) {
  const KernelCase& c = std::get<1>(info.param);
  return std::get<0>(info.param) + "_" + c.name + "_" + std::string(dtype_name(c.dtype));
}

INSTANTIATE_TEST_SUITE_P(Table, BackendOps,
                         ::testing::Combine(::testing::Values("cpu", "cuda"),
                                            ::testing::ValuesIn(kernel_cases(case_test))),
                         case_name);

// Round trip: with M >= L every compressed dim comes back exactly (up to rounding), on every
// backend; with M < L a smooth signal comes back close and white noise does not.
class BackendRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(BackendRoundTrip, FullSpectrumIsLossless) {
  std::unique_ptr<Backend> be;
  try {
    be = make_backend(GetParam());
  } catch (const std::exception& e) {
    GTEST_SKIP() << e.what();
  }
  const KvShape s{1, 2, 100, 8, DType::f32};
  const FourierLayout f{{0, 1, 2, 5}, 100, 4, 8};  // L = 88 <= M
  Rng rng(7);
  const auto kv = rng.normal(static_cast<size_t>(s.elements()));
  auto in = be->alloc(kv.size() * 4), back = be->alloc(kv.size() * 4);
  be->upload(*in, kv.data(), kv.size() * 4);
  FourierTensor ft = alloc_fourier_tensor(*be, s, f);
  be->fourier_compress(s, f, *in, ft);
  be->fill(*back, 0xFF);
  be->fourier_reconstruct(s, f, ft, *back);
  std::vector<float> got(kv.size());
  be->synchronize();
  be->download(*back, got.data(), got.size() * 4);
  for (size_t i = 0; i < kv.size(); ++i) ASSERT_NEAR(got[i], kv[i], 1e-4) << i;
}

TEST_P(BackendRoundTrip, MemoryAccountingReturnsToZero) {
  std::unique_ptr<Backend> be;
  try {
    be = make_backend(GetParam());
  } catch (const std::exception& e) {
    GTEST_SKIP() << e.what();
  }
  const int64_t before = be->allocated_bytes();
  {
    auto a = be->alloc(1000);
    FourierTensor t = alloc_fourier_tensor(*be, {2, 2, 100, 16, DType::bf16}, {{0, 1, 2}, 8, 4, 8});
    const FourierBufferBytes b =
        fourier_buffer_bytes({2, 2, 100, 16, DType::bf16}, {{0, 1, 2}, 8, 4, 8});
    EXPECT_EQ(b.kept, size_t{2 * 2 * 100 * 13 * 2});
    EXPECT_EQ(b.edge, size_t{2 * 2 * 12 * 3 * 2});
    EXPECT_EQ(b.coeffs, size_t{2 * 2 * 8 * 3 * 2});
    EXPECT_EQ(be->allocated_bytes() - before,
              static_cast<int64_t>(1000 + b.kept + b.edge + b.coeffs));
  }
  EXPECT_EQ(be->allocated_bytes(), before);
}

TEST_P(BackendRoundTrip, CopyFillAndTiming) {
  std::unique_ptr<Backend> be;
  try {
    be = make_backend(GetParam());
  } catch (const std::exception& e) {
    GTEST_SKIP() << e.what();
  }
  std::vector<uint8_t> host(3 << 20);
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<uint8_t>(i * 31 + 7);
  auto a = be->alloc(host.size()), b = be->alloc(host.size());
  be->upload(*a, host.data(), host.size());
  be->fill(*b, 0xAB);
  be->copy(*a, *b, host.size() - 5);
  std::vector<uint8_t> got(host.size());
  be->synchronize();
  be->download(*b, got.data(), got.size());
  for (size_t i = 0; i + 5 < host.size(); ++i) ASSERT_EQ(got[i], host[i]) << i;
  for (size_t i = host.size() - 5; i < host.size(); ++i) ASSERT_EQ(got[i], 0xAB) << i;
  const double ms = be->time_ms([&] { be->copy(*a, *b, host.size()); }, 1, 3);
  EXPECT_GT(ms, 0.0);
  EXPECT_LT(ms, 1000.0);
  const DeviceInfo d = be->info();
  EXPECT_EQ(d.backend, GetParam());
  EXPECT_FALSE(d.name.empty());
  EXPECT_GT(d.memory_bytes, 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendRoundTrip, ::testing::Values("cpu", "cuda"));

TEST(Registry, ListsCpuAndExplainsUnknownNames) {
  const auto names = available_backends();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.front(), "cpu");
  try {
    make_backend("tpu");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("tpu"), std::string::npos);
  }
}

}  // namespace
