// The copies of a Fourier tensor's bytes that no transform touches: the kept dims of every token
// (kept_copy_kernel, or folded into the transform kernels through KeptCopy / KeptMover) and the
// sink and window tokens' compressed dims (edge_copy_kernel), each way; and the helpers the
// transforms share (grid sizes, 16-byte contiguity checks).
// Private to fourier.cu, the one translation unit that includes it (hence the unnamed namespace).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kept_copy.h"
#include "kernels/cuda/ops.h"

namespace kvscope::kernels::cuda {
namespace {

constexpr int kMaxHeadDim = 256;

// Where each of `n` columns lives in a row, and whether groups of `vec` columns are contiguous
// and aligned so they can move as one 16-byte vector.
struct DimTable {
  int16_t off[kMaxHeadDim];
};

bool groups_contiguous(const std::vector<int>& dims, int vec, int64_t row_elems) {
  if (row_elems % vec != 0 || dims.size() % vec != 0) return false;
  for (size_t i = 0; i < dims.size(); i += vec) {
    if (dims[i] % vec != 0) return false;
    for (int e = 1; e < vec; ++e)
      if (dims[i + e] != dims[i] + e) return false;
  }
  return true;
}

DimTable make_table(const std::vector<int>& dims) {
  DimTable t{};
  for (size_t i = 0; i < dims.size(); ++i) t.off[i] = static_cast<int16_t>(dims[i]);
  return t;
}

std::vector<int> to_int(const std::vector<int64_t>& v) { return {v.begin(), v.end()}; }

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// ---- kept and edge copies -----------------------------------------------------------------
// kept[h, t, i] <-> kv[h, t, kept_dim[i]]; one thread per 16-byte group (or per element).
template <class T, bool kVec, bool kToKv>
__global__ void kept_copy_kernel(int64_t rows, int64_t D, int64_t Dk, const T* src, T* dst,
                                 DimTable kd) {
  constexpr int G = kVec ? Vec16<T>::n : 1;
  const int64_t per_row = Dk / G;
  const int64_t total = rows * per_row;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / per_row;
    const int j = static_cast<int>(i % per_row) * G;
    const int64_t kv_off = row * D + kd.off[j];
    const int64_t kept_off = row * Dk + j;
    if constexpr (kVec) {
      if constexpr (kToKv)
        *reinterpret_cast<uint4*>(dst + kv_off) = ldg16_stream(src + kept_off);
      else
        *reinterpret_cast<uint4*>(dst + kept_off) = ldg16_stream(src + kv_off);
    } else {
      if constexpr (kToKv)
        dst[kv_off] = src[kept_off];
      else
        dst[kept_off] = src[kv_off];
    }
  }
}

// The kept-dims copy done by a transform kernel's own blocks. The transforms are bound by
// instruction issue and the copy by memory, but as separate kernels they mostly do not overlap:
// the first to launch fills the SMs, the other gets them as its blocks drain. So each transform
// block also moves a share of
// the copy, a few passes of whole rows per step (kept_copy.h: which rows, when), through a ring of
// cp.async slots in shared memory that travels in the same commit groups as the step's tiles. A
// thread keeps one 16-byte group of the row (its column offsets are fixed), so a step costs it no
// division.
struct KeptCopy {
  const void* src = nullptr;  // kv (compress) or kept (reconstruct)
  void* dst = nullptr;
  int64_t rows = 0;  // token rows of all heads (the job; `schedule` is set by the launch)
  int per_row = 0;   // 16-byte groups per row (Dk / G)
  int64_t D = 0, Dk = 0;
  bool to_kv = false;
  KeptSchedule schedule;  // no copy in the kernel without one (its loops then do nothing)
  DimTable kd;
};

template <class T, int kThreadsPerBlock, int kRing = kCopyMax>
struct KeptMover {
  static constexpr int G = Vec16<T>::n;
  const KeptCopy& k;
  uint4* ring;  // [stages][kRing][threads]
  int64_t block, blocks;
  int64_t src_col, dst_col;  // the thread's group in a source and a destination row
  int64_t src_row, dst_row;  // row lengths
  int r0;                    // the thread's row in a pass, or -1

  __device__ KeptMover(const KeptCopy& job, void* ring_smem) : k(job) {
    ring = static_cast<uint4*>(ring_smem);
    blocks = int64_t(gridDim.x) * gridDim.y * gridDim.z;
    block = (int64_t(blockIdx.z) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    const int j = k.schedule.group_of(static_cast<int>(threadIdx.x)) * G;
    r0 = k.schedule.slot_of(static_cast<int>(threadIdx.x));
    const int64_t kv_col = k.kd.off[j], kept_col = j;
    src_col = k.to_kv ? kept_col : kv_col;
    dst_col = k.to_kv ? kv_col : kept_col;
    src_row = k.to_kv ? k.Dk : k.D;
    dst_row = k.to_kv ? k.D : k.Dk;
  }
  __device__ const T* from(int64_t r) const {
    return static_cast<const T*>(k.src) + r * src_row + src_col;
  }
  __device__ T* to(int64_t r) const { return static_cast<T*>(k.dst) + r * dst_row + dst_col; }
  __device__ uint4* slot(int stage, int e) const {
    return ring + (stage * kRing + e) * kThreadsPerBlock + threadIdx.x;
  }
  // Step s's rows into ring stage `stage` (part of the caller's commit group).
  __device__ void issue(int64_t s, int stage) const {
    k.schedule.rows_of_step(blocks, block, r0, s,
                            [&](int e, int64_t r) { cp_async16(slot(stage, e), from(r), true); });
  }
  // After the wait that covers step s's group: its slots to their rows. Each thread reads only
  // the slots it filled, so no barrier is needed.
  __device__ void drain(int64_t s, int stage) const {
    k.schedule.rows_of_step(blocks, block, r0, s, [&](int e, int64_t r) {
      *reinterpret_cast<uint4*>(to(r)) = *slot(stage, e);
    });
  }
  // What the loop did not cover, copied directly.
  __device__ void finish(int64_t steps_done) const {
    k.schedule.rows_after_loop(blocks, block, r0, steps_done, [&](int64_t r) {
      *reinterpret_cast<uint4*>(to(r)) = ldg16_stream(from(r));
    });
  }
};

// edge[h, r, c] <-> kv[h, edge_token(r), dim[c]]; rows without a token are zero in `edge`.
template <class T, bool kToKv>
__global__ void edge_copy_kernel(int64_t heads, int64_t T_, int64_t D, int64_t sink, int64_t window,
                                 int C, const T* src, T* dst, DimTable cd) {
  const int64_t E = sink + window;
  const int64_t total = heads * E * C;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(i % C);
    const int64_t r = (i / C) % E, h = i / (C * E);
    const int64_t tok = T_ <= E ? (r < T_ ? r : -1) : (r < sink ? r : T_ - window + (r - sink));
    if constexpr (kToKv) {
      if (tok >= 0) dst[(h * T_ + tok) * D + cd.off[c]] = src[i];
    } else {
      dst[i] = tok >= 0 ? src[(h * T_ + tok) * D + cd.off[c]] : from_f32<T>(0.f);
    }
  }
}

int grid_for(int64_t items, int threads, int sms) {
  const int64_t b = (items + threads - 1) / threads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(b, int64_t(sms) * 16)));
}

// Whether the kept dims move as whole aligned 16-byte vectors of T.
template <class T>
bool kept_vectorizable(const std::vector<int>& kd, int64_t head_dim, const void* kv,
                       const void* kept) {
  return groups_contiguous(kd, Vec16<T>::n, head_dim) && aligned16(kv) && aligned16(kept);
}

// The kept-dims copy as a job for the transform kernels, or none (no rows) when its groups are
// not whole aligned 16-byte vectors; the side-stream kernel then does it. The job's schedule
// is set by the launch, which knows its grid.
template <class T>
KeptCopy kept_copy_job(const KvShape& s, const FourierLayout& f, const void* kv, void* kept,
                       bool to_kv) {
  const std::vector<int> kd = kept_dims(s.head_dim, f.compressed_dims);
  constexpr int G = Vec16<T>::n;
  KeptCopy k;
  if (kd.empty() || !kept_vectorizable<T>(kd, s.head_dim, kv, kept)) return k;
  k.src = to_kv ? kept : kv;
  k.dst = to_kv ? const_cast<void*>(kv) : kept;
  k.to_kv = to_kv;
  k.D = s.head_dim;
  k.Dk = static_cast<int64_t>(kd.size());
  k.per_row = static_cast<int>(k.Dk / G);
  k.rows = s.batch * s.kv_heads * s.tokens;
  k.kd = make_table(kd);
  return k;
}

// Spreads the job over a grid of `blocks` blocks of `threads` threads whose longest block runs
// `steps` steps, with a ring of `ring` passes (no copy without a job).
void schedule_copy(KeptCopy& k, int64_t blocks, int threads, int64_t steps, int ring = kCopyMax) {
  k.schedule = cuda::spread(k.rows, k.per_row, blocks, threads, steps, ring);
}

template <class T>
void split_merge_t(Ctx& c, const KvShape& s, const FourierLayout& f, const void* kv_in,
                   void* kv_out, const FourierPtrs& p, bool to_kv, bool with_kept = true) {
  const int64_t heads = s.batch * s.kv_heads;
  const std::vector<int> kd = kept_dims(s.head_dim, f.compressed_dims);
  const int64_t Dk = static_cast<int64_t>(kd.size());
  const int C = static_cast<int>(f.compressed_dims.size());
  const DimTable kt = make_table(kd), ct = make_table(to_int(f.compressed_dims));
  constexpr int G = Vec16<T>::n;
  const void* kv = to_kv ? kv_out : kv_in;
  const bool vec = kept_vectorizable<T>(kd, s.head_dim, kv, p.kept);
  const int64_t rows = heads * s.tokens;
  if (Dk > 0 && with_kept) {
    const int64_t items = rows * (vec ? Dk / G : Dk);
    const int grid = grid_for(items, 256, c.sms);
    auto* kvp = static_cast<T*>(to_kv ? kv_out : const_cast<void*>(kv_in));
    auto* kp = static_cast<T*>(p.kept);
    if (to_kv) {
      if (vec)
        kept_copy_kernel<T, true, true>
            <<<grid, 256, 0, c.stream>>>(rows, s.head_dim, Dk, kp, kvp, kt);
      else
        kept_copy_kernel<T, false, true>
            <<<grid, 256, 0, c.stream>>>(rows, s.head_dim, Dk, kp, kvp, kt);
    } else {
      if (vec)
        kept_copy_kernel<T, true, false>
            <<<grid, 256, 0, c.stream>>>(rows, s.head_dim, Dk, kvp, kp, kt);
      else
        kept_copy_kernel<T, false, false>
            <<<grid, 256, 0, c.stream>>>(rows, s.head_dim, Dk, kvp, kp, kt);
    }
    KVS_LAUNCH();
  }
  if (C > 0 && f.edge() > 0) {
    const int64_t items = heads * f.edge() * C;
    const int grid = grid_for(items, 256, c.sms);
    if (to_kv)
      edge_copy_kernel<T, true>
          <<<grid, 256, 0, c.stream>>>(heads, s.tokens, s.head_dim, f.sink, f.window, C,
                                       static_cast<const T*>(p.edge), static_cast<T*>(kv_out), ct);
    else
      edge_copy_kernel<T, false>
          <<<grid, 256, 0, c.stream>>>(heads, s.tokens, s.head_dim, f.sink, f.window, C,
                                       static_cast<const T*>(kv_in), static_cast<T*>(p.edge), ct);
    KVS_LAUNCH();
  }
}

}  // namespace
}  // namespace kvscope::kernels::cuda
