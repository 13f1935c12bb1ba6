// The schedule by which the one-pass CUDA transforms copy the kept dims (kernels/cuda/
// kept_copy.h), run on the host for the grids the kernels launch and for awkward ones: every
// 16-byte group of every row must be copied exactly once, by the loop or after it. The kernels
// follow this schedule through the same functions; the copies themselves are checked on the GPU
// (tests/test_kernels_cuda.cpp, test_kernels_backends with KVSCOPE_CUDA_FOURIER=onepass).
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "kernels/cuda/kept_copy.h"

using kvscope::kernels::cuda::KeptSchedule;
using kvscope::kernels::cuda::spread;

namespace {

struct Grid {
  int64_t rows;
  int per_row;
  int64_t blocks;
  int threads;
  int64_t steps;       // of the longest block
  int64_t short_from;  // blocks from here on run short_steps (split-K's last split)
  int64_t short_steps;
  int max_passes = kvscope::kernels::cuda::kCopyMax;  // the kernel's ring depth
};

// How many times each (row, group) is copied when every thread of every block runs its loop's
// steps and then what follows the loop, as the kernels do.
std::vector<int> copies(const Grid& g, KeptSchedule& k) {
  k = spread(g.rows, g.per_row, g.blocks, g.threads, g.steps, g.max_passes);
  std::vector<int> n(static_cast<size_t>(g.rows * g.per_row), 0);
  for (int64_t b = 0; b < g.blocks; ++b) {
    const int64_t steps = b >= g.short_from ? g.short_steps : g.steps;
    for (int t = 0; t < g.threads; ++t) {
      const int r0 = k.slot_of(t), grp = k.group_of(t);
      auto mark = [&](int64_t r) { ++n[static_cast<size_t>(r * g.per_row + grp)]; };
      for (int64_t s = 0; s < steps; ++s)
        k.rows_of_step(g.blocks, b, r0, s, [&](int, int64_t r) { mark(r); });
      k.rows_after_loop(g.blocks, b, r0, steps, mark);
    }
  }
  return n;
}

void expect_each_once(const Grid& g) {
  KeptSchedule k;
  const std::vector<int> n = copies(g, k);
  ASSERT_GT(k.per_thread, 0);
  int64_t wrong = 0, first = -1;
  for (size_t i = 0; i < n.size(); ++i)
    if (n[i] != 1) {
      ++wrong;
      if (first < 0) first = static_cast<int64_t>(i);
    }
  EXPECT_EQ(wrong, 0) << "rows " << g.rows << " per_row " << g.per_row << " blocks " << g.blocks
                      << " steps " << g.steps << ": first bad group " << first << " copied "
                      << (first >= 0 ? n[static_cast<size_t>(first)] : 0) << " times";
}

}  // namespace

TEST(KeptCopySchedule, IssueLayoutForwardAndInverse) {
  // Forward at 64 heads x 32768 x 128, lower 64 dims, bf16: 256 blocks of 128 steps, 8 groups a
  // row, exactly two passes per step. Inverse: 8192 blocks of 8 steps, one pass per step.
  KeptSchedule k;
  copies({64 * 32768, 8, 256, 256, 128, 256, 128}, k);
  EXPECT_EQ(k.per_thread, 2);
  EXPECT_EQ(k.rows_per_pass, 32);
  expect_each_once({64 * 32768, 8, 256, 256, 128, 256, 128});
  copies({64 * 32768, 8, 8192, 256, 8, 8192, 8}, k);
  EXPECT_EQ(k.per_thread, 1);
  expect_each_once({64 * 32768, 8, 8192, 256, 8, 8192, 8});
}

TEST(KeptCopySchedule, WarpgroupForwardIssueLayout) {
  // The warpgroup forward kernel at the same layout: 128 blocks (one per SM) of 64 steps, a ring
  // of kCopyMaxWide passes: exactly 8 passes per step, nothing left after the loop. With a
  // ring of 2 three quarters of the rows would be left to copy after the loop.
  using kvscope::kernels::cuda::kCopyMaxWide;
  KeptSchedule k;
  copies({64 * 32768, 8, 128, 256, 64, 128, 64, kCopyMaxWide}, k);
  EXPECT_EQ(k.per_thread, 8);
  EXPECT_EQ(int64_t(128) * 64 * k.per_thread * k.rows_per_pass, 64 * 32768);
  expect_each_once({64 * 32768, 8, 128, 256, 64, 128, 64, kCopyMaxWide});
  // Shorter last splits and a tail beyond the ring.
  expect_each_once({900000, 8, 11, 256, 9, 8, 3, kCopyMaxWide});
}

TEST(KeptCopySchedule, ShortLastSplitsAndCappedPasses) {
  // The last blocks run fewer steps; more rows than two passes a step carry (the tail).
  expect_each_once({4000, 8, 7, 256, 5, 6, 1});
  expect_each_once({60000, 15, 7, 256, 5, 4, 2});
  // 7 groups a row: 36 rows a pass, 4 threads idle.
  expect_each_once({600, 7, 1, 256, 5, 1, 5});
  expect_each_once({600, 14, 3, 256, 5, 2, 0});
  // Fewer rows than one pass holds, and one group a row.
  expect_each_once({5, 8, 3, 256, 2, 3, 2});
  expect_each_once({1000, 1, 2, 256, 3, 1, 1});
}

TEST(KeptCopySchedule, NothingToSpreadIsNoCopy) {
  EXPECT_EQ(spread(0, 8, 10, 256, 4).per_thread, 0);
  EXPECT_EQ(spread(100, 0, 10, 256, 4).per_thread, 0);
  EXPECT_EQ(spread(100, 8, 0, 256, 4).per_thread, 0);
  EXPECT_EQ(spread(100, 8, 10, 256, 0).per_thread, 0);
  EXPECT_EQ(spread(100, 300, 10, 256, 4).per_thread, 0);  // a row wider than a block
}
