// How fast the replay is, and that its cost grows with the trace while its memory does not.
//
//   BM_ReplayWholeTrace/<m>     the bundled Mooncake conversation trace (12,031 requests) with
//                               one method (m = 0 baseline, 1 fourier, 2 ccv, 3 fourier_ccv) or
//                               all four together (m = 4), llama-3.1-8b on the H100 roofline
//   BM_ReplayConcatenated/<k>   k copies of the trace one after the other (timestamps shifted by
//                               the trace's span, block hashes by their range, so the copies are
//                               alike but share nothing), all four methods, at half the trace's
//                               arrival rate so that the simulated GPU keeps up and its queue
//                               stays bounded: then only the replay's own memory is measured
// Counters: requests and steps per iteration, and peak_heap_bytes, the most heap the replay
// held above what was live when it started (counted by this binary's operator new/delete).
// Run: build/release/sim/bench_replay [--benchmark_filter=...] [--benchmark_format=json]
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>

#include "sim/replay/replay.h"

namespace {

int64_t g_live_bytes = 0, g_peak_bytes = 0;

void count(void* p) {
  g_live_bytes += static_cast<int64_t>(malloc_usable_size(p));
  if (g_live_bytes > g_peak_bytes) g_peak_bytes = g_live_bytes;
}
void uncount(void* p) { g_live_bytes -= static_cast<int64_t>(malloc_usable_size(p)); }

}  // namespace

void* operator new(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  count(p);
  return p;
}
// This operator new hands out malloc's memory, so free() is its matching release.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept {
  if (p == nullptr) return;
  uncount(p);
  std::free(p);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

namespace {

using namespace kvscope;

std::string bundled_trace() {
  const char* env = std::getenv("KVSCOPE_TRACE");
  return env ? env : KVSCOPE_SOURCE_DIR "/traces/mooncake/conversation_trace.jsonl";
}

// k copies of the trace, written once per process into the temp directory.
std::string concatenated(int k) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("kvscope-bench-concat-" + std::to_string(k) + "x.jsonl");
  if (std::filesystem::exists(path)) return path.string();
  std::vector<TraceRecord> recs;
  {
    auto reader = open_trace(bundled_trace(), TraceFormat::automatic, BadRecordPolicy::stop);
    TraceRecord r;
    while (reader->next(r)) recs.push_back(r);
  }
  double span = 0;
  uint64_t hashes = 0;
  for (const auto& r : recs) {
    span = std::max(span, r.timestamp_ms);
    for (uint64_t h : r.hash_ids) hashes = std::max(hashes, h + 1);
  }
  span += 1000;  // a second between copies
  const std::string tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp);
    for (int c = 0; c < k; ++c)
      for (const auto& r : recs) {
        out << "{\"timestamp\": " << r.timestamp_ms + c * span
            << ", \"input_length\": " << r.input_tokens
            << ", \"output_length\": " << r.output_tokens << ", \"hash_ids\": [";
        for (size_t i = 0; i < r.hash_ids.size(); ++i)
          out << (i ? ", " : "") << r.hash_ids[i] + static_cast<uint64_t>(c) * hashes;
        out << "]}\n";
      }
  }
  std::filesystem::rename(tmp, path);
  return path.string();
}

ReplayConfig bench_config() {
  ReplayConfig c;
  c.model = load_model("llama-3.1-8b");
  c.keep_steps = false;  // the tables grow with the trace; the benchmark measures the replay
  c.keep_requests = false;
  return c;
}

void run(benchmark::State& state, const std::string& trace, const ReplayConfig& c) {
  const RooflineCostModel ops(hardware_preset("h100-sxm"));
  int64_t requests = 0, steps = 0, peak = 0;
  for (auto _ : state) {
    const int64_t live_before = g_live_bytes;
    g_peak_bytes = g_live_bytes;
    const ReplayResult r = run_replay(trace, c, ops);
    peak = std::max(peak, g_peak_bytes - live_before);
    requests = r.trace.requests;
    steps = 0;
    for (const auto& m : r.methods) steps += m.summary.steps;
    benchmark::DoNotOptimize(r.methods.data());
  }
  state.counters["requests"] = static_cast<double>(requests);
  state.counters["steps"] = static_cast<double>(steps);
  state.counters["peak_heap_bytes"] = static_cast<double>(peak);
  state.counters["requests_per_s"] = benchmark::Counter(
      static_cast<double>(requests), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_ReplayWholeTrace(benchmark::State& state) {
  ReplayConfig c = bench_config();
  if (state.range(0) < 4) c.methods = {all_methods()[static_cast<size_t>(state.range(0))]};
  state.SetLabel(state.range(0) < 4 ? std::string(method_name(c.methods[0])) : "all four");
  run(state, bundled_trace(), c);
}
BENCHMARK(BM_ReplayWholeTrace)->DenseRange(0, 4)->Unit(benchmark::kMillisecond);

void BM_ReplayConcatenated(benchmark::State& state) {
  const int k = static_cast<int>(state.range(0));
  const std::string trace = concatenated(k);
  ReplayConfig c = bench_config();
  c.rate_scale = 0.5;
  state.SetLabel(std::to_string(k) + "x, all four, rate x0.5");
  run(state, trace, c);
}
BENCHMARK(BM_ReplayConcatenated)->Arg(1)->Arg(4)->Arg(16)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
