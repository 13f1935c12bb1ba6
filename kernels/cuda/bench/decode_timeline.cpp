// kvscope-decode-timeline: where the Fourier decode's time goes, block by block. Runs the decode
// at one shape (by default the issue's: batch 8, 32 query / 8 KV heads, head dim 128, N = 32768,
// the lower 64 dims compressed to M = 256) with the backend options of the environment
// (cuda_options_from_env, e.g. KVSCOPE_CUDA_SIMPLE_ATTENTION=1), and prints for each timed call
// (L2 flushed, CUDA events) its time and, for each kernel of the chain (P, the middle splits, the
// sink and window, the finish and, where it takes two launches, the finish's apply), when its
// blocks started, finished waiting for the kernel before them and ended
// (kernels/bench/timeline_summary.h). The stamps exist only in a build configured with
// -DKVSCOPE_CUDA_TIMELINE=ON; elsewhere this says so and exits with 1.
//   kvscope-decode-timeline [--batch B] [--q-heads H] [--kv-heads K] [--head-dim D]
//       [--tokens N] [--cdims C] [--m M] [--runs R] [--csv]
// --csv prints every block's stamps (us from the call's first block) instead of the summary.
#include <cstdio>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/bench/bench.h"
#include "kernels/bench/timeline_summary.h"
#include "kernels/cuda/cuda_backend.h"

using namespace kvscope;
using namespace kvscope::kernels;

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* const kUsage =
    "usage: kvscope-decode-timeline [--batch B] [--q-heads H] [--kv-heads K] [--head-dim D]\n"
    "                               [--tokens N] [--cdims C] [--m M] [--runs R] [--csv]\n";

struct Args {
  std::map<std::string, int64_t> n = {{"--batch", 8},      {"--q-heads", 32},   {"--kv-heads", 8},
                                      {"--head-dim", 128}, {"--tokens", 32768}, {"--cdims", 64},
                                      {"--m", 256},        {"--runs", 3}};
  bool csv = false;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--csv") {
      a.csv = true;
      continue;
    }
    if (flag == "--help" || flag == "-h") throw UsageError("");
    auto it = a.n.find(flag);
    if (it == a.n.end()) throw UsageError("unknown option '" + flag + "'");
    if (i + 1 >= argc) throw UsageError(flag + ": missing its value");
    const std::string v = argv[++i];
    size_t used = 0;
    long long x = 0;
    try {
      x = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != v.size() || x <= 0)
      throw UsageError(flag + ": expected a positive integer, got '" + v + "'");
    it->second = x;
  }
  return a;
}

const std::vector<std::string> kKernelNames = {"P", "middle", "edge", "finish", "apply"};

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    if (!cuda_decode_timeline_built()) {
      std::cerr << "kvscope-decode-timeline: this build has no stamps; configure with "
                   "-DKVSCOPE_CUDA_TIMELINE=ON\n";
      return 1;
    }
    auto b = make_cuda_backend_with(cuda_options_from_env());
    const DType t = DType::bf16;
    const AttentionArgs att{a.n.at("--batch"),
                            a.n.at("--q-heads"),
                            a.n.at("--kv-heads"),
                            a.n.at("--head-dim"),
                            1,
                            a.n.at("--tokens"),
                            true,
                            t};
    const KvShape s{att.batch, att.kv_heads, att.tokens, att.head_dim, t};
    const FourierLayout f = bench::layout_of(a.n.at("--cdims"), a.n.at("--m"));
    const size_t qn = size_t(att.batch * att.q_heads * att.head_dim);
    auto q = bench::random_buffer(*b, t, qn, 1), o = b->alloc(qn * 2);
    FourierTensor k = alloc_fourier_tensor(*b, s, f), v = alloc_fourier_tensor(*b, s, f);
    {
      auto kv = bench::random_buffer(*b, t, size_t(s.elements()), 2);
      b->fourier_compress(s, f, *kv, k);
      b->fourier_compress(s, f, *kv, v);
    }
    const auto call = [&] { b->fourier_attention(att, f, *q, k, v, *o); };
    for (int i = 0; i < 3; ++i) call();  // code loaded, scratch allocated
    b->synchronize();
    auto stamps = b->alloc(DecodeTimeline::bytes());
    std::vector<uint64_t> host(DecodeTimeline::bytes() / sizeof(uint64_t));
    if (a.csv) std::cout << "run,kernel,block,sm,start_us,waited_us,end_us\n";
    for (int run = 0; run < a.n.at("--runs"); ++run) {
      b->fill(*stamps, 0);
      cuda_decode_timeline(*b, stamps.get());
      const double ms = b->time_ms(call, 0, 1);
      cuda_decode_timeline(*b, nullptr);
      b->download(*stamps, host.data(), DecodeTimeline::bytes());
      if (a.csv) {
        std::cout << bench::timeline_csv(host, DecodeTimeline::kBlocks, kKernelNames, run);
        continue;
      }
      std::printf("run %d: %.4f ms (CUDA events, L2 flushed); times in us from the first block\n",
                  run, ms);
      std::cout << bench::format_timeline(
                       bench::summarize_timeline(host, DecodeTimeline::kBlocks, kKernelNames))
                << '\n';
    }
    return 0;
  } catch (const UsageError& e) {
    if (!*e.what()) {  // --help
      std::cout << kUsage;
      return 0;
    }
    std::cerr << "kvscope-decode-timeline: " << e.what() << '\n' << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "kvscope-decode-timeline: " << e.what() << '\n';
    return 1;
  }
}
