// The CPU backend: host memory, Eigen for the matrix products, Eigen's FFT module for the DCT,
// OpenMP across independent heads / row blocks (Eigen's own GEMM threads outside those loops).
// One file per operation family: fourier.cpp, attention.cpp, gemm.cpp, cosine.cpp.
#pragma once

#include <atomic>
#include <memory>

#include "kernels/backend.h"

namespace kvscope::kernels::cpu {

class CpuBackend final : public Backend {
 public:
  CpuBackend();
  DeviceInfo info() const override;

  std::unique_ptr<DeviceBuffer> alloc(size_t bytes) override;
  void upload(DeviceBuffer& dst, const void* host, size_t bytes) override;
  void download(const DeviceBuffer& src, void* host, size_t bytes) override;
  void fill(DeviceBuffer& dst, uint8_t byte) override;
  void copy(const DeviceBuffer& src, DeviceBuffer& dst, size_t bytes) override;
  void synchronize() override {}
  int64_t allocated_bytes() const override { return allocated_->load(); }
  double time_ms(const std::function<void()>& fn, int warmup, int reps) override;

  void fourier_compress(const KvShape& s, const FourierLayout& f, const DeviceBuffer& kv,
                        FourierTensor& out) override;
  void fourier_reconstruct(const KvShape& s, const FourierLayout& f, const FourierTensor& in,
                           DeviceBuffer& kv) override;
  void fourier_attention(const AttentionArgs& a, const FourierLayout& f, const DeviceBuffer& q,
                         const FourierTensor& k, const FourierTensor& v, DeviceBuffer& o) override;
  void attention(const AttentionArgs& a, const DeviceBuffer& q, const DeviceBuffer& k,
                 const DeviceBuffer& v, DeviceBuffer& o) override;
  void gemm(const GemmArgs& g, const DeviceBuffer& x, const DeviceBuffer& w,
            const DeviceBuffer* bias, DeviceBuffer& y) override;
  void cosine_rows(int64_t rows, int64_t dim, DType t, const DeviceBuffer& a, const DeviceBuffer& b,
                   DeviceBuffer& out) override;
  void cosine_whole(int64_t rows, int64_t dim, DType t, const DeviceBuffer& a,
                    const DeviceBuffer& b, DeviceBuffer& out) override;

 private:
  // Shared with every buffer so a buffer outliving the backend still accounts safely.
  std::shared_ptr<std::atomic<int64_t>> allocated_;
};

// How the Fourier operations transform between the middle tokens and the coefficients: one
// FFT-based DCT per dim or query row (dct.h; O(L log L) each, any M), or one GEMM against the
// cached DCT basis (O(M L) each at GEMM speed; wins for M well below L). automatic picks by
// estimated cost (fourier.cpp, use_basis). The initial value comes from
// KVSCOPE_CPU_DCT=auto|fft|basis (the first use of a CPU backend's Fourier operations, or its
// construction, throws std::invalid_argument for another value); tests force each path.
enum class TransformPath { automatic, fft, basis };
inline constexpr const char* kTransformPathSwitch = "KVSCOPE_CPU_DCT";
void set_transform_path(TransformPath t);
TransformPath transform_path();
// The switch's value for `t`: "auto", "fft" or "basis".
const char* transform_path_name(TransformPath t);
// KVSCOPE_CPU_DCT's path (automatic when unset or empty); throws std::invalid_argument naming
// the variable, its value and the allowed ones for any other value.
TransformPath transform_path_from_env();

// Checks that `buf` holds at least `bytes`; throws std::invalid_argument naming `what`.
void require_bytes(const DeviceBuffer& buf, size_t bytes, const char* what);
// Checks the shape of a Fourier layout against head_dim; throws std::invalid_argument.
void check_layout(const FourierLayout& f, int64_t head_dim);
// Checks GQA and lengths; throws std::invalid_argument.
void check_attention(const AttentionArgs& a);

}  // namespace kvscope::kernels::cpu
