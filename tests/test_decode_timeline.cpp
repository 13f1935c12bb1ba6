// kvscope-decode-timeline's summary and CSV (kernels/bench/timeline_summary.h) of hand-made
// stamps: which blocks count, the times from the first block, the spreads, and the errors on
// bad input.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/bench/timeline_summary.h"

using namespace kvscope::kernels::bench;

namespace {

constexpr int64_t kBlocks = 4;

// stamps[kernel][block] = {start, waited, end, sm}, ns; unset blocks stay 0 (did not run).
struct Stamps {
  std::vector<uint64_t> v;
  explicit Stamps(int kernels) : v(size_t(kernels) * kBlocks * 4, 0) {}
  void set(int k, int b, uint64_t start, uint64_t waited, uint64_t end, uint64_t sm) {
    uint64_t* r = &v[size_t((k * kBlocks + b) * 4)];
    r[0] = start;
    r[1] = waited;
    r[2] = end;
    r[3] = sm;
  }
};

}  // namespace

TEST(DecodeTimeline, SpreadsCountFromTheFirstBlockOfAnyKernel) {
  Stamps s(3);
  // Kernel 0: three blocks on two SMs, no wait.
  s.set(0, 0, 1000, 0, 5000, 0);
  s.set(0, 1, 2000, 0, 6000, 1);
  s.set(0, 3, 4000, 0, 9000, 1);  // block 2 did not run
  // Kernel 1: two blocks that waited; kernel 2 did not run.
  s.set(1, 0, 3000, 9500, 11000, 2);
  s.set(1, 1, 3500, 10000, 12000, 3);
  const auto t = summarize_timeline(s.v, kBlocks, {"a", "b", "c"});
  ASSERT_EQ(t.size(), 3u);

  EXPECT_EQ(t[0].name, "a");
  EXPECT_EQ(t[0].blocks, 3);
  EXPECT_EQ(t[0].sms, 2);
  EXPECT_EQ(t[0].start.count, 3);
  EXPECT_DOUBLE_EQ(t[0].start.first, 0.0);
  EXPECT_DOUBLE_EQ(t[0].start.median, 1.0);
  EXPECT_DOUBLE_EQ(t[0].start.last, 3.0);
  EXPECT_DOUBLE_EQ(t[0].end.first, 4.0);
  EXPECT_DOUBLE_EQ(t[0].end.median, 5.0);
  EXPECT_DOUBLE_EQ(t[0].end.last, 8.0);
  EXPECT_DOUBLE_EQ(t[0].busy.median, 4.0);  // 4, 4, 5 us
  EXPECT_DOUBLE_EQ(t[0].busy.last, 5.0);
  EXPECT_EQ(t[0].waited.count, 0);
  EXPECT_EQ(t[0].after_wait.count, 0);

  EXPECT_EQ(t[1].blocks, 2);
  EXPECT_EQ(t[1].sms, 2);
  EXPECT_DOUBLE_EQ(t[1].start.first, 2.0);
  EXPECT_DOUBLE_EQ(t[1].start.median, 2.0);  // the lower of two
  EXPECT_DOUBLE_EQ(t[1].start.last, 2.5);
  EXPECT_DOUBLE_EQ(t[1].waited.first, 8.5);
  EXPECT_DOUBLE_EQ(t[1].waited.last, 9.0);
  EXPECT_DOUBLE_EQ(t[1].end.last, 11.0);
  EXPECT_DOUBLE_EQ(t[1].after_wait.median, 1.5);
  EXPECT_DOUBLE_EQ(t[1].after_wait.last, 2.0);

  EXPECT_EQ(t[2].blocks, 0);
  EXPECT_EQ(t[2].start.count, 0);
}

TEST(DecodeTimeline, AWaitAfterTheBlocksWorkCountsAsAWaitOnly) {
  // The sink-and-window block that waits for the middle kernel before it exits stamps its end
  // of work first, then its wait.
  Stamps s(1);
  s.set(0, 0, 1000, 20000, 3000, 5);
  s.set(0, 1, 1000, 0, 4000, 6);
  const auto t = summarize_timeline(s.v, kBlocks, {"edge"});
  EXPECT_EQ(t[0].waited.count, 1);
  EXPECT_DOUBLE_EQ(t[0].waited.last, 19.0);
  EXPECT_EQ(t[0].after_wait.count, 0);
  EXPECT_DOUBLE_EQ(t[0].end.last, 3.0);
}

TEST(DecodeTimeline, TableListsTheKernelsThatRan) {
  Stamps s(2);
  s.set(0, 0, 1000, 0, 2000, 0);
  const std::string table = format_timeline(summarize_timeline(s.v, kBlocks, {"middle", "edge"}));
  EXPECT_NE(table.find("middle"), std::string::npos);
  EXPECT_EQ(table.find("edge"), std::string::npos);
  EXPECT_NE(table.find("0.0 / 0.0 / 0.0"), std::string::npos);  // its start
  EXPECT_NE(table.find("1.0 / 1.0"), std::string::npos);        // its busy time
  EXPECT_NE(table.find(" - "), std::string::npos);              // no wait stamp
}

TEST(DecodeTimeline, CsvHasALinePerBlockThatRan) {
  Stamps s(2);
  s.set(0, 1, 2000, 0, 3500, 7);
  s.set(1, 0, 1500, 4000, 6000, 9);
  EXPECT_EQ(timeline_csv(s.v, kBlocks, {"middle", "finish"}, 3),
            "3,middle,1,7,0.500,,2.000\n"
            "3,finish,0,9,0.000,2.500,4.500\n");
}

TEST(DecodeTimeline, RefusesStampsOfTheWrongSizeOrOrder) {
  Stamps s(2);
  EXPECT_THROW(summarize_timeline(s.v, kBlocks, {"one"}), std::invalid_argument);
  EXPECT_THROW(summarize_timeline(s.v, 0, {"a", "b"}), std::invalid_argument);
  s.set(1, 2, 5000, 0, 4000, 0);
  try {
    summarize_timeline(s.v, kBlocks, {"a", "b"});
    FAIL() << "an end before its start was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("b block 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(timeline_csv(s.v, kBlocks, {"a", "b"}, 0), std::invalid_argument);
  EXPECT_THROW(timeline_csv(s.v, kBlocks, {"a"}, 0), std::invalid_argument);
}
