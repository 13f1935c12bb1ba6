// The CUDA backend: device memory with its own accounting, CUDA-event timing, and the op
// dispatch to the kernel families (ops.h). All work goes to one stream (plus a side stream that
// single ops use to overlap independent passes); upload/download/synchronize wait for it.
#include "kernels/cuda/cuda_backend.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cufft.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/backend_factories.h"
#include "kernels/cuda/ops.h"

namespace kvscope::kernels {
namespace cuda {

void throw_cuda(cudaError_t e, const char* what, const char* file, int line) {
  throw std::runtime_error(std::string("CUDA error ") + cudaGetErrorName(e) + " (" +
                           cudaGetErrorString(e) + ") in " + what + " at " + file + ":" +
                           std::to_string(line));
}

Scratch::~Scratch() {
  for (void* p : ptr_)
    if (p) cudaFree(p);
}

void* Scratch::get(size_t bytes, int slot) {
  if (slot < 0 || slot >= kSlots) throw std::logic_error("Scratch: bad slot");
  if (bytes <= size_[slot]) return ptr_[slot];
  // Work already queued may still use the old buffer.
  KVS_CUDA(cudaDeviceSynchronize());
  if (ptr_[slot]) KVS_CUDA(cudaFree(ptr_[slot]));
  ptr_[slot] = nullptr;
  size_[slot] = 0;
  if (slot == kBasisSlot) basis = {};
  const size_t want = std::max(bytes, size_t(1) << 20);
  KVS_CUDA(cudaMalloc(&ptr_[slot], want));
  size_[slot] = want;
  return ptr_[slot];
}

size_t Scratch::bytes() const {
  size_t s = 0;
  for (size_t b : size_) s += b;
  return s;
}

void fork_side(Ctx& c) {
  KVS_CUDA(cudaEventRecord(c.fork, c.stream));
  KVS_CUDA(cudaStreamWaitEvent(c.side, c.fork, 0));
}

void join_side(Ctx& c) {
  KVS_CUDA(cudaEventRecord(c.join, c.side));
  KVS_CUDA(cudaStreamWaitEvent(c.stream, c.join, 0));
}

namespace {

class CudaBuffer final : public DeviceBuffer {
 public:
  CudaBuffer(size_t bytes, std::atomic<int64_t>& counter) : bytes_(bytes), counter_(counter) {
    if (bytes_ > 0) KVS_CUDA(cudaMalloc(&ptr_, bytes_));
    counter_ += static_cast<int64_t>(bytes_);
  }
  ~CudaBuffer() override {
    if (ptr_) cudaFree(ptr_);
    counter_ -= static_cast<int64_t>(bytes_);
  }
  CudaBuffer(const CudaBuffer&) = delete;
  CudaBuffer& operator=(const CudaBuffer&) = delete;
  void* data() override { return ptr_; }
  const void* data() const override { return ptr_; }
  size_t bytes() const override { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_;
  std::atomic<int64_t>& counter_;
};

void need_bytes(const DeviceBuffer& b, size_t bytes, const char* op, const char* what) {
  if (b.bytes() < bytes)
    throw std::invalid_argument(std::string(op) + ": buffer " + what + " holds " +
                                std::to_string(b.bytes()) + " bytes, needs " +
                                std::to_string(bytes));
}

std::string version_string(int v) {  // 12040 -> "12.4"
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaOptions& opt) {
    std::string why;
    if (cuda_device_count(&why) <= opt.device)
      throw std::runtime_error("cuda backend: no CUDA device " + std::to_string(opt.device) +
                               (why.empty() ? std::string() : ": " + why));
    KVS_CUDA(cudaSetDevice(opt.device));
    KVS_CUDA(cudaGetDeviceProperties(&prop_, opt.device));
    KVS_CUDA(cudaStreamCreateWithFlags(&ctx_.stream, cudaStreamNonBlocking));
    KVS_CUDA(cudaStreamCreateWithFlags(&ctx_.side, cudaStreamNonBlocking));
    KVS_CUDA(cudaEventCreateWithFlags(&ctx_.fork, cudaEventDisableTiming));
    KVS_CUDA(cudaEventCreateWithFlags(&ctx_.join, cudaEventDisableTiming));
    KVS_CUDA(cudaEventCreate(&t0_));
    KVS_CUDA(cudaEventCreate(&t1_));
    ctx_.sms = prop_.multiProcessorCount;
    ctx_.smem_optin = prop_.sharedMemPerBlockOptin;
    ctx_.scratch = &scratch_;
    ctx_.fft = cuda::fft_create();
    ctx_.lt = cuda::lt_create();
    ctx_.opt = opt;
    ctx_.wgmma = opt.sm90a_kernels && cuda::wgmma_available(ctx_.stream);
  }
  ~CudaBackend() override {
    cudaDeviceSynchronize();
    if (flush_) cudaFree(flush_);
    cuda::fft_destroy(ctx_.fft);
    cuda::lt_destroy(ctx_.lt);
    cudaEventDestroy(t0_);
    cudaEventDestroy(t1_);
    cudaEventDestroy(ctx_.fork);
    cudaEventDestroy(ctx_.join);
    cudaStreamDestroy(ctx_.stream);
    cudaStreamDestroy(ctx_.side);
  }

  DeviceInfo info() const override {
    DeviceInfo d;
    d.backend = "cuda";
    d.name = prop_.name;
    d.multiprocessors = prop_.multiProcessorCount;
    d.memory_bytes = static_cast<int64_t>(prop_.totalGlobalMem);
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    int fft = 0;
    cufftGetVersion(&fft);
    d.driver = "driver CUDA " + version_string(drv) + ", runtime " + version_string(rt) +
               ", cuBLASLt " + std::to_string(cublasLtGetVersion()) + ", cuFFT " +
               std::to_string(fft) + ", sm_" + std::to_string(prop_.major) +
               std::to_string(prop_.minor) + ", L2 " + std::to_string(prop_.l2CacheSize >> 20) +
               " MiB";
    d.switches = cuda_switches(ctx_.opt);
    return d;
  }

  std::unique_ptr<DeviceBuffer> alloc(size_t bytes) override {
    return std::make_unique<CudaBuffer>(bytes, allocated_);
  }
  void upload(DeviceBuffer& dst, const void* host, size_t bytes) override {
    need_bytes(dst, bytes, "upload", "dst");
    if (bytes == 0) return;
    KVS_CUDA(cudaMemcpyAsync(dst.data(), host, bytes, cudaMemcpyHostToDevice, ctx_.stream));
    KVS_CUDA(cudaStreamSynchronize(ctx_.stream));
  }
  void download(const DeviceBuffer& src, void* host, size_t bytes) override {
    need_bytes(src, bytes, "download", "src");
    if (bytes == 0) return;
    KVS_CUDA(cudaMemcpyAsync(host, src.data(), bytes, cudaMemcpyDeviceToHost, ctx_.stream));
    KVS_CUDA(cudaStreamSynchronize(ctx_.stream));
  }
  void fill(DeviceBuffer& dst, uint8_t byte) override {
    if (dst.bytes() == 0) return;
    KVS_CUDA(cudaMemsetAsync(dst.data(), byte, dst.bytes(), ctx_.stream));
  }
  void copy(const DeviceBuffer& src, DeviceBuffer& dst, size_t bytes) override {
    need_bytes(src, bytes, "copy", "src");
    need_bytes(dst, bytes, "copy", "dst");
    if (bytes == 0) return;
    KVS_CUDA(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, ctx_.stream));
  }
  void synchronize() override {
    KVS_CUDA(cudaStreamSynchronize(ctx_.side));
    KVS_CUDA(cudaStreamSynchronize(ctx_.stream));
  }
  int64_t allocated_bytes() const override { return allocated_.load(); }
  MemoryInfo device_memory() const override {
    size_t free_b = 0, total_b = 0;
    KVS_CUDA(cudaMemGetInfo(&free_b, &total_b));
    return {static_cast<int64_t>(free_b), static_cast<int64_t>(total_b)};
  }

  // Median of `reps` CUDA-event-timed runs. Before each timed run the L2 cache is overwritten
  // (outside the timed region), so memory-bound kernels are measured against HBM, as their
  // floors are, and not against data left in the 50 MB L2 by the previous run.
  double time_ms(const std::function<void()>& fn, int warmup, int reps) override {
    for (int i = 0; i < warmup; ++i) fn();
    const size_t flush_bytes = 2 * static_cast<size_t>(std::max(prop_.l2CacheSize, 1 << 20));
    if (!flush_) {
      KVS_CUDA(cudaMalloc(&flush_, flush_bytes));
      KVS_CUDA(cudaMemsetAsync(flush_, 0, flush_bytes, ctx_.stream));
    }
    void* flush = flush_;
    std::vector<float> ms;
    for (int i = 0; i < std::max(reps, 1); ++i) {
      if (ctx_.opt.l2_flush == CudaOptions::L2Flush::read)
        cuda::l2_read_pass(ctx_, flush, flush_bytes);
      else
        KVS_CUDA(cudaMemsetAsync(flush, i & 0xff, flush_bytes, ctx_.stream));
      KVS_CUDA(cudaEventRecord(t0_, ctx_.stream));
      fn();
      KVS_CUDA(cudaEventRecord(t1_, ctx_.stream));
      KVS_CUDA(cudaEventSynchronize(t1_));
      float t = 0.f;
      KVS_CUDA(cudaEventElapsedTime(&t, t0_, t1_));
      ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }

  void fourier_compress(const KvShape& s, const FourierLayout& f, const DeviceBuffer& kv,
                        FourierTensor& out) override {
    const FourierBufferBytes fb = fourier_buffer_bytes(s, f);
    need_bytes(kv, static_cast<size_t>(s.elements() * dtype_bytes(s.dtype)), "fourier_compress",
               "kv");
    need_fourier(out, fb, "fourier_compress");
    cuda::fourier_compress(ctx_, s, f, kv.data(), ptrs(out));
  }
  void fourier_reconstruct(const KvShape& s, const FourierLayout& f, const FourierTensor& in,
                           DeviceBuffer& kv) override {
    const FourierBufferBytes fb = fourier_buffer_bytes(s, f);
    need_bytes(kv, static_cast<size_t>(s.elements() * dtype_bytes(s.dtype)), "fourier_reconstruct",
               "kv");
    need_fourier(in, fb, "fourier_reconstruct");
    cuda::fourier_reconstruct(ctx_, s, f, ptrs(in), kv.data());
  }
  void fourier_attention(const AttentionArgs& a, const FourierLayout& f, const DeviceBuffer& q,
                         const FourierTensor& k, const FourierTensor& v, DeviceBuffer& o) override {
    const KvShape ks{a.batch, a.kv_heads, a.tokens, a.head_dim, a.dtype};
    const FourierBufferBytes fb = fourier_buffer_bytes(ks, f);
    need_fourier(k, fb, "fourier_attention");
    need_fourier(v, fb, "fourier_attention");
    const size_t qo =
        static_cast<size_t>(a.batch * a.q_heads * a.q_len * a.head_dim * dtype_bytes(a.dtype));
    need_bytes(q, qo, "fourier_attention", "q");
    need_bytes(o, qo, "fourier_attention", "o");
    cuda::fourier_attention(ctx_, a, f, q.data(), ptrs(k), ptrs(v), o.data());
  }
  void attention(const AttentionArgs& a, const DeviceBuffer& q, const DeviceBuffer& k,
                 const DeviceBuffer& v, DeviceBuffer& o) override {
    const size_t qo =
        static_cast<size_t>(a.batch * a.q_heads * a.q_len * a.head_dim * dtype_bytes(a.dtype));
    const size_t kv =
        static_cast<size_t>(a.batch * a.kv_heads * a.tokens * a.head_dim * dtype_bytes(a.dtype));
    need_bytes(q, qo, "attention", "q");
    need_bytes(o, qo, "attention", "o");
    need_bytes(k, kv, "attention", "k");
    need_bytes(v, kv, "attention", "v");
    cuda::attention(ctx_, a, q.data(), k.data(), v.data(), o.data());
  }
  void gemm(const GemmArgs& g, const DeviceBuffer& x, const DeviceBuffer& w,
            const DeviceBuffer* bias, DeviceBuffer& y) override {
    const auto eb = static_cast<size_t>(dtype_bytes(g.dtype));
    need_bytes(x, static_cast<size_t>(g.rows * g.in) * eb, "gemm", "x");
    need_bytes(w, static_cast<size_t>(g.out * g.in) * eb, "gemm", "w");
    need_bytes(y, static_cast<size_t>(g.rows * g.out) * eb, "gemm", "y");
    if (g.bias) {
      if (!bias) throw std::invalid_argument("gemm: bias requested but not given");
      need_bytes(*bias, static_cast<size_t>(g.out) * eb, "gemm", "bias");
    }
    cuda::gemm(ctx_, g, x.data(), w.data(), g.bias ? bias->data() : nullptr, y.data());
  }
  void cosine_rows(int64_t rows, int64_t dim, DType t, const DeviceBuffer& a, const DeviceBuffer& b,
                   DeviceBuffer& out) override {
    const auto n = static_cast<size_t>(rows * dim * dtype_bytes(t));
    need_bytes(a, n, "cosine_rows", "a");
    need_bytes(b, n, "cosine_rows", "b");
    need_bytes(out, static_cast<size_t>(rows) * 4, "cosine_rows", "out");
    cuda::cosine_rows(ctx_, rows, dim, t, a.data(), b.data(), static_cast<float*>(out.data()));
  }
  void cosine_whole(int64_t rows, int64_t dim, DType t, const DeviceBuffer& a,
                    const DeviceBuffer& b, DeviceBuffer& out) override {
    const auto n = static_cast<size_t>(rows * dim * dtype_bytes(t));
    need_bytes(a, n, "cosine_whole", "a");
    need_bytes(b, n, "cosine_whole", "b");
    need_bytes(out, 4, "cosine_whole", "out");
    cuda::cosine_whole(ctx_, rows, dim, t, a.data(), b.data(), static_cast<float*>(out.data()));
  }

  void read_probe(const DeviceBuffer& buf, size_t bytes, bool pdl) {
    need_bytes(buf, bytes, "read_probe", "buf");
    if (bytes % 16 != 0) throw std::invalid_argument("read_probe: bytes not a multiple of 16");
    cuda::read_probe(ctx_, buf.data(), bytes, pdl);
  }
  void decode_timeline(DeviceBuffer* stamps) {
    if (stamps) need_bytes(*stamps, DecodeTimeline::bytes(), "cuda_decode_timeline", "stamps");
    cuda::set_decode_timeline(ctx_, stamps ? static_cast<uint64_t*>(stamps->data()) : nullptr);
  }

 private:
  static cuda::FourierPtrs ptrs(const FourierTensor& t) {
    return {
        t.kept ? const_cast<void*>(static_cast<const DeviceBuffer&>(*t.kept).data()) : nullptr,
        t.edge ? const_cast<void*>(static_cast<const DeviceBuffer&>(*t.edge).data()) : nullptr,
        t.coeffs ? const_cast<void*>(static_cast<const DeviceBuffer&>(*t.coeffs).data()) : nullptr};
  }
  static void need_fourier(const FourierTensor& t, const FourierBufferBytes& fb, const char* op) {
    auto check = [&](const std::unique_ptr<DeviceBuffer>& b, size_t need, const char* what) {
      if (need == 0) return;
      if (!b) throw std::invalid_argument(std::string(op) + ": missing buffer " + what);
      need_bytes(*b, need, op, what);
    };
    check(t.kept, fb.kept, "kept");
    check(t.edge, fb.edge, "edge");
    check(t.coeffs, fb.coeffs, "coeffs");
  }

  cudaDeviceProp prop_{};
  cuda::Ctx ctx_;
  cuda::Scratch scratch_;
  cudaEvent_t t0_{}, t1_{};
  void* flush_ = nullptr;  // L2-sized buffer overwritten between timed runs
  std::atomic<int64_t> allocated_{0};
};

}  // namespace
}  // namespace cuda

int cuda_device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why) *why = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device found";
  return n;
}

std::unique_ptr<Backend> make_cuda_backend_with(const CudaOptions& options) {
  return std::make_unique<cuda::CudaBackend>(options);
}

void cuda_read_probe(Backend& b, const DeviceBuffer& buf, size_t bytes, bool pdl) {
  auto* cb = dynamic_cast<cuda::CudaBackend*>(&b);
  if (cb == nullptr) throw std::invalid_argument("cuda_read_probe: not a CUDA backend");
  cb->read_probe(buf, bytes, pdl);
}

bool cuda_decode_timeline_built() { return cuda::decode_timeline_built(); }

void cuda_decode_timeline(Backend& b, DeviceBuffer* stamps) {
  auto* cb = dynamic_cast<cuda::CudaBackend*>(&b);
  if (cb == nullptr) throw std::invalid_argument("cuda_decode_timeline: not a CUDA backend");
  cb->decode_timeline(stamps);
}

bool cuda_wgmma_code(int device) {
  std::string why;
  if (cuda_device_count(&why) <= device)
    throw std::runtime_error("cuda: no CUDA device " + std::to_string(device) +
                             (why.empty() ? std::string() : ": " + why));
  KVS_CUDA(cudaSetDevice(device));
  return cuda::wgmma_available(nullptr);
}

std::string cuda_unavailable_reason() {
  std::string why;
  return cuda_device_count(&why) > 0 ? std::string() : "no CUDA device: " + why;
}

namespace {

// The environment switches and their values, the default first.
constexpr const char* kFourierSwitch = "KVSCOPE_CUDA_FOURIER";
constexpr const char* kSmallGemmSwitch = "KVSCOPE_CUDA_SMALL_GEMM";
constexpr const char* kSimpleAttentionSwitch = "KVSCOPE_CUDA_SIMPLE_ATTENTION";
const char* const kFourierValues[] = {"fused", "cufft"};
const char* const kSmallGemmValues[] = {"own", "cublaslt"};
const char* const kSimpleAttentionValues[] = {"0", "1"};

// The index in `allowed` of the variable's value, 0 (the default) when unset or empty.
template <size_t N>
size_t env_choice(const char* name, const char* const (&allowed)[N]) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  std::string list;
  for (size_t i = 0; i < N; ++i) {
    if (std::string(v) == allowed[i]) return i;
    list += list.empty() ? allowed[i] : std::string(", ") + allowed[i];
  }
  throw std::invalid_argument(std::string(name) + "=" + v + ": expected one of " + list +
                              ", or unset");
}

// Switches of variants that lost their measurements and were removed (kernels/BENCHMARKS.md,
// "Retired variants"): set, they are an error rather than silently ignored.
const char* const kRetiredSwitches[] = {"KVSCOPE_CUDA_BASIS_TABLE",
                                        "KVSCOPE_CUDA_FOURIER_WGMMA",
                                        "KVSCOPE_CUDA_GEMV_PDL",
                                        "KVSCOPE_CUDA_DECODE_PDL",
                                        "KVSCOPE_CUDA_DECODE_EDGE_LAST",
                                        "KVSCOPE_CUDA_DECODE_EDGE_MMA",
                                        "KVSCOPE_CUDA_DECODE_FINISH_STAGED",
                                        "KVSCOPE_CUDA_PREFILL"};

}  // namespace

std::map<std::string, std::string> cuda_switches(const CudaOptions& o) {
  return {{kFourierSwitch, kFourierValues[o.fourier == CudaOptions::Fourier::cufft]},
          {kSmallGemmSwitch, kSmallGemmValues[o.small_gemm == CudaOptions::SmallGemm::cublaslt]},
          {kSimpleAttentionSwitch, kSimpleAttentionValues[o.simple_attention]}};
}

CudaOptions cuda_options_from_env() {
  for (const char* name : kRetiredSwitches)
    if (const char* v = std::getenv(name); v && *v)
      throw std::invalid_argument(std::string(name) + "=" + v +
                                  ": this variant was retired (kernels/BENCHMARKS.md, Retired "
                                  "variants); the switches are " +
                                  kFourierSwitch + ", " + kSmallGemmSwitch + " and " +
                                  kSimpleAttentionSwitch);
  CudaOptions o;
  if (env_choice(kFourierSwitch, kFourierValues) == 1) o.fourier = CudaOptions::Fourier::cufft;
  if (env_choice(kSmallGemmSwitch, kSmallGemmValues) == 1)
    o.small_gemm = CudaOptions::SmallGemm::cublaslt;
  o.simple_attention = env_choice(kSimpleAttentionSwitch, kSimpleAttentionValues) == 1;
  return o;
}

std::unique_ptr<Backend> make_cuda_backend() {
  return make_cuda_backend_with(cuda_options_from_env());
}

}  // namespace kvscope::kernels
