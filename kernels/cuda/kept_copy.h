// Which kept-dims rows a transform block's thread copies, and when (the one-pass transforms of
// fourier.cu: 16-bit types, and float where it has kept dims). Plain C++ with no CUDA types, so the
// same schedule that the kernels follow is checked on the host (tests/test_kept_copy_schedule.cpp):
// every 16-byte group of every row copied exactly once, for any grid.
//
// A thread keeps one 16-byte group of a row (group = thread % per_row) and one row slot of a
// pass (thread / per_row; threads past rows_per_pass * per_row idle). A pass copies
// rows_per_pass whole rows; a block makes per_thread passes per step of its loop, the grid's
// passes of step s following one another in block order. Blocks with fewer steps than the
// longest, and (where per_thread was capped at kCopyMax) the passes after the last step's, are
// done after the loop.
#pragma once

#include <algorithm>
#include <cstdint>

#ifdef __CUDACC__
#define KVS_HOST_DEVICE __host__ __device__
#else
#define KVS_HOST_DEVICE
#endif

namespace kvscope::kernels::cuda {

// Passes per step, at most: the depth of the mma.sync transform kernels' copy ring. The warpgroup
// forward kernel (one block per SM, 64-token steps) has four times the rows per step to copy and
// a ring of kCopyMaxWide.
constexpr int kCopyMax = 2;
constexpr int kCopyMaxWide = 8;

struct KeptSchedule {
  int64_t rows = 0;       // token rows of all heads
  int per_row = 0;        // 16-byte groups per row
  int rows_per_pass = 0;  // threads / per_row
  int64_t steps = 0;      // steps of the longest block: the copy is spread over these
  int per_thread = 0;     // passes per step; 0: no copy in the kernel

  KVS_HOST_DEVICE int group_of(int thread) const { return thread % (per_row > 0 ? per_row : 1); }
  // The thread's row within a pass, or -1.
  KVS_HOST_DEVICE int slot_of(int thread) const {
    const int r0 = thread / (per_row > 0 ? per_row : 1);
    return r0 < rows_per_pass ? r0 : -1;
  }
  KVS_HOST_DEVICE int64_t pass(int64_t blocks, int64_t block, int64_t s, int e) const {
    return (s * blocks + block) * per_thread + e;
  }
  // The row of slot r0 in pass q, or -1.
  KVS_HOST_DEVICE int64_t row(int64_t q, int r0) const {
    if (r0 < 0) return -1;
    const int64_t r = q * rows_per_pass + r0;
    return r < rows ? r : -1;
  }
  // f(e, row) for each row the thread copies in step s of its loop (e: its pass of the step).
  template <class F>
  KVS_HOST_DEVICE void rows_of_step(int64_t blocks, int64_t block, int r0, int64_t s, F&& f) const {
    for (int e = 0; e < per_thread; ++e) {
      const int64_t r = row(pass(blocks, block, s, e), r0);
      if (r >= 0) f(e, r);
    }
  }
  // f(row) for each row the thread copies after a loop of `steps_done` steps.
  template <class F>
  KVS_HOST_DEVICE void rows_after_loop(int64_t blocks, int64_t block, int r0, int64_t steps_done,
                                       F&& f) const {
    for (int64_t s = steps_done; s < steps; ++s)
      rows_of_step(blocks, block, r0, s, [&](int, int64_t r) { f(r); });
    for (int64_t q = steps * blocks * per_thread + block; q * rows_per_pass < rows; q += blocks) {
      const int64_t r = row(q, r0);
      if (r >= 0) f(r);
    }
  }
};

// Spreads `rows` rows of `per_row` groups over a grid of `blocks` blocks of `threads` threads
// whose longest block runs `steps` steps, at most `max_passes` passes per step (the depth of the
// kernel's ring). No copy (per_thread 0) when there is nothing to do.
inline KeptSchedule spread(int64_t rows, int per_row, int64_t blocks, int threads, int64_t steps,
                           int max_passes = kCopyMax) {
  KeptSchedule k;
  if (rows <= 0 || per_row <= 0 || per_row > threads || blocks <= 0 || steps <= 0) return k;
  k.rows = rows;
  k.per_row = per_row;
  k.rows_per_pass = threads / per_row;
  k.steps = steps;
  const int64_t per = blocks * steps * k.rows_per_pass;  // rows of one pass per step of each block
  k.per_thread = static_cast<int>(std::min<int64_t>(max_passes, (rows + per - 1) / per));
  return k;
}

}  // namespace kvscope::kernels::cuda
