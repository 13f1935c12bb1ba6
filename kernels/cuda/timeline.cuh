// Per-block stamps of the Fourier decode's kernels (DecodeTimeline in cuda_backend.h): thread 0
// of a block writes the global timer at the block's start, after its wait for the kernel before
// it, and at its end, and its SM. Only in a build with KVSCOPE_CUDA_TIMELINE; elsewhere
// timeline_stamp() is empty, so the kernels timed by the benchmarks are the shipped ones.
// Included by one translation unit (fourier_attention.cu), which owns the buffer's pointer.
#pragma once

#include <cstdint>

#include "kernels/cuda/cuda_backend.h"

namespace kvscope::kernels::cuda {

#if defined(KVSCOPE_CUDA_TIMELINE) && KVSCOPE_CUDA_TIMELINE
// The stamps' buffer, or null (no stamps); set by set_decode_timeline().
static __device__ uint64_t* g_decode_timeline = nullptr;

__device__ __forceinline__ void timeline_stamp(DecodeTimeline::Kernel kernel,
                                               DecodeTimeline::Field field) {
  uint64_t* stamps = g_decode_timeline;
  if (stamps == nullptr || threadIdx.x != 0) return;
  const uint64_t block =
      blockIdx.x + uint64_t(gridDim.x) * (blockIdx.y + uint64_t(gridDim.y) * blockIdx.z);
  if (block >= uint64_t(DecodeTimeline::kBlocks)) return;
  uint64_t* rec =
      stamps + (uint64_t(kernel) * DecodeTimeline::kBlocks + block) * DecodeTimeline::kFields;
  uint64_t now;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  rec[field] = now;
  if (field == DecodeTimeline::start) {
    unsigned sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    rec[DecodeTimeline::sm] = sm;
  }
}
#else
__device__ __forceinline__ void timeline_stamp(DecodeTimeline::Kernel, DecodeTimeline::Field) {}
#endif

}  // namespace kvscope::kernels::cuda
