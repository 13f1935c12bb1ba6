// kvscope check end to end on the CPU backend: the first requests of the Mooncake trace, shrunk
// (--length-scale) for kvscope-tiny, every method, a few steps each, priced by the kvscope-tiny
// step tables measured on a 2-core CPU (results/profiles/cpu-2core-kvscope-tiny.json). KV memory
// must match the memory model to the byte; the outputs must be complete and consistent, and
// check_summary.json must follow the schema `kvscope plan --check` reads. (Latency accuracy on a
// shared CI machine is recorded in sim/FIDELITY.md, not asserted.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "cli_runner.h"

using kvscope::testing::run_cli;
namespace fs = std::filesystem;

namespace {

const std::string kSource = KVSCOPE_SOURCE_DIR;
const std::string kTrace = kSource + "/traces/mooncake/conversation_trace.jsonl";
const std::string kProfile = kSource + "/results/profiles/cpu-2core-kvscope-tiny.json";
// Sanitizer builds run the kernels unoptimised, ~100x slower: they check fewer, smaller steps.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif
constexpr int kSteps = kSanitized ? 2 : 6;  // per method
// The tiny model's configuration the profile was measured for (see sim/FIDELITY.md).
const std::string kTiny =
    std::string(
        " --model kvscope-tiny --l-eff 2 --fourier-m 32 --ccv-budget 16MiB --gpu-mem 64MiB"
        " --max-batch 8 --length-scale 0.015625 --token-budget ") +
    (kSanitized ? "32 --warmup 0" : "128");

std::vector<std::string> lines_of(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

TEST(CliCheck, RunsEveryMethodsStepsWithExactKvMemory) {
  const fs::path out = fs::path(::testing::TempDir()) / "kvscope_cli_check";
  fs::remove_all(out);
  const auto r = run_cli("check " + kTrace + kTiny + " --profile " + kProfile +
                         " --backend cpu --requests 8 --max-steps " + std::to_string(kSteps) +
                         " --reps 1 --quiet --out " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("step latency"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("worst steps"), std::string::npos);

  for (const char* f :
       {"steps.csv", "summary.txt", "check_summary.json", "check.json", "pred_vs_meas.svg"})
    EXPECT_TRUE(fs::exists(out / f)) << f;

  nlohmann::json s;
  std::ifstream(out / "check_summary.json") >> s;
  EXPECT_EQ(s.at("kvscope_check"), 1);
  EXPECT_EQ(s.at("model"), "kvscope-tiny");
  EXPECT_EQ(s.at("backend"), "cpu");
  EXPECT_EQ(s.at("requests"), 8);
  for (const char* k : {"device", "date", "command", "trace"}) EXPECT_TRUE(s.at(k).is_string());
  std::set<std::string> methods;
  int64_t steps_all = 0;
  for (const auto& l : s.at("latency")) {
    methods.insert(l.at("method").get<std::string>());
    const double med = l.at("median_rel_error"), p90 = l.at("p90_rel_error"),
                 max = l.at("max_rel_error");
    EXPECT_LE(med, p90);
    EXPECT_LE(p90, max);
    EXPECT_GE(med, 0.0);
    EXPECT_GT(l.at("steps").get<int64_t>(), 0);
    if (l.at("step_kind") == "all") steps_all += l.at("steps").get<int64_t>();
  }
  EXPECT_EQ(methods, (std::set<std::string>{"baseline", "fourier", "ccv", "fourier_ccv"}));
  ASSERT_EQ(s.at("memory").size(), 4u);
  for (const auto& m : s.at("memory")) {
    EXPECT_GT(m.at("predicted_bytes").get<int64_t>(), 0);
    EXPECT_EQ(m.at("predicted_bytes"), m.at("allocated_bytes")) << m.dump();
  }

  // Every step run is a CSV row, with KV memory equal to the byte and a positive time.
  const auto rows = lines_of(out / "steps.csv");
  ASSERT_EQ(static_cast<int64_t>(rows.size()), 1 + steps_all);
  EXPECT_EQ(steps_all, 4 * kSteps);
  nlohmann::json full;
  std::ifstream(out / "check.json") >> full;
  for (const auto& m : full.at("memory")) {
    EXPECT_EQ(m.at("equal_steps"), m.at("steps"));
    EXPECT_EQ(m.at("max_abs_diff_bytes"), 0);
    EXPECT_EQ(m.at("weights_predicted_bytes"), m.at("weights_allocated_bytes"));
  }
  for (const auto& w : full.at("worst_steps")) EXPECT_GT(w.at("measured_ms").get<double>(), 0.0);
  std::ifstream svg(out / "pred_vs_meas.svg");
  std::string first;
  std::getline(svg, first);
  EXPECT_EQ(first.rfind("<svg", 0), 0u);

  // --reprice with the same cost model gives back the same predictions for the same steps;
  // with another (the roofline) it keeps the measurements and prices anew.
  const fs::path again = out / "again";
  const auto rp = run_cli("check " + kTrace + kTiny + " --profile " + kProfile + " --reprice " +
                          (out / "steps.jsonl").string() + " --out " + again.string());
  ASSERT_EQ(rp.exit_code, 0) << rp.err;
  EXPECT_EQ(lines_of(again / "steps.csv"), rows);
  const auto roof = run_cli("check " + kTrace + kTiny + " --gpu cpu-2core --reprice " +
                            (out / "steps.jsonl").string() + " --json");
  ASSERT_EQ(roof.exit_code, 0) << roof.err;
  const auto rj = nlohmann::json::parse(roof.out);
  EXPECT_EQ(rj.at("memory"), s.at("memory"));
  EXPECT_NE(rj.at("latency"), s.at("latency"));
}

// The GPU checks shipped in results/fidelity/ (sim/FIDELITY.md): the recorded steps, priced again
// with the shipped profile, give the recorded check summary, so its figures are the model's as
// it stands and not those of an earlier build.
TEST(CliCheck, ShippedGpuChecksRepriceToTheirSummaries) {
  for (const std::string gpu : {"h100", "h200"}) {
    SCOPED_TRACE(gpu);
    const std::string dir = kSource + "/results/fidelity/" + gpu + "-llama-3.1-8b";
    const auto r = run_cli("check " + kTrace + " --model llama-3.1-8b --profile " + kSource +
                           "/results/profiles/" + gpu + "-llama-3.1-8b.json --reprice " + dir +
                           "/steps.jsonl --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto got = nlohmann::json::parse(r.out);
    nlohmann::json want;
    std::ifstream(dir + "/check_summary.json") >> want;
    EXPECT_EQ(got.at("device"), want.at("device"));
    EXPECT_EQ(got.at("memory"), want.at("memory"));
    ASSERT_EQ(got.at("latency").size(), want.at("latency").size());
    for (size_t i = 0; i < want.at("latency").size(); ++i) {
      const auto &g = got["latency"][i], &w = want["latency"][i];
      EXPECT_EQ(g.at("method"), w.at("method"));
      EXPECT_EQ(g.at("step_kind"), w.at("step_kind"));
      EXPECT_EQ(g.at("steps"), w.at("steps"));
      for (const char* k : {"median_rel_error", "p90_rel_error", "max_rel_error"})
        EXPECT_NEAR(g.at(k).get<double>(), w.at(k).get<double>(), 1e-12) << i << " " << k;
    }
  }
}

TEST(CliCheck, BadArgumentsExitTwo) {
  EXPECT_EQ(run_cli("check " + kTrace + kTiny + " --backend tpu").exit_code, 2);
  EXPECT_EQ(run_cli("check " + kTrace + kTiny + " --requests 0").exit_code, 2);
  EXPECT_EQ(run_cli("check " + kTrace + kTiny + " --max-steps -1").exit_code, 2);
  // The trace-format, scheduler and method options it shares with replay and plan.
  for (const char* bad : {" --format xml", " --method ccv,ccv", " --max-batch 0"}) {
    const auto r = run_cli("check " + kTrace + kTiny + bad + " --quiet");
    EXPECT_EQ(r.exit_code, 2) << bad << "\n" << r.err;
    EXPECT_NE(r.err.find(std::string(bad).substr(1, std::string(bad).find(' ', 1) - 1)),
              std::string::npos)
        << bad << "\n"
        << r.err;
  }
  EXPECT_EQ(run_cli("check " + kTrace + " --model no-such-model").exit_code, 2);
  // A bad trace is a failed run naming the file.
  const fs::path bad = fs::path(::testing::TempDir()) / "kvscope_check_bad.jsonl";
  std::ofstream(bad) << "{\"timestamp\": 0, \"input_length\": -5, \"output_length\": 1}\n";
  const auto r = run_cli("check " + bad.string() + kTiny + " --quiet");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(bad.string()), std::string::npos) << r.err;
}
