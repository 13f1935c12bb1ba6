// The kernel backend interface: one set of operations, implemented on the CPU (Eigen,
// kernels/cpu/) and on NVIDIA GPUs (cuFFT, cuBLAS(Lt) and kvscope's own kernels, kernels/cuda/),
// picked at run time. Tests run every operation on every available backend against a float64
// reference (tests/test_kernels_*.cpp); benchmarks (kernels/bench/) time the same table of shapes.
//
// Layouts (row-major, innermost last):
//   K, V          [batch, kv_heads, tokens, head_dim]
//   Q, O          [batch, q_heads, q_len, head_dim]    q_heads = group * kv_heads (GQA)
//   Z (CCV input) [rows, d1];  W_c [d2, d1];  b_c [d2];  CCV [rows, d2]
//   GEMM          Y[rows, out] = X[rows, in] * W[out, in]^T (+ b[out])
// Queries of attention are the last q_len of the `tokens` positions; causal masking follows.
// Softmax scale 1/sqrt(head_dim). All arithmetic accumulates in f32.
//
// The Fourier-compressed form of one K or V tensor (FourierTensor) is three buffers:
//   kept   [batch, kv_heads, tokens, head_dim - C]   the dims not compressed, exact, in order
//   edge   [batch, kv_heads, sink + window, C]       compressed dims at the sink and window
//                                                    tokens, exact (sink first)
//   coeffs [batch, kv_heads, M, C]                   orthonormal DCT-II coefficients, k < M, of
//                                                    each compressed dim over the L = tokens -
//                                                    sink - window middle tokens
// with C = number of compressed dims. The DCT-II (orthonormal):
//   c_k = s_k * sum_{n<L} x_n cos(pi (n + 1/2) k / L),  s_0 = sqrt(1/L), s_k = sqrt(2/L)
//   x_n ~ sum_{k<min(M,L)} s_k c_k cos(pi (n + 1/2) k / L)
// Why DCT-II and not a truncated rfft: its coefficients are real (M values per dim, which is
// what model/memory.h counts), and its even extension has no jump at the sequence ends, so a
// smooth non-periodic signal compacts into few coefficients where a DFT would leak. Where
// L < M the coefficients past L are zero.
//
// Edge slots: with a middle (tokens > sink + window), slot j < sink holds token j and slot
// sink + j holds token tokens - window + j. Tokens that fit in sink + window have no middle:
// slot j holds token j for j < tokens, the remaining slots are zero, and coeffs are all zero.
// fourier_compress writes every byte of kept, edge and coeffs (unused slots as zeros).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/dtype.h"

namespace kvscope::kernels {

using kvscope::DType;

// Memory owned by a backend (host memory for the CPU backend, device memory for CUDA).
class DeviceBuffer {
 public:
  virtual ~DeviceBuffer() = default;
  virtual void* data() = 0;
  virtual const void* data() const = 0;
  virtual size_t bytes() const = 0;
};

struct DeviceInfo {
  std::string backend;          // "cpu" | "cuda"
  std::string name;             // e.g. "NVIDIA H100 80GB HBM3", or the CPU model
  int64_t multiprocessors = 0;  // SMs, or CPU threads used
  int64_t memory_bytes = 0;
  std::string driver;  // driver/toolkit versions, or the compiler
  // The runtime switches that choose among the backend's implementations (KVSCOPE_CUDA_*,
  // KVSCOPE_CPU_DCT), each with the value in effect, so a calibration profile says which ran.
  std::map<std::string, std::string> switches;
};

struct KvShape {
  int64_t batch = 1, kv_heads = 1, tokens = 1, head_dim = 128;
  DType dtype = DType::bf16;
  int64_t elements() const { return batch * kv_heads * tokens * head_dim; }
};

struct FourierLayout {
  std::vector<int64_t> compressed_dims;  // sorted, unique, < head_dim
  int64_t m = 256;
  int64_t sink = 4;
  int64_t window = 64;
  int64_t edge() const { return sink + window; }
  int64_t middle(int64_t tokens) const { return tokens > edge() ? tokens - edge() : 0; }
};

struct FourierTensor {
  std::unique_ptr<DeviceBuffer> kept, edge, coeffs;
};

struct AttentionArgs {
  int64_t batch = 1, q_heads = 1, kv_heads = 1, head_dim = 128;
  int64_t q_len = 1, tokens = 1;  // tokens = keys per sequence
  bool causal = true;
  DType dtype = DType::bf16;
};

struct GemmArgs {
  int64_t rows = 1, out = 1, in = 1;
  bool bias = false;
  DType dtype = DType::bf16;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual DeviceInfo info() const = 0;

  // ---- memory ----
  virtual std::unique_ptr<DeviceBuffer> alloc(size_t bytes) = 0;
  virtual void upload(DeviceBuffer& dst, const void* host, size_t bytes) = 0;
  virtual void download(const DeviceBuffer& src, void* host, size_t bytes) = 0;
  virtual void fill(DeviceBuffer& dst, uint8_t byte) = 0;  // e.g. poison outputs with 0xFF (NaN)
  // Device-side copy of the first `bytes` of src into dst: what the benchmarks' copy-bandwidth
  // measurement times (it reads and writes `bytes` each).
  virtual void copy(const DeviceBuffer& src, DeviceBuffer& dst, size_t bytes) = 0;
  virtual void synchronize() = 0;
  // Bytes currently allocated through alloc() and not yet freed (the backend's own accounting).
  virtual int64_t allocated_bytes() const = 0;
  // The device's own view of its memory (cudaMemGetInfo on the GPU); -1 where not known.
  struct MemoryInfo {
    int64_t free_bytes = -1, total_bytes = -1;
  };
  virtual MemoryInfo device_memory() const { return {}; }

  // ---- timing: runs fn `warmup` times, then `reps` times; returns the median ms of one run
  // measured with the backend's clock (CUDA events on the GPU, a steady clock on the CPU).
  virtual double time_ms(const std::function<void()>& fn, int warmup, int reps) = 0;

  // ---- 1, 2: spectral compression of one K or V tensor, and reconstruction ----
  // out.kept/edge/coeffs must be allocated with fourier_buffer_bytes().
  virtual void fourier_compress(const KvShape& s, const FourierLayout& f, const DeviceBuffer& kv,
                                FourierTensor& out) = 0;
  // Rebuilds the full [batch, kv_heads, tokens, head_dim] tensor (compressed dims of the middle
  // tokens from the coefficients, everything else copied).
  virtual void fourier_reconstruct(const KvShape& s, const FourierLayout& f,
                                   const FourierTensor& in, DeviceBuffer& kv) = 0;

  // ---- 3: attention over Fourier-compressed K and V, without materialising them ----
  virtual void fourier_attention(const AttentionArgs& a, const FourierLayout& f,
                                 const DeviceBuffer& q, const FourierTensor& k,
                                 const FourierTensor& v, DeviceBuffer& o) = 0;

  // ---- 4: exact attention (prefill when q_len = tokens, decode when q_len = 1), GQA ----
  virtual void attention(const AttentionArgs& a, const DeviceBuffer& q, const DeviceBuffer& k,
                         const DeviceBuffer& v, DeviceBuffer& o) = 0;

  // ---- 5, 7: Y = X W^T (+ b): the CCV layer (d1 -> d2) and the dense layers ----
  virtual void gemm(const GemmArgs& g, const DeviceBuffer& x, const DeviceBuffer& w,
                    const DeviceBuffer* bias, DeviceBuffer& y) = 0;

  // ---- 6: cosine checks, accumulated in f32, results f32 ----
  // Row-wise: out[r] = cos(a[r, :], b[r, :]).  Whole-context: out[0] = cos(vec(a), vec(b)).
  // A zero vector has cosine 0.
  virtual void cosine_rows(int64_t rows, int64_t dim, DType t, const DeviceBuffer& a,
                           const DeviceBuffer& b, DeviceBuffer& out) = 0;
  virtual void cosine_whole(int64_t rows, int64_t dim, DType t, const DeviceBuffer& a,
                            const DeviceBuffer& b, DeviceBuffer& out) = 0;
};

struct FourierBufferBytes {
  size_t kept = 0, edge = 0, coeffs = 0;
};
FourierBufferBytes fourier_buffer_bytes(const KvShape& s, const FourierLayout& f);
FourierTensor alloc_fourier_tensor(Backend& b, const KvShape& s, const FourierLayout& f);

// "cpu" always; "cuda" when built with CUDA and a device is present.
std::vector<std::string> available_backends();
// Throws std::runtime_error naming the reason when the backend is not available here.
std::unique_ptr<Backend> make_backend(const std::string& name);

// For a program's main(), first thing, before any backend runs: lets the CPU backend's idle
// OpenMP threads sleep rather than spin (kernels/cpu/openmp_wait.h says why). This may execute
// the program again with the same arguments.
void prepare_process_for_backends(char** argv);
// How the CPU backend's idle threads wait in this process: "passive", "active", "spin N" or
// "default (spin, then sleep)".
std::string cpu_thread_wait_policy();

}  // namespace kvscope::kernels
