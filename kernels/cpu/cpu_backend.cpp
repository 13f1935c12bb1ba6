#include "kernels/cpu/cpu_backend.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "kernels/backend_factories.h"
#include "kernels/cpu/openmp_wait.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace kvscope::kernels {

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<cpu::CpuBackend>(); }

namespace cpu {
namespace {

// 64-byte aligned so Eigen's vectorised loads never straddle cache lines.
class HostBuffer final : public DeviceBuffer {
 public:
  HostBuffer(size_t bytes, std::shared_ptr<std::atomic<int64_t>> counter)
      : bytes_(bytes), counter_(std::move(counter)) {
    const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    data_ = std::aligned_alloc(64, rounded);
    if (!data_) throw std::bad_alloc();
    *counter_ += static_cast<int64_t>(bytes_);
  }
  ~HostBuffer() override {
    std::free(data_);
    *counter_ -= static_cast<int64_t>(bytes_);
  }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  void* data() override { return data_; }
  const void* data() const override { return data_; }
  size_t bytes() const override { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_;
  std::shared_ptr<std::atomic<int64_t>> counter_;
};

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        auto v = line.substr(colon + 1);
        v.erase(0, v.find_first_not_of(' '));
        return v;
      }
    }
  }
  return "unknown CPU";
}

}  // namespace

void require_bytes(const DeviceBuffer& buf, size_t bytes, const char* what) {
  if (buf.bytes() < bytes)
    throw std::invalid_argument(std::string(what) + ": buffer holds " +
                                std::to_string(buf.bytes()) + " bytes, needs " +
                                std::to_string(bytes));
}

void check_layout(const FourierLayout& f, int64_t head_dim) {
  if (f.m < 0 || f.sink < 0 || f.window < 0)
    throw std::invalid_argument("fourier layout: m, sink and window must be >= 0");
  for (size_t i = 0; i < f.compressed_dims.size(); ++i) {
    const int64_t d = f.compressed_dims[i];
    if (d < 0 || d >= head_dim || (i > 0 && d <= f.compressed_dims[i - 1]))
      throw std::invalid_argument("fourier layout: compressed_dims must be sorted, unique, < " +
                                  std::to_string(head_dim));
  }
}

void check_attention(const AttentionArgs& a) {
  if (a.batch < 1 || a.kv_heads < 1 || a.q_heads < 1 || a.head_dim < 1 || a.q_len < 1 ||
      a.tokens < 1)
    throw std::invalid_argument("attention: every extent must be >= 1");
  if (a.q_heads % a.kv_heads != 0)
    throw std::invalid_argument("attention: q_heads must be a multiple of kv_heads (GQA)");
  if (a.q_len > a.tokens) throw std::invalid_argument("attention: q_len must be <= tokens");
}

namespace {

// The threads a parallel region gets now.
int team_size() {
#ifdef _OPENMP
  int n = 1;
#pragma omp parallel
  {
#pragma omp single
    n = omp_get_num_threads();
  }
  return n;
#else
  return 1;
#endif
}

}  // namespace

CpuBackend::CpuBackend() : allocated_(std::make_shared<std::atomic<int64_t>>(0)) {
  transform_path();  // a bad KVSCOPE_CPU_DCT is an error here, not at the first transform
#ifdef _OPENMP
  // Use fewer threads when the machine is already busy: a team larger than the free cores
  // waits on descheduled threads at every barrier (a step of kvscope-tiny ran 2.8x slower with
  // 2 threads on 2 cores beside a compiler). The team is sized once, here, by the OpenMP
  // runtime's dynamic adjustment (libgomp: the cores less the 15-minute load average, at least
  // 1), and then kept, so that every operation of a calibration, or every step of a check, runs
  // with the same team, which info() reports (a profile records it; kvscope check warns when
  // its steps ran with another). OMP_DYNAMIC in the environment overrides this.
  if (!std::getenv("OMP_DYNAMIC")) {
    omp_set_dynamic(1);
    const int n = team_size();
    omp_set_dynamic(0);
    omp_set_num_threads(n);
  }
#endif
}

DeviceInfo CpuBackend::info() const {
  DeviceInfo d;
  d.backend = "cpu";
  d.name = cpu_model_name();
  d.multiprocessors = team_size();
  d.memory_bytes = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  d.driver = std::string("gcc ") + __VERSION__ + ", Eigen " + std::to_string(EIGEN_WORLD_VERSION) +
             "." + std::to_string(EIGEN_MAJOR_VERSION) + "." + std::to_string(EIGEN_MINOR_VERSION) +
#ifdef _OPENMP
             ", OpenMP " + std::to_string(_OPENMP) + ", idle threads " + openmp_wait_policy();
#else
             ", no OpenMP";
#endif
  d.switches = {{kTransformPathSwitch, transform_path_name(transform_path())}};
  return d;
}

std::unique_ptr<DeviceBuffer> CpuBackend::alloc(size_t bytes) {
  return std::make_unique<HostBuffer>(bytes, allocated_);
}

void CpuBackend::upload(DeviceBuffer& dst, const void* host, size_t bytes) {
  require_bytes(dst, bytes, "upload");
  if (bytes) std::memcpy(dst.data(), host, bytes);
}

void CpuBackend::download(const DeviceBuffer& src, void* host, size_t bytes) {
  require_bytes(src, bytes, "download");
  if (bytes) std::memcpy(host, src.data(), bytes);
}

void CpuBackend::fill(DeviceBuffer& dst, uint8_t byte) {
  if (dst.bytes()) std::memset(dst.data(), byte, dst.bytes());
}

void CpuBackend::copy(const DeviceBuffer& src, DeviceBuffer& dst, size_t bytes) {
  require_bytes(src, bytes, "copy source");
  require_bytes(dst, bytes, "copy destination");
  if (bytes == 0) return;
  // Split across threads: one core alone does not reach the memory bandwidth.
  const auto* s = static_cast<const char*>(src.data());
  auto* d = static_cast<char*>(dst.data());
  const int64_t chunk = int64_t{1} << 20;
  const int64_t chunks = (static_cast<int64_t>(bytes) + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (bytes >= (size_t{8} << 20))
  for (int64_t i = 0; i < chunks; ++i) {
    const int64_t off = i * chunk;
    const int64_t n = std::min<int64_t>(chunk, static_cast<int64_t>(bytes) - off);
    std::memcpy(d + off, s + off, static_cast<size_t>(n));
  }
}

double CpuBackend::time_ms(const std::function<void()>& fn, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  for (int i = 0; i < std::max(reps, 1); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + static_cast<std::ptrdiff_t>(ms.size() / 2), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace cpu
}  // namespace kvscope::kernels
