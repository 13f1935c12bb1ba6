// The step benchmarks' input rotation (kernels/bench/step_bench.h): each point's rotated inputs
// must together exceed the last-level cache, and no copy may be used again before the others,
// or the step tables time operations on inputs left in the cache, which a step never finds.
#include <gtest/gtest.h>

#include <set>

#include "kernels/bench/step_bench.h"

using namespace kvscope::kernels::bench;

TEST(StepBench, RotatedCopiesTogetherExceedTheLastLevelCache) {
  // kvscope-tiny's weights (64 KiB .. 1.4 MB), attention's K and V, an 8B model's 50 MB QKV.
  for (size_t bytes : {size_t{8} << 10, size_t{64} << 10, size_t{256} << 10, size_t{1409024},
                       size_t{50331648}, size_t{100} << 20}) {
    const int n = rotation_copies(bytes);
    EXPECT_GE(static_cast<size_t>(n) * bytes, kStepRotateBytes) << bytes;
    EXPECT_LT(static_cast<size_t>(n - 1) * bytes, kStepRotateBytes) << bytes;  // no more than that
  }
  // Far more than 32 MB (the CPU profile's L3) and 50 MB (an H100's L2).
  EXPECT_GE(kStepRotateBytes, size_t{8} * (size_t{50} << 20));
  // An operand larger than the rotation is used alone; a tiny one is capped.
  EXPECT_EQ(rotation_copies(size_t{1} << 30), 1);
  EXPECT_EQ(rotation_copies(16), static_cast<int>(kStepMaxCopies));
  EXPECT_EQ(rotation_copies(0), 1);
}

TEST(StepBench, CopyRotationUsesEveryCopyBeforeAnyAgain) {
  // More copies than calls in one timed run (64 at most): the next run goes on where the last
  // one stopped instead of starting over at copy 0.
  const int copies = 500;
  CopyRotation rot(copies);
  std::set<int> seen;
  for (int run = 0; run < 7; ++run)
    for (int k = 0; k < 64; ++k) EXPECT_TRUE(seen.insert(rot.next()).second);
  for (int k = static_cast<int>(seen.size()); k < copies; ++k) rot.next();
  EXPECT_EQ(rot.next(), 0);  // every copy used once, then the first again
  CopyRotation one(1);
  EXPECT_EQ(one.next(), 0);
  EXPECT_EQ(one.next(), 0);
}
