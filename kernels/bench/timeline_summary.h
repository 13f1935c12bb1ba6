// Summaries of the Fourier decode's per-block stamps (DecodeTimeline, kernels/cuda/
// cuda_backend.h): for each kernel of the decode's chain, when its blocks started, finished
// waiting for the kernel before them and ended, in microseconds from the chain's first block.
// Plain C++, so it is tested without a GPU; kvscope-decode-timeline prints it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kvscope::kernels::bench {

// First (min), median and last (max) of some blocks' times (us), and how many blocks had one.
struct Spread {
  int64_t count = 0;
  double first = 0, median = 0, last = 0;
};

struct KernelTimeline {
  std::string name;
  int64_t blocks = 0;  // blocks with a start stamp
  int64_t sms = 0;     // distinct SMs they ran on
  Spread start, waited, end;
  Spread busy;        // end - start of each block
  Spread after_wait;  // end - waited, where a block's wait came before its end
};

// `stamps` holds names.size() kernels x blocks_per_kernel blocks x 4 fields (start, waited, end,
// SM; global-timer ns; 0 where not written). Blocks without a start stamp did not run. Throws
// std::invalid_argument when the size does not match or a block ends before it starts.
std::vector<KernelTimeline> summarize_timeline(const std::vector<uint64_t>& stamps,
                                               int64_t blocks_per_kernel,
                                               const std::vector<std::string>& names);

// One CSV line per block that ran: `run`, kernel name, block, SM, start, waited, end (us from
// the first block of any kernel; empty where not stamped). Same input and errors as
// summarize_timeline.
std::string timeline_csv(const std::vector<uint64_t>& stamps, int64_t blocks_per_kernel,
                         const std::vector<std::string>& names, int run);

// A fixed-width table of the summaries, one line per kernel that ran, "-" where a kernel has no
// stamp of a kind.
std::string format_timeline(const std::vector<KernelTimeline>& kernels);

}  // namespace kvscope::kernels::bench
