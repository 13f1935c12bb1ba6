// The CUDA backend's own paths against the float64 reference: the cross-backend table
// (test_kernels_backends.cpp) uses small head dims, so the tiled tensor-core kernels (head_dim
// 64/128, M up to 256, multi-split decode, 128-row prefill tiles) and the alternative
// implementations (cuFFT, cuBLASLt for small rows, the simple attention kernels) are checked
// here. Fresh random inputs each run (the seed is printed), outputs poisoned with 0xFF first.
// Without a CUDA device every test reports itself skipped.
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

using namespace kvscope;
using namespace kvscope::kernels;
namespace ref = kvscope::kernels::reference;

namespace {

// Normalised max error |got - want|_max / |want|_max, as in test_kernels_backends.cpp; f16 has
// 3 more mantissa bits than bf16.
double tolerance(DType t) {
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

uint64_t fresh_seed() {
  static const uint64_t base = std::random_device{}();
  static uint64_t n = 0;
  return base + 0x9e3779b97f4a7c15ull * ++n;
}

std::vector<int64_t> range(int64_t lo, int64_t hi) {
  std::vector<int64_t> v;
  for (int64_t i = lo; i < hi; ++i) v.push_back(i);
  return v;
}

// The shared reference (kernels/reference) evaluates a cosine per (token, k, dim); at the head
// dims and lengths these tests need that takes minutes. These two do the same float64 sums with
// the basis tabulated once per (L, M), and the first test below checks them against the shared
// reference on a small shape.
ref::Vec basis_table(int64_t L, int64_t M) {  // [min(M, L)][L]
  const int64_t K = std::min(M, L);
  ref::Vec b(size_t(K * L));
  const double pi = 3.14159265358979323846;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < L; ++n)
      b[size_t(k * L + n)] = std::sqrt((k == 0 ? 1.0 : 2.0) / double(L)) *
                             std::cos(pi * (double(n) + 0.5) * double(k) / double(L));
  return b;
}

int64_t slot_token(const KvShape& s, const FourierLayout& f, int64_t slot) {
  if (s.tokens <= f.edge()) return slot < s.tokens ? slot : -1;
  return slot < f.sink ? slot : s.tokens - f.window + (slot - f.sink);
}

ref::Fourier64 compress64(const KvShape& s, const FourierLayout& f, const ref::Vec& kv) {
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

ref::Vec reconstruct64(const KvShape& s, const FourierLayout& f, const ref::Fourier64& in) {
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

TEST(CudaTestReference, TabulatedSumsEqualTheSharedReference) {
  std::mt19937_64 gen(5);
  std::normal_distribution<double> d;
  for (const auto& [s, f] :
       {std::pair<KvShape, FourierLayout>{{2, 2, 90, 16, DType::f32}, {{1, 3, 4, 9, 15}, 20, 2, 5}},
        {{1, 1, 10, 8, DType::f32}, {{0, 1, 2, 3}, 16, 4, 8}},
        {{1, 2, 41, 8, DType::f32}, {{2, 3, 4, 5}, 64, 4, 8}}}) {
    ref::Vec kv(size_t(s.elements()));
    for (double& x : kv) x = d(gen);
    const ref::Fourier64 a = ref::fourier_compress(s, f, kv), b = compress64(s, f, kv);
    for (const auto& [x, y] :
         {std::pair{&a.kept, &b.kept}, {&a.edge, &b.edge}, {&a.coeffs, &b.coeffs}}) {
      ASSERT_EQ(x->size(), y->size());
      for (size_t i = 0; i < x->size(); ++i) ASSERT_NEAR((*x)[i], (*y)[i], 1e-12) << i;
    }
    const ref::Vec ra = ref::fourier_reconstruct(s, f, a), rb = reconstruct64(s, f, a);
    ASSERT_EQ(ra.size(), rb.size());
    for (size_t i = 0; i < ra.size(); ++i) ASSERT_NEAR(ra[i], rb[i], 1e-12) << i;
  }
}

// The registry backend's options from the environment; needs no device.
TEST(CudaOptionsFromEnv, DefaultsSwitchesAndBadValues) {
  const char* names[] = {"KVSCOPE_CUDA_FOURIER", "KVSCOPE_CUDA_SMALL_GEMM",
                         "KVSCOPE_CUDA_SIMPLE_ATTENTION"};
  for (const char* n : names) unsetenv(n);
  const CudaOptions d = cuda_options_from_env();
  EXPECT_EQ(d.fourier, CudaOptions::Fourier::fused);
  EXPECT_EQ(d.small_gemm, CudaOptions::SmallGemm::own);
  EXPECT_FALSE(d.simple_attention);
  EXPECT_TRUE(d.sm90a_kernels);          // the device chooses: no variable sets it
  EXPECT_EQ(d.fourier_decode_skip, 0u);  // timing only: no variable sets it
  const std::map<std::string, std::string> defaults = {{"KVSCOPE_CUDA_FOURIER", "fused"},
                                                       {"KVSCOPE_CUDA_SMALL_GEMM", "own"},
                                                       {"KVSCOPE_CUDA_SIMPLE_ATTENTION", "0"}};
  EXPECT_EQ(cuda_switches(d), defaults);

  setenv("KVSCOPE_CUDA_FOURIER", "cufft", 1);
  setenv("KVSCOPE_CUDA_SMALL_GEMM", "cublaslt", 1);
  setenv("KVSCOPE_CUDA_SIMPLE_ATTENTION", "1", 1);
  const CudaOptions o = cuda_options_from_env();
  EXPECT_EQ(o.fourier, CudaOptions::Fourier::cufft);
  EXPECT_EQ(o.small_gemm, CudaOptions::SmallGemm::cublaslt);
  EXPECT_TRUE(o.simple_attention);
  EXPECT_EQ(o.fourier_decode_skip, 0u);
  const std::map<std::string, std::string> set = {{"KVSCOPE_CUDA_FOURIER", "cufft"},
                                                  {"KVSCOPE_CUDA_SMALL_GEMM", "cublaslt"},
                                                  {"KVSCOPE_CUDA_SIMPLE_ATTENTION", "1"}};
  EXPECT_EQ(cuda_switches(o), set);
  // The defaults' names are accepted too.
  setenv("KVSCOPE_CUDA_FOURIER", "fused", 1);
  setenv("KVSCOPE_CUDA_SMALL_GEMM", "own", 1);
  setenv("KVSCOPE_CUDA_SIMPLE_ATTENTION", "0", 1);
  EXPECT_EQ(cuda_switches(cuda_options_from_env()), defaults);

  // A value it does not know is an error naming the variable, the value and what is allowed,
  // not a silent default.
  setenv("KVSCOPE_CUDA_SMALL_GEMM", "yes", 1);
  try {
    cuda_options_from_env();
    ADD_FAILURE() << "KVSCOPE_CUDA_SMALL_GEMM=yes accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "KVSCOPE_CUDA_SMALL_GEMM=yes: expected one of own, cublaslt, or unset");
  }
  unsetenv("KVSCOPE_CUDA_SMALL_GEMM");
  // The retired variants' values and variables are errors too, not silently the default.
  for (const char* value : {"twopass", "onepass"}) {
    setenv("KVSCOPE_CUDA_FOURIER", value, 1);
    EXPECT_THROW(cuda_options_from_env(), std::invalid_argument) << value;
  }
  unsetenv("KVSCOPE_CUDA_FOURIER");
  for (const char* value : {"bulk", "tile"}) {
    setenv("KVSCOPE_CUDA_SMALL_GEMM", value, 1);
    EXPECT_THROW(cuda_options_from_env(), std::invalid_argument) << value;
  }
  unsetenv("KVSCOPE_CUDA_SMALL_GEMM");
  setenv("KVSCOPE_CUDA_SIMPLE_ATTENTION", "on", 1);
  EXPECT_THROW(cuda_options_from_env(), std::invalid_argument);
  unsetenv("KVSCOPE_CUDA_SIMPLE_ATTENTION");
  for (const char* n :
       {"KVSCOPE_CUDA_BASIS_TABLE", "KVSCOPE_CUDA_FOURIER_WGMMA", "KVSCOPE_CUDA_GEMV_PDL",
        "KVSCOPE_CUDA_DECODE_PDL", "KVSCOPE_CUDA_DECODE_EDGE_LAST", "KVSCOPE_CUDA_DECODE_EDGE_MMA",
        "KVSCOPE_CUDA_DECODE_FINISH_STAGED", "KVSCOPE_CUDA_PREFILL"}) {
    setenv(n, "0", 1);
    try {
      cuda_options_from_env();
      ADD_FAILURE() << n << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string(n) + "=0: this variant was retired"),
                std::string::npos)
          << e.what();
    }
    unsetenv(n);
  }
  EXPECT_EQ(cuda_switches(cuda_options_from_env()), defaults);
}

// One implementation a test runs, by name.
struct NamedOptions {
  const char* name;
  CudaOptions options;
};

// The options of what a device without sm_90a runs (the mma.sync transforms and prefill).
CudaOptions without_sm90a() {
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

const DType kTypes[] = {DType::bf16, DType::f16, DType::f32};

struct FourierCase {
  KvShape s;
  FourierLayout f;
};

std::vector<FourierCase> compress_cases(DType t) {
  return {
      // the layout at test size: lower half of 128 dims, M = 256, several splits
      {{2, 2, 3000, 128, t}, {range(0, 64), 256, 4, 64}},
      // odd middle length (its centre token pairs with itself), upper dims, M < 128
      {{1, 3, 1001, 128, t}, {range(64, 128), 100, 4, 64}},
      // every dim compressed (no kept part), no sink
      {{1, 4, 2000, 64, t}, {range(0, 64), 256, 0, 16}},
      // scattered dims (element-wise path), M > L
      {{1, 2, 300, 64, t}, {{1, 2, 3, 9, 17, 40, 63}, 512, 4, 8}},
      // few compressed dims: most of a one-pass kept copy runs after the transform's loop
      {{1, 2, 2000, 128, t}, {range(0, 8), 64, 4, 16}},
      // more coefficients than a warpgroup block holds (two k tiles), an odd middle, splits
      {{1, 3, 5001, 128, t}, {range(32, 96), 300, 4, 64}},
      // coefficient rows of whole 16-byte groups but dims not on a group boundary (element-wise
      // output), M > L with a partial last k step
      {{1, 2, 300, 64, t}, {range(1, 9), 512, 4, 8}},
      // one column tile and more n tiles than SMs: each block of the reconstruction with
      // resident coefficients walks several n tiles
      {{1, 2, 30000, 128, t}, {range(0, 64), 200, 4, 64}},
  };
}

// The transforms' implementations: the production path (the kept copy in the transform kernels
// where it has one to do, the basis from a table where it fits, warpgroup MMA where the device
// and build have it; float's reconstruction with the kept copy on the side stream and its basis
// generated in the kernels), the mma.sync kernels a device without sm_90a runs, and cuFFT.
std::vector<NamedOptions> fourier_impls() {
  CudaOptions cufft;
  cufft.fourier = CudaOptions::Fourier::cufft;
  return {{"fused ", {}}, {"fused, mma.sync (no sm_90a) ", without_sm90a()}, {"cufft ", cufft}};
}

TEST_F(Cuda, CompressMatchesReferenceEveryPath) {
  const std::vector<NamedOptions> impls = fourier_impls();
  std::vector<std::unique_ptr<Backend>> backends;
  for (const NamedOptions& impl : impls) backends.push_back(make(impl.options));
  for (const DType t : kTypes)
    for (const FourierCase& c : compress_cases(t)) {
      const std::vector<float> x = round_through(t, normal(size_t(c.s.elements())));
      const ref::Fourier64 want = compress64(c.s, c.f, ref::Vec(x.begin(), x.end()));
      for (size_t impl = 0; impl < impls.size(); ++impl) {
        Backend& b = *backends[impl];
        SCOPED_TRACE(std::string(impls[impl].name) + std::string(dtype_name(t)) + " tokens " +
                     std::to_string(c.s.tokens));
        auto in = upload(b, t, x, nullptr);
        const FourierBufferBytes n = fourier_buffer_bytes(c.s, c.f);
        FourierTensor out{poisoned(b, n.kept), poisoned(b, n.edge), poisoned(b, n.coeffs)};
        b.fourier_compress(c.s, c.f, *in, out);
        expect_close("kept", read(b, t, *out.kept, want.kept.size()), want.kept, 0.0);
        expect_close("edge", read(b, t, *out.edge, want.edge.size()), want.edge, 0.0);
        expect_close("coeffs", read(b, t, *out.coeffs, want.coeffs.size()), want.coeffs,
                     tolerance(t));
      }
    }
}

TEST_F(Cuda, ReconstructMatchesReferenceEveryPath) {
  const std::vector<NamedOptions> impls = fourier_impls();
  std::vector<std::unique_ptr<Backend>> backends;
  for (const NamedOptions& impl : impls) backends.push_back(make(impl.options));
  for (const DType t : kTypes)
    for (const FourierCase& c : compress_cases(t)) {
      FourierTensor dev;
      const ref::Fourier64 used = upload_fourier(*backends[0], t, random_fourier(c.s, c.f), dev);
      const ref::Vec want = reconstruct64(c.s, c.f, used);
      for (size_t impl = 0; impl < impls.size(); ++impl) {
        Backend& b = *backends[impl];
        SCOPED_TRACE(std::string(impls[impl].name) + std::string(dtype_name(t)) + " tokens " +
                     std::to_string(c.s.tokens));
        FourierTensor in;
        upload_fourier(b, t, used, in);
        auto out = poisoned(b, size_t(c.s.elements() * dtype_bytes(t)));
        b.fourier_reconstruct(c.s, c.f, in, *out);
        expect_close("kv", read(b, t, *out, size_t(c.s.elements())), want, tolerance(t));
      }
    }
}

struct AttnCase {
  AttentionArgs a;
  FourierLayout f;
  double q_scale = 1.0;
};

std::vector<AttnCase> fourier_attention_cases(DType t) {
  const auto lower = [](int64_t c) { return range(0, c); };
  return {
      // decode, GQA 4, several splits per head, M = 256
      {{2, 8, 2, 128, 1, 3000, true, t}, {lower(64), 256, 4, 64}},
      // decode with 2 queries per head (8 query columns), M <= 128 path, peaky softmax
      {{1, 8, 2, 128, 2, 2500, true, t}, {range(64, 128), 96, 4, 64}, 3.0},
      // head_dim 64, scattered compressed dims, L < M
      {{2, 4, 4, 64, 1, 150, true, t},
       {{0,  3,  4,  5,  10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 40, 41,
         42, 43, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63},
        256,
        4,
        64}},
      // 9 KV heads: the second block of 8 heads has one; L not a multiple of the tile, M not a
      // multiple of 16
      {{3, 12, 3, 128, 1, 2001, true, t}, {lower(64), 200, 4, 64}},
      // batch 1, 2 queries per head in 4 columns (two heads per column set), no sink
      {{1, 4, 2, 128, 2, 1500, true, t}, {lower(64), 128, 0, 16}},
      // GQA 8 (one head per column set), head_dim 64, no window
      {{1, 16, 2, 64, 1, 777, true, t}, {lower(32), 100, 4, 0}},
      // 2 queries per head in 8 columns, no window, odd middle: the middle's last token (a
      // mirrored row) is visible to the second query only, and one token is its own mirror
      {{1, 8, 2, 128, 2, 999, true, t}, {lower(64), 256, 4, 0}},
      // a window longer than one edge chunk; a middle shorter than M
      {{1, 8, 2, 128, 1, 1200, true, t}, {lower(64), 64, 8, 300}},
      // a window of more chunks than the edge has blocks per head: several chunks per block,
      // the last one partial
      {{1, 8, 2, 128, 1, 1500, true, t}, {lower(64), 64, 4, 1100}},
      {{2, 8, 2, 128, 1, 73, true, t}, {lower(64), 256, 4, 64}},
      // no middle at all (tokens <= sink + window)
      {{1, 4, 1, 128, 1, 60, true, t}, {lower(64), 64, 4, 64}},
      // prefill, causal, GQA 2 (tiles assembled in shared memory)
      {{1, 4, 2, 128, 700, 700, true, t}, {lower(64), 128, 4, 64}},
      // chunked prefill: the last 200 of 900 positions
      {{1, 2, 1, 64, 200, 900, true, t}, {lower(32), 256, 4, 64}},
      // non-causal
      {{1, 2, 2, 128, 150, 400, false, t}, {lower(64), 64, 4, 64}},
  };
}

// The tiled kernels as one chain of programmatic launches (the sink and window after the middle
// kernel where its grid leaves SMs free, as in every decode case here on a 132-SM H200, on the
// tensor cores; the staged finish; the sink and window first where the middle grid fills the
// device, FourierDecodeChainReadsEachPreviousOutput), and the simple kernels.
TEST_F(Cuda, FourierAttentionMatchesReference) {
  CudaOptions simple_options;
  simple_options.simple_attention = true;
  for (const NamedOptions& impl :
       {NamedOptions{"fast ", CudaOptions{}}, NamedOptions{"simple ", simple_options}}) {
    const bool simple = impl.options.simple_attention;
    auto b = make(impl.options);
    for (const DType t : kTypes)
      for (const AttnCase& c : fourier_attention_cases(t)) {
        const AttentionArgs& a = c.a;
        if (simple && a.q_len > 1 && a.tokens > 500) continue;  // the simple kernel is slow
        SCOPED_TRACE(std::string(impl.name) + std::string(dtype_name(t)) + " q_len " +
                     std::to_string(a.q_len) + " tokens " + std::to_string(a.tokens));
        const KvShape ks{a.batch, a.kv_heads, a.tokens, a.head_dim, t};
        const size_t qn = size_t(a.batch * a.q_heads * a.q_len * a.head_dim);
        ref::Vec q;
        auto qd = upload(*b, t, normal(qn, c.q_scale), &q);
        FourierTensor k, v;
        const ref::Fourier64 ks64 = upload_fourier(*b, t, random_fourier(ks, c.f), k);
        const ref::Fourier64 vs64 = upload_fourier(*b, t, random_fourier(ks, c.f), v);
        auto out = poisoned(*b, qn * size_t(dtype_bytes(t)));
        b->fourier_attention(a, c.f, *qd, k, v, *out);
        // = ref::fourier_attention: exact attention over the reconstruction.
        expect_close(
            "o", read(*b, t, *out, qn),
            ref::attention(a, q, reconstruct64(ks, c.f, ks64), reconstruct64(ks, c.f, vs64)),
            tolerance(t));
      }
  }
}

// Decode steps back to back with no synchronization, each one's query the previous one's
// output (poisoned until written), over the same cache: under programmatic dependent launch each
// kernel of a step starts before the one before it has finished, and the steps share their
// scratch buffers, so a read before griddepcontrol.wait, or a record overwritten while the
// previous step still reads it, shows up as a wrong output.
TEST_F(Cuda, FourierDecodeChainReadsEachPreviousOutput) {
  {
    auto b = make();
    const DType t = DType::bf16;
    // batch 2, GQA 4: a few splits per head (92 middle blocks: on a 132-SM device the edge
    // kernel runs last), and a batch-1-like many-split case that fills the device (the edge
    // kernel first), both finished by two launches; batch 5 x 8 KV heads: 5 groups of 8 heads,
    // 26 middle splits each on a 132-SM device, so one launch finishes (as at the issue's
    // batch 8)
    for (const AttnCase& c :
         {AttnCase{{2, 8, 2, 128, 1, 3000, true, t}, {range(0, 64), 256, 4, 64}},
          AttnCase{{1, 8, 2, 128, 1, 20000, true, t}, {range(0, 64), 128, 4, 64}},
          AttnCase{{5, 32, 8, 128, 1, 2048, true, t}, {range(0, 64), 128, 4, 64}}}) {
      const AttentionArgs& a = c.a;
      SCOPED_TRACE("tokens " + std::to_string(a.tokens));
      const KvShape ks{a.batch, a.kv_heads, a.tokens, a.head_dim, t};
      const size_t qn = size_t(a.batch * a.q_heads * a.q_len * a.head_dim);
      FourierTensor k, v;
      const ref::Fourier64 ks64 = upload_fourier(*b, t, random_fourier(ks, c.f), k);
      const ref::Fourier64 vs64 = upload_fourier(*b, t, random_fourier(ks, c.f), v);
      const ref::Vec kr = reconstruct64(ks, c.f, ks64), vr = reconstruct64(ks, c.f, vs64);
      constexpr int kSteps = 4;
      ref::Vec q0;
      auto qd = upload(*b, t, normal(qn), &q0);
      std::vector<std::unique_ptr<DeviceBuffer>> outs;
      for (int i = 0; i < kSteps; ++i) outs.push_back(poisoned(*b, qn * size_t(dtype_bytes(t))));
      for (int i = 0; i < kSteps; ++i)
        b->fourier_attention(a, c.f, i == 0 ? *qd : *outs[size_t(i - 1)], k, v, *outs[size_t(i)]);
      // Each step against the reference on the device's own previous output.
      ref::Vec q = q0;
      for (int i = 0; i < kSteps; ++i) {
        SCOPED_TRACE("step " + std::to_string(i));
        const std::vector<float> got = read(*b, t, *outs[size_t(i)], qn);
        expect_close("o", got, ref::attention(a, q, kr, vr), tolerance(t));
        q.assign(got.begin(), got.end());
      }
    }
  }
}

// kvscope-decode-timeline's stamps, in a build with KVSCOPE_CUDA_TIMELINE (skipped elsewhere):
// each kernel of the decode's chain stamps a run of blocks from block 0, each block's start
// before its end; the finish's wait returns after every middle and sink-and-window block has
// ended (griddepcontrol.wait); the stamped decode's output is the unstamped one's, bit for bit;
// and once turned off, a decode writes no stamps.
TEST_F(Cuda, DecodeTimelineStampsEveryBlockAndChangesNothing) {
  if (!cuda_decode_timeline_built()) GTEST_SKIP() << "a build without KVSCOPE_CUDA_TIMELINE";
  auto b = make();
  const DType t = DType::bf16;
  // 92 middle blocks: on a 132-SM device the sink and window kernel runs last, after a wait.
  const AttentionArgs a{2, 8, 2, 128, 1, 3000, true, t};
  const FourierLayout f{range(0, 64), 256, 4, 64};
  const KvShape ks{a.batch, a.kv_heads, a.tokens, a.head_dim, t};
  const size_t qn = size_t(a.batch * a.q_heads * a.q_len * a.head_dim);
  const size_t ob = qn * size_t(dtype_bytes(t));
  auto qd = upload(*b, t, normal(qn), nullptr);
  FourierTensor k, v;
  upload_fourier(*b, t, random_fourier(ks, f), k);
  upload_fourier(*b, t, random_fourier(ks, f), v);
  auto plain = poisoned(*b, ob), stamped = poisoned(*b, ob);
  auto stamps = b->alloc(DecodeTimeline::bytes());
  b->fill(*stamps, 0);
  b->fourier_attention(a, f, *qd, k, v, *plain);
  cuda_decode_timeline(*b, stamps.get());
  b->fourier_attention(a, f, *qd, k, v, *stamped);
  cuda_decode_timeline(*b, nullptr);
  b->synchronize();
  std::vector<std::byte> o1(ob), o2(ob);
  b->download(*plain, o1.data(), ob);
  b->download(*stamped, o2.data(), ob);
  EXPECT_TRUE(o1 == o2) << "the stamps changed the output";

  std::vector<uint64_t> st(DecodeTimeline::bytes() / 8);
  b->download(*stamps, st.data(), DecodeTimeline::bytes());
  auto rec = [&](int kernel, int64_t block) {
    return &st[size_t((kernel * DecodeTimeline::kBlocks + block) * DecodeTimeline::kFields)];
  };
  uint64_t producers_end = 0;  // the last end of a middle or sink-and-window block
  // 95 splits per head: the finish takes two launches, the second stamped as `apply`.
  for (const int kernel : {DecodeTimeline::p, DecodeTimeline::middle, DecodeTimeline::edge,
                           DecodeTimeline::finish, DecodeTimeline::apply}) {
    SCOPED_TRACE("kernel " + std::to_string(kernel));
    int64_t n = 0;
    while (n < DecodeTimeline::kBlocks && rec(kernel, n)[DecodeTimeline::start] != 0) ++n;
    EXPECT_GT(n, 0);
    for (int64_t blk = 0; blk < DecodeTimeline::kBlocks; ++blk) {
      const uint64_t* r = rec(kernel, blk);
      if (blk >= n) {
        ASSERT_EQ(r[DecodeTimeline::start], 0u) << "block " << blk << " stamped after a gap";
        continue;
      }
      ASSERT_NE(r[DecodeTimeline::end], 0u) << "block " << blk;
      EXPECT_LE(r[DecodeTimeline::start], r[DecodeTimeline::end]) << "block " << blk;
      if (r[DecodeTimeline::waited] != 0) {
        EXPECT_LE(r[DecodeTimeline::start], r[DecodeTimeline::waited]) << "block " << blk;
      }
      const bool finishing = kernel == DecodeTimeline::finish || kernel == DecodeTimeline::apply;
      if (kernel == DecodeTimeline::middle || finishing) {
        EXPECT_NE(r[DecodeTimeline::waited], 0u) << "block " << blk << " has no wait stamp";
      }
      if (kernel == DecodeTimeline::middle || kernel == DecodeTimeline::edge)
        producers_end = std::max(producers_end, r[DecodeTimeline::end]);
      if (finishing) {
        EXPECT_GE(r[DecodeTimeline::waited], producers_end)
            << "finish block " << blk << " passed its wait before a record was written";
      }
    }
  }

  b->fill(*stamps, 0);
  b->fourier_attention(a, f, *qd, k, v, *stamped);
  b->synchronize();
  b->download(*stamps, st.data(), DecodeTimeline::bytes());
  EXPECT_TRUE(std::all_of(st.begin(), st.end(), [](uint64_t x) { return x == 0; }))
      << "stamps written after they were turned off";
}

std::vector<AttentionArgs> attention_cases(DType t) {
  return {
      {2, 8, 2, 128, 1, 3000, true, t},    // decode, GQA 4, split-K
      {1, 16, 2, 128, 1, 777, true, t},    // GQA 8: 8 query columns
      {1, 8, 4, 64, 2, 1500, true, t},     // 2 queries per head, head_dim 64
      {1, 4, 2, 128, 700, 700, true, t},   // prefill causal
      {2, 8, 2, 128, 300, 1000, true, t},  // chunk at an unaligned position, GQA 4, 128 dims
      {1, 2, 1, 128, 129, 129, true, t},   // one row past a 128-row tile
      {2, 2, 1, 64, 130, 600, true, t},    // chunked prefill
      {1, 2, 2, 128, 257, 257, false, t},  // non-causal
      {1, 4, 4, 96, 100, 100, true, t},    // head_dim 96: simple kernel
  };
}

TEST_F(Cuda, AttentionMatchesReference) {
  // On a compute-capability 9.0 device the default build must carry the wgmma prefill kernel;
  // otherwise the first two passes below would both run the mma.sync one.
  cudaDeviceProp prop{};
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  if (prop.major == 9 && prop.minor == 0) {
    EXPECT_TRUE(cuda_wgmma_code(0)) << "no sm_90a code in this build (CMAKE_CUDA_ARCHITECTURES)";
  }
  CudaOptions simple_options;
  simple_options.simple_attention = true;
  for (const NamedOptions& impl :
       {NamedOptions{"fast ", CudaOptions{}},
        NamedOptions{"fast, mma.sync prefill (no sm_90a) ", without_sm90a()},
        NamedOptions{"simple ", simple_options}}) {
    auto b = make(impl.options);
    for (const DType t : kTypes)
      for (const AttentionArgs& a : attention_cases(t)) {
        SCOPED_TRACE(std::string(impl.name) + std::string(dtype_name(t)) + " q_len " +
                     std::to_string(a.q_len) + " head_dim " + std::to_string(a.head_dim));
        const size_t qn = size_t(a.batch * a.q_heads * a.q_len * a.head_dim);
        const size_t kvn = size_t(a.batch * a.kv_heads * a.tokens * a.head_dim);
        ref::Vec q, k, v;
        auto qd = upload(*b, t, normal(qn), &q);
        auto kd = upload(*b, t, normal(kvn), &k);
        auto vd = upload(*b, t, normal(kvn), &v);
        auto out = poisoned(*b, qn * size_t(dtype_bytes(t)));
        b->attention(a, *qd, *kd, *vd, *out);
        expect_close("o", read(*b, t, *out, qn), ref::attention(a, q, k, v), tolerance(t));
      }
  }
}

TEST_F(Cuda, GemmMatchesReferenceBothSmallRowPaths) {
  // kvscope's kernels (the one-row kernel at rows 1, the tile kernel at 2..16), then cuBLASLt.
  CudaOptions lt;
  lt.small_gemm = CudaOptions::SmallGemm::cublaslt;
  for (const NamedOptions& impl :
       {NamedOptions{"own ", CudaOptions{}}, NamedOptions{"cublaslt ", lt}}) {
    auto b = make(impl.options);
    // in = 4256: one full group of chunks per warp, then a partial one chunk by chunk; in = 96:
    // warps without chunks; in = 10272 and 75 features: a last block of 11 (tile). Rows 1 (the
    // one-row kernel under own): in = 4096 one full round of a warp's loads; 10272 two rounds
    // and a partial third, 75 features a last block of 3; in = 96 lanes without vectors; no bias.
    for (const DType t : kTypes)
      for (const GemmArgs g0 :
           {GemmArgs{1, 2048, 4096, true}, GemmArgs{1, 75, 10272, true}, GemmArgs{1, 300, 96, true},
            GemmArgs{1, 64, 4096, false}, GemmArgs{3, 300, 512, true},
            GemmArgs{16, 256, 4096, false}, GemmArgs{9, 1000, 96, true},
            GemmArgs{5, 200, 4256, true}, GemmArgs{2, 75, 10272, true},
            GemmArgs{17, 256, 1024, true}, GemmArgs{500, 384, 256, true}}) {
        GemmArgs g = g0;
        g.dtype = t;
        SCOPED_TRACE(std::string(impl.name) + std::string(dtype_name(t)) + " rows " +
                     std::to_string(g.rows) + " out " + std::to_string(g.out) + " in " +
                     std::to_string(g.in));
        ref::Vec x, w, bias;
        auto xd = upload(*b, t, normal(size_t(g.rows * g.in)), &x);
        auto wd = upload(*b, t, normal(size_t(g.out * g.in), 0.05), &w);
        auto bd = upload(*b, t, normal(size_t(g.out)), &bias);
        auto y = poisoned(*b, size_t(g.rows * g.out * dtype_bytes(t)));
        b->gemm(g, *xd, *wd, g.bias ? bd.get() : nullptr, *y);
        expect_close("y", read(*b, t, *y, size_t(g.rows * g.out)),
                     ref::gemm(g, x, w, g.bias ? &bias : nullptr), tolerance(t));
      }
  }
}

// Each GEMV reads the previous one's output, launched back to back with no synchronization:
// with programmatic dependent launch a kernel starts before the previous one has finished, so
// a read of X before griddepcontrol.wait would see the poisoned buffer.
TEST_F(Cuda, GemvChainReadsEachPreviousOutput) {
  // rows 1 for the one-row kernel, rows 2 for the tile kernel.
  {
    auto b = make();
    for (const int64_t rows : {1, 2})
      for (const DType t : {DType::bf16, DType::f16}) {
        SCOPED_TRACE(std::string(dtype_name(t)) + " rows " + std::to_string(rows));
        const GemmArgs g{rows, 1024, 1024, true, t};
        constexpr int kLinks = 6;
        ref::Vec x0;
        auto xd = upload(*b, t, normal(size_t(g.rows * g.in)), &x0);
        std::vector<ref::Vec> w(kLinks), bias(kLinks);
        std::vector<std::unique_ptr<DeviceBuffer>> wd, bd, yd;
        for (int i = 0; i < kLinks; ++i) {
          wd.push_back(upload(*b, t, normal(size_t(g.out * g.in), 0.03), &w[size_t(i)]));
          bd.push_back(upload(*b, t, normal(size_t(g.out), 0.1), &bias[size_t(i)]));
          yd.push_back(poisoned(*b, size_t(g.rows * g.out * dtype_bytes(t))));
        }
        for (int i = 0; i < kLinks; ++i)
          b->gemm(g, i == 0 ? *xd : *yd[size_t(i - 1)], *wd[size_t(i)], bd[size_t(i)].get(),
                  *yd[size_t(i)]);
        // Each link against the reference applied to the device's own previous output, so
        // rounding does not compound along the chain.
        ref::Vec in = x0;
        for (int i = 0; i < kLinks; ++i) {
          SCOPED_TRACE("link " + std::to_string(i));
          const std::vector<float> y = read(*b, t, *yd[size_t(i)], size_t(g.rows * g.out));
          expect_close("y", y, ref::gemm(g, in, w[size_t(i)], &bias[size_t(i)]), tolerance(t));
          in.assign(y.begin(), y.end());
        }
      }
  }
}

TEST_F(Cuda, CosineMatchesReferenceIncludingZeroRows) {
  auto b = make();
  for (const DType t : kTypes)
    for (const auto& [rows, dim] : {std::pair<int64_t, int64_t>{1000, 2048}, {37, 333}, {5, 8}}) {
      SCOPED_TRACE(std::string(dtype_name(t)) + " " + std::to_string(rows) + "x" +
                   std::to_string(dim));
      auto a = normal(size_t(rows * dim)), c = normal(size_t(rows * dim), 0.5);
      for (size_t i = 0; i < a.size(); ++i) c[i] += a[i];
      for (int64_t d = 0; d < dim; ++d) a[size_t(d)] = 0.f;  // row 0 of a is zero: cosine 0
      ref::Vec ar, cr;
      auto ad = upload(*b, t, a, &ar), cd = upload(*b, t, c, &cr);
      auto rows_out = poisoned(*b, size_t(rows) * 4), whole = poisoned(*b, 4);
      b->cosine_rows(rows, dim, t, *ad, *cd, *rows_out);
      b->cosine_whole(rows, dim, t, *ad, *cd, *whole);
      expect_close("rows", read(*b, DType::f32, *rows_out, size_t(rows)),
                   ref::cosine_rows(rows, dim, ar, cr), 1e-5);
      expect_close("whole", read(*b, DType::f32, *whole, 1), {ref::cosine_whole(rows, dim, ar, cr)},
                   1e-5);
    }
}

// The benchmarks' read probe refuses what it cannot measure, by name, before it launches.
TEST(CudaReadProbe, RejectsAnotherBackend) {
  auto cpu = make_cpu_backend();
  auto buf = cpu->alloc(64);
  try {
    cuda_read_probe(*cpu, *buf, 64, true);
    ADD_FAILURE() << "a CPU backend accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "cuda_read_probe: not a CUDA backend");
  }
}

TEST_F(Cuda, ReadProbeRejectsBadSizesAndReads) {
  auto b = make();
  auto buf = b->alloc(1 << 20);
  EXPECT_THROW(cuda_read_probe(*b, *buf, (1 << 20) + 16, true), std::invalid_argument);
  try {
    cuda_read_probe(*b, *buf, 1000, false);
    ADD_FAILURE() << "1000 bytes accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "read_probe: bytes not a multiple of 16");
  }
  for (const bool pdl : {true, false}) cuda_read_probe(*b, *buf, 1 << 20, pdl);
  EXPECT_NO_THROW(b->synchronize());
}

TEST_F(Cuda, DeviceInfoAccountingAndTiming) {
  auto b = make();
  const DeviceInfo d = b->info();
  EXPECT_EQ(d.backend, "cuda");
  EXPECT_FALSE(d.name.empty());
  EXPECT_GT(d.multiprocessors, 0);
  EXPECT_GT(d.memory_bytes, int64_t{1} << 30);
  EXPECT_NE(d.driver.find("driver CUDA"), std::string::npos) << d.driver;
  // The switches in effect, as the calibration profile's device block records them.
  EXPECT_EQ(d.switches, cuda_switches(CudaOptions{}));
  CudaOptions lt;
  lt.small_gemm = CudaOptions::SmallGemm::cublaslt;
  EXPECT_EQ(make(lt)->info().switches.at("KVSCOPE_CUDA_SMALL_GEMM"), "cublaslt");
  const int64_t before = b->allocated_bytes();
  {
    auto x = b->alloc(1000), y = b->alloc(1 << 20), z = b->alloc(0);
    EXPECT_EQ(b->allocated_bytes() - before, 1000 + (1 << 20));
    EXPECT_EQ(z->bytes(), 0u);
    // Scratch used by an op is not the caller's allocation.
    std::vector<float> h(256, 1.f);
    auto a = b->alloc(1024), c = b->alloc(1024), o = b->alloc(4);
    b->upload(*a, h.data(), 1024);
    b->upload(*c, h.data(), 1024);
    b->cosine_whole(1, 256, DType::f32, *a, *c, *o);
    EXPECT_EQ(b->allocated_bytes() - before, 1000 + (1 << 20) + 2048 + 4);
    // time_ms: a 256 MiB copy takes a measurable, plausible time.
    auto s = b->alloc(256u << 20), t = b->alloc(256u << 20);
    const double ms = b->time_ms([&] { b->copy(*s, *t, 256u << 20); }, 1, 5);
    EXPECT_GT(ms, 0.01);
    EXPECT_LT(ms, 1000.0);
  }
  EXPECT_EQ(b->allocated_bytes(), before);
  {  // the same with the read-pass L2 flush; the copy still lands
    CudaOptions o;
    o.l2_flush = CudaOptions::L2Flush::read;
    auto r = make(o);
    std::vector<float> h(1 << 20), back(1 << 20);
    for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<float>(i);
    auto s = r->alloc(4u << 20), t = r->alloc(4u << 20);
    r->upload(*s, h.data(), 4u << 20);
    const double ms = r->time_ms([&] { r->copy(*s, *t, 4u << 20); }, 1, 3);
    EXPECT_GT(ms, 0.0);
    EXPECT_LT(ms, 1000.0);
    r->download(*t, back.data(), 4u << 20);
    EXPECT_EQ(back, h);
  }
  EXPECT_THROW(make(CudaOptions{.device = 1 << 20}), std::runtime_error);
}

}  // namespace
