// The CUDA backend of kernels/backend.h: cuFFT, cuBLASLt and kvscope's own kernels on one device.
// Built only when KVSCOPE_HAVE_CUDA; the registry (make_backend("cuda")) reaches it through
// make_cuda_backend() and cuda_unavailable_reason() (kernels/backend_factories.h). This header
// adds what only CUDA-aware callers (tests, benchmarks comparing variants) need.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "kernels/backend.h"

namespace kvscope::kernels {

// Which implementation of an operation runs. Each operation has one production path, the
// fastest measured on the H100 and H200 (kernels/BENCHMARKS.md); the variants that lost were
// removed (BENCHMARKS.md, "Retired variants"). What remains selectable is a reference path per
// operation that the tests compare against, and two settings for measuring.
struct CudaOptions {
  // The Fourier transforms: the DCT as tensor-core GEMMs with the copies folded in (fused), or
  // cuFFT plus separate passes (an independent implementation the tests and benchmarks compare
  // the fused kernels with).
  enum class Fourier { fused, cufft };
  Fourier fourier = Fourier::fused;
  // rows <= 16 of a 16-bit GEMM: kvscope's GEMV kernels with W in flight in registers (own: a warp
  // per feature for one row, a block per 16 features for 2..16 rows, launched with programmatic
  // dependent launch, kernels/cuda/gemm.cu), or cuBLASLt as for larger rows (the library
  // reference). Above 16 rows, f32, or misaligned operands, cuBLASLt runs either way.
  enum class SmallGemm { own, cublaslt };
  SmallGemm small_gemm = SmallGemm::own;
  // Attention: the tiled tensor-core kernels, or the simple one-warp-per-query kernels that
  // exist for any dtype / head_dim (and are what f32 always uses).
  bool simple_attention = false;
  // The sm_90a kernels (the warpgroup-MMA transforms, the TMA prefill) where the device and build
  // have them. false runs what a device without them runs (the mma.sync transforms and prefill),
  // so the tests check those fallbacks on a Hopper GPU too. Not an environment switch: the
  // device chooses in production.
  bool sm90a_kernels = true;
  // For timing only, the output is wrong: the Fourier decode's launches to leave out, a bit each
  // (kSkip* below). The time a launch adds to the chain is the difference with and without it
  // (kvscope-cuda-variants' decode rows, axis `skip`).
  unsigned fourier_decode_skip = 0;
  static constexpr unsigned kSkipP = 1, kSkipMiddle = 2, kSkipEdge = 4, kSkipFinish = 8;
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
// environment picks a reference path (how the benchmarks and tests run them):
//   KVSCOPE_CUDA_FOURIER=fused|cufft   KVSCOPE_CUDA_SMALL_GEMM=own|cublaslt
//   KVSCOPE_CUDA_SIMPLE_ATTENTION=0|1
// Throws std::invalid_argument naming the variable, its value and the allowed ones for any
// other value.
CudaOptions cuda_options_from_env();

// The environment switches as `o` sets them, each with its value ("KVSCOPE_CUDA_FOURIER" ->
// "fused", ...): what a CUDA backend's info() reports, and so what a calibration profile's device
// block records.
std::map<std::string, std::string> cuda_switches(const CudaOptions& o);

// The backend with chosen implementations (make_cuda_backend() uses the defaults). Throws
// std::runtime_error naming the reason when no device is usable.
std::unique_ptr<Backend> make_cuda_backend_with(const CudaOptions& options);

}  // namespace kvscope::kernels
