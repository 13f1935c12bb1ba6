// Host wrappers of the CUDA kernels, one group per op family (one .cu file each). The backend
// (cuda_backend.cpp) owns the device memory and calls these with raw device pointers; every
// wrapper only enqueues work on ctx.stream and checks the launch.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"

namespace kvscope::kernels::cuda {

[[noreturn]] void throw_cuda(cudaError_t e, const char* what, const char* file, int line);
#define KVS_CUDA(x)                                                         \
  do {                                                                      \
    const cudaError_t kvs_e_ = (x);                                         \
    if (kvs_e_ != cudaSuccess)                                              \
      ::kvscope::kernels::cuda::throw_cuda(kvs_e_, #x, __FILE__, __LINE__); \
  } while (0)
#define KVS_LAUNCH() KVS_CUDA(cudaGetLastError())

// Device scratch memory for intermediates (split-K partials, cuFFT buffers, cuBLASLt workspace).
// It only grows; growing waits for the device first. Not counted in allocated_bytes(), which is
// the accounting of the caller's own buffers; scratch_bytes() reports it separately.
class Scratch {
 public:
  ~Scratch();
  void* get(size_t bytes, int slot = 0);  // slots are independent buffers used in one op
  size_t bytes() const;

  // Slot 3 is fourier.cu's alone: the DCT basis table it built last, for L middle tokens,
  // kmax coefficients and a 16-bit type (type 0 none, 1 bf16, 2 f16); a call with the same key
  // reuses it.
  struct BasisKey {
    int64_t L = 0, kmax = 0;
    int type = 0;
    bool operator==(const BasisKey& o) const {
      return L == o.L && kmax == o.kmax && type == o.type;
    }
  };
  static constexpr int kBasisSlot = 3;
  BasisKey basis;

 private:
  static constexpr int kSlots = 4;
  void* ptr_[kSlots] = {};
  size_t size_[kSlots] = {};
};

class FftPlans;  // fourier_cufft.cu
class LtState;   // gemm.cu

struct Ctx {
  cudaStream_t stream = nullptr;
  cudaStream_t side = nullptr;  // a second stream, to overlap independent passes of one op
  cudaEvent_t fork = nullptr, join = nullptr;
  int sms = 1;
  size_t smem_optin = 48 << 10;
  Scratch* scratch = nullptr;
  FftPlans* fft = nullptr;
  LtState* lt = nullptr;
  CudaOptions opt;
  bool wgmma = false;  // the kernels' code for this device has sm_90a's wgmma (wgmma_available)
};

// Runs `side_work` on ctx.side concurrently with whatever is enqueued on ctx.stream after this
// call, until join_side() makes ctx.stream wait for it.
void fork_side(Ctx& c);
void join_side(Ctx& c);

// Reads `bytes` (a multiple of 16) of device memory, leaving it in L2 as clean lines.
void l2_read_pass(Ctx& c, const void* p, size_t bytes);

// Reads `bytes` (a multiple of 16) in the small-rows GEMV's geometry, every load of a block in
// flight at once, with programmatic dependent launch where `pdl`: what a memory-bound kernel of
// that size can reach at best (kvscope-cuda-variants' read_stream rows).
void read_probe(Ctx& c, const void* p, size_t bytes, bool pdl);

// ---- attention.cu ----
// Whether the loaded code for the current device was built with sm_90a features: a one-thread
// probe kernel reports it (the fat binary may hold sm_90 code only, or PTX for a newer GPU).
bool wgmma_available(cudaStream_t stream);

// ---- cosine.cu ----
void cosine_rows(Ctx& c, int64_t rows, int64_t dim, DType t, const void* a, const void* b,
                 float* out);
void cosine_whole(Ctx& c, int64_t rows, int64_t dim, DType t, const void* a, const void* b,
                  float* out);

// ---- gemm.cu ----
void gemm(Ctx& c, const GemmArgs& g, const void* x, const void* w, const void* bias, void* y);
LtState* lt_create();
void lt_destroy(LtState* s);

// ---- fourier.cu (fused kernels) / fourier_cufft.cu ----
struct FourierPtrs {
  void* kept = nullptr;
  void* edge = nullptr;
  void* coeffs = nullptr;
};
void fourier_compress(Ctx& c, const KvShape& s, const FourierLayout& f, const void* kv,
                      const FourierPtrs& out);
void fourier_reconstruct(Ctx& c, const KvShape& s, const FourierLayout& f, const FourierPtrs& in,
                         void* kv);
void fourier_compress_cufft(Ctx& c, const KvShape& s, const FourierLayout& f, const void* kv,
                            void* coeffs);
void fourier_reconstruct_cufft(Ctx& c, const KvShape& s, const FourierLayout& f, const void* coeffs,
                               void* kv);
FftPlans* fft_create();
void fft_destroy(FftPlans* p);

// ---- attention.cu / fourier_attention.cu ----
void attention(Ctx& c, const AttentionArgs& a, const void* q, const void* k, const void* v,
               void* o);
void fourier_attention(Ctx& c, const AttentionArgs& a, const FourierLayout& f, const void* q,
                       const FourierPtrs& k, const FourierPtrs& v, void* o);
// The Fourier decode's per-block stamps (DecodeTimeline, cuda_backend.h): written to `stamps`, a
// device buffer, from the next launch on, or no longer where null. Throws std::runtime_error in a
// build without KVSCOPE_CUDA_TIMELINE.
void set_decode_timeline(Ctx& c, uint64_t* stamps);
bool decode_timeline_built();

// Which token of a sequence of `tokens` the edge row r (< sink + window) holds, or -1 when none:
// the first `sink` rows are tokens 0.., the last `window` rows the window ending at the last
// token. With no middle (tokens <= sink + window) the rows hold tokens 0..tokens-1 in order.
inline int64_t edge_token(int64_t r, int64_t tokens, int64_t sink, int64_t window) {
  if (tokens <= sink + window) return r < tokens ? r : -1;
  return r < sink ? r : tokens - window + (r - sink);
}

// The kept (not compressed) dims of a head, in order, given the sorted compressed ones.
std::vector<int> kept_dims(int64_t head_dim, const std::vector<int64_t>& compressed);

}  // namespace kvscope::kernels::cuda
