// The CUDA backend of kernels/backend.h: cuFFT, cuBLASLt and kvscope's own kernels on one device.
// Built only when KVSCOPE_HAVE_CUDA; the registry (make_backend("cuda")) reaches it through
// make_cuda_backend() and cuda_unavailable_reason() (kernels/backend_factories.h). This header
// adds what only CUDA-aware callers (tests, benchmarks comparing variants) need.
#pragma once

#include <memory>
#include <string>

#include "kernels/backend.h"

namespace kvscope::kernels {

// Which implementation of an operation runs. The defaults are the fastest measured on the H100
// (kernels/BENCHMARKS.md); the others stay selectable so the benchmarks can compare them.
struct CudaOptions {
  enum class Fourier { fused, cufft };  // DCT as a tensor-core GEMM, or cuFFT + separate passes
  Fourier fourier = Fourier::fused;
  // The fused transforms' one-pass variant: the transform kernels also do the kept-dims copy
  // (which otherwise runs as a side-stream kernel that cannot overlap them: whichever launches
  // first fills the SMs), and the forward kernel forms the mirror sums u, v in registers for
  // 16-bit types. On the H200 it took the issue layout's compression from 0.418 to 0.315 ms
  // (kernels/BENCHMARKS.md); false keeps the kept copy on the side stream.
  bool fourier_one_pass = true;
  // The fused transforms read the DCT basis from a table (16-bit types, up to 64 MB, rebuilt
  // when L or M changes) instead of generating it in every block. On the H200 it took the issue
  // layout's reconstruction from 0.562 to 0.428 ms and its compression from 0.314 to 0.292 ms.
  bool fourier_basis_table = true;
  // The fused transforms of 16-bit types with a basis table run as warpgroup-MMA kernels (wgmma,
  // with sm_90a code on a compute-capability 9.0 device; elsewhere the mma.sync kernels run):
  // the compression above 128 coefficients, the reconstruction where the coefficient rows are
  // whole 16-byte groups. false: always the mma.sync kernels. On the H200 the compression of
  // the issue layout went from 0.294 to 0.234 ms (kernels/BENCHMARKS.md).
  bool fourier_wgmma = true;
  // rows <= 16: kvscope's GEMV kernels with W in flight in registers (own: a warp per feature
  // for one row, the 16-feature tile kernel for 2..16 rows; tile: the tile kernel for every row
  // count), the one with W staged in shared memory by bulk copies (bulk), or cuBLASLt.
  enum class SmallGemm { own, tile, bulk, cublaslt };
  SmallGemm small_gemm = SmallGemm::own;
  // The GEMV kernel is launched with programmatic dependent launch: its blocks may start, and
  // issue their W loads, while the previous kernel in the stream finishes; X is read and Y written
  // only after that kernel is done. So W (a weight) and the bias must not be written by the
  // kernel just before it (kernels/cuda/gemm.cu).
  bool gemv_pdl = true;
  // The Fourier decode's kernels (sink and window tokens, P, the middle splits, the finish) run
  // as one chain on the stream with programmatic dependent launch: each starts while the one
  // before it drains and reads what that one wrote only after griddepcontrol.wait. false: the
  // sink and window kernel runs on the side stream beside P and the middle, and each launch
  // waits for the one before it (kernels/cuda/fourier_attention.cu).
  bool fourier_decode_pdl = true;
  // In that chain, where the middle kernel's grid leaves SMs free, the sink and window kernel
  // runs after the middle kernel, on those SMs, instead of first (where the middle's blocks wait
  // for its SMs). false: always first.
  bool fourier_edge_last = true;
  // The sink and window tokens' scores and weighted sums on the tensor cores (edge_mma_kernel)
  // instead of CUDA cores (edge_kernel, also used where head_dim is not twice the kept dims).
  // At the batch-8 decode its 192 blocks, on the 4 SMs the middle kernel leaves free,
  // end about 100 us into the call instead of 170, before the middle kernel instead of after it
  // (kernels/BENCHMARKS.md, 2026-12-05).
  bool fourier_edge_mma = true;
  // The Fourier decode's finish with Vc's rows copied into shared memory before its wait and the
  // edge splits' exact part right after it (fourier_finish_kernel's kStaged), instead of Vc
  // prefetched into L2 and both read from L2 after R is merged: 1-3 us off the decode
  // (kernels/BENCHMARKS.md, 2026-12-05).
  bool fourier_finish_staged = true;
  // For timing only, the output is wrong: the Fourier decode's launches to leave out, a bit each
  // (kSkip* below). The time a launch adds to the chain is the difference with and without it
  // (kvscope-cuda-variants' decode rows, axis `skip`).
  unsigned fourier_decode_skip = 0;
  static constexpr unsigned kSkipP = 1, kSkipMiddle = 2, kSkipEdge = 4, kSkipFinish = 8;
  // Attention: the tiled tensor-core kernels, or the simple one-warp-per-query kernels that
  // exist for any dtype / head_dim (and are what f32 always uses).
  bool simple_attention = false;
  // Exact prefill at head_dim 128, 16-bit types: the warpgroup-MMA kernel with TMA copies (wgmma,
  // needs sm_90a code and a compute-capability 9.0 device; elsewhere the mma.sync kernel runs),
  // or always the mma.sync kernel. On the H200 the wgmma kernel took 32 heads x 16384 causal
  // from 9.8 to 4.5 ms (kernels/BENCHMARKS.md).
  enum class Prefill { wgmma, mma };
  Prefill prefill = Prefill::wgmma;
  // time_ms's L2 flush before each timed run: overwrite a 2x L2 buffer (leaves dirty lines that
  // the timed kernel may have to write back), or read one (leaves clean lines).
  enum class L2Flush { write, read };
  L2Flush l2_flush = L2Flush::write;
  int device = 0;
};

// Whether the kernels' code loaded for `device` has sm_90a's features (the wgmma prefill kernel):
// true on a compute-capability 9.0 device with a build for 90a. Throws std::runtime_error when the
// device cannot be used.
bool cuda_wgmma_code(int device);

// A measuring probe, not an operation: reads `bytes` of `buf` (a multiple of 16) on a CUDA
// backend's stream in the small-rows GEMV's geometry with nothing computed, every load of a
// block in flight at once, as a programmatic dependent launch where `pdl`. Its time is the best
// a memory-bound kernel of that size reaches (kvscope-cuda-variants' read_stream rows). Throws
// std::invalid_argument for another backend or a buffer too small.
void cuda_read_probe(Backend& b, const DeviceBuffer& buf, size_t bytes, bool pdl);

// Where the Fourier decode's time goes, block by block (kvscope-decode-timeline). In a build
// configured with -DKVSCOPE_CUDA_TIMELINE=ON, thread 0 of every block of the decode's kernels
// writes the GPU's global timer (ns) at the block's start, after its wait for the kernel before
// it, and at its end, and the SM it ran on, into a buffer of
//   [kernel][block][field] uint64, kernel as DecodeTimeline::Kernel, block the linear block index
//   (blocks past kBlocks are not stamped), field as DecodeTimeline::Field; 0 where not written.
// `apply` is the finish's second launch, where it takes two (many splits, e.g. batch 1).
// Other builds compile no stamps, so the kernels they time are the ones shipped.
struct DecodeTimeline {
  enum Kernel { p = 0, middle = 1, edge = 2, finish = 3, apply = 4, kKernels = 5 };
  enum Field { start = 0, waited = 1, end = 2, sm = 3, kFields = 4 };
  static constexpr int64_t kBlocks = 4096;
  static constexpr size_t bytes() { return size_t(kKernels) * kBlocks * kFields * 8; }
};
// Whether this build has the stamps (KVSCOPE_CUDA_TIMELINE).
bool cuda_decode_timeline_built();
// Points the decode's stamps at `stamps` (at least DecodeTimeline::bytes(), on `b`'s device), or
// turns them off with nullptr. Throws std::invalid_argument for another backend or a buffer too
// small, std::runtime_error in a build without the stamps.
void cuda_decode_timeline(Backend& b, DeviceBuffer* stamps);

// Number of usable CUDA devices; 0, with the reason in *why, when there is no driver or device.
int cuda_device_count(std::string* why = nullptr);

// The options of the registry's backend (make_cuda_backend()): the defaults, unless the
// environment picks another implementation (how the benchmarks and tests run the alternatives):
//   KVSCOPE_CUDA_FOURIER=cufft|twopass   KVSCOPE_CUDA_BASIS_TABLE=0|1
//   KVSCOPE_CUDA_FOURIER_WGMMA=0|1
//   KVSCOPE_CUDA_SMALL_GEMM=own|bulk|cublaslt   KVSCOPE_CUDA_GEMV_PDL=0|1
//   KVSCOPE_CUDA_DECODE_PDL=0|1   KVSCOPE_CUDA_DECODE_EDGE_LAST=0|1
//   KVSCOPE_CUDA_DECODE_EDGE_MMA=0|1   KVSCOPE_CUDA_DECODE_FINISH_STAGED=0|1
//   KVSCOPE_CUDA_SIMPLE_ATTENTION=1   KVSCOPE_CUDA_PREFILL=wgmma|mma
// Throws std::invalid_argument naming the variable, its value and the allowed ones for any
// other value.
CudaOptions cuda_options_from_env();

// The backend with chosen implementations (make_cuda_backend() uses the defaults). Throws
// std::runtime_error naming the reason when no device is usable.
std::unique_ptr<Backend> make_cuda_backend_with(const CudaOptions& options);

}  // namespace kvscope::kernels
