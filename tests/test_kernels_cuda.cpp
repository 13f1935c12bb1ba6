// The CUDA backend's own paths against the float64 reference: the cross-backend table
// (test_kernels_backends.cpp) uses small head dims, so the tiled tensor-core kernels (head_dim
// 64/128, M up to 256, multi-split decode, 128-row prefill tiles) and the alternative
// implementations (cuFFT, cuBLASLt for small rows, the simple attention kernels) are checked
// here (the exact attention, GEMM and cosine in test_kernels_cuda_ops.cpp). Fresh random inputs
// each run (the seed is printed), outputs poisoned with 0xFF first. Without a CUDA device every
// test reports itself skipped.
#include "tests/kernel_cuda_testing.h"

using namespace kvscope;
using namespace kvscope::kernels;
using namespace kvscope::kernels::cuda_testing;
namespace ref = kvscope::kernels::reference;

namespace {

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

}  // namespace
