// The CUDA backend's exact attention, GEMM, cosine and read probe against the float64
// reference, each on its production path and its reference paths (the mma.sync prefill a device
// without sm_90a runs, the simple attention kernels, cuBLASLt for small rows), and its device
// info, accounting and timing. Fresh random inputs each run (the seed is printed), outputs
// poisoned with 0xFF first. Without a CUDA device every test reports itself skipped.
#include "tests/kernel_cuda_testing.h"

using namespace kvscope;
using namespace kvscope::kernels;
using namespace kvscope::kernels::cuda_testing;
namespace ref = kvscope::kernels::reference;

namespace {

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
