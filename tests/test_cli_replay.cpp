#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_runner.h"

using kvscope::testing::run_cli;
namespace fs = std::filesystem;

namespace {

const std::string kTrace =
    std::string(KVSCOPE_SOURCE_DIR) + "/traces/mooncake/conversation_trace.jsonl";

std::string temp_dir(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("kvscope_cli_replay_" + name);
  fs::remove_all(d);
  return d.string();
}

std::string write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

std::vector<std::string> lines_of(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

TEST(CliReplay, PrintsTheSummaryOfEveryMethod) {
  const auto r = run_cli("replay " + kTrace + " --model llama-3.1-8b --max-requests 300");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"baseline", "fourier", "ccv", "fourier_ccv", "TTFT p50/p90/p99",
                        "300 requests", "busy paper", "saved full"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
}

TEST(CliReplay, JsonAndTheOutputFilesAgree) {
  const std::string dir = temp_dir("out");
  const auto r = run_cli("replay " + kTrace +
                         " --model llama-2-7b --max-requests 200 --method baseline,ccv "
                         "--threshold aggressive --ccv-budget 16GiB --json --out " +
                         dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("trace").at("requests"), 200);
  EXPECT_EQ(j.at("run").at("model"), "llama-2-7b");
  EXPECT_DOUBLE_EQ(j.at("run").at("ccv").at("threshold").get<double>(), 0.7);
  ASSERT_EQ(j.at("methods").size(), 2u);
  const auto& ccv = j.at("methods").at(1);
  EXPECT_EQ(ccv.at("method"), "ccv");
  const double p = ccv.at("ccv").at("hit_rate").get<double>();
  EXPECT_GE(p, 0.0);
  EXPECT_LE(p, 1.0);
  EXPECT_TRUE(ccv.at("time_saved_vs_baseline_ms").is_number());
  for (const char* k : {"p50", "p90", "p99", "mean"}) EXPECT_TRUE(ccv.at("ttft_ms").contains(k));

  // The files say the same as stdout, and the tables have a row per step and per request.
  std::ifstream sj(dir + "/summary.json");
  const auto file = nlohmann::json::parse(sj);
  EXPECT_EQ(file.at("methods"), j.at("methods"));
  int64_t steps = 0;
  for (const auto& m : j.at("methods")) steps += m.at("steps").get<int64_t>();
  EXPECT_EQ(static_cast<int64_t>(lines_of(dir + "/steps.csv").size()), steps + 1);
  EXPECT_EQ(lines_of(dir + "/requests.csv").size(), 2u * 200 + 1);
  EXPECT_EQ(lines_of(dir + "/summary.csv").size(), 3u);
  std::ifstream stj(dir + "/steps.json");
  const auto st = nlohmann::json::parse(stj);
  EXPECT_EQ(
      static_cast<int64_t>(st.at("baseline").at("rows").size() + st.at("ccv").at("rows").size()),
      steps);
  std::ifstream rqj(dir + "/requests.json");
  const auto rq = nlohmann::json::parse(rqj);
  EXPECT_EQ(rq.at("ccv").at("rows").size(), 200u);
  EXPECT_EQ(rq.at("ccv").at("columns").at(0), "id");
  EXPECT_GE(lines_of(dir + "/hit_rate.csv").size(), 2u);
  for (const auto& e : fs::directory_iterator(dir))  // nothing temporary left behind
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(CliReplay, ABadRecordStopsTheRunNamingFileLineAndField) {
  const std::string path =
      write(::testing::TempDir() + "/kvscope_bad.jsonl",
            "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 2}\n"
            "{\"timestamp\": 5, \"input_length\": -3, \"output_length\": 2}\n"
            "{\"timestamp\": 9, \"input_length\": 10, \"output_length\": 2}\n");
  const std::string dir = temp_dir("bad");
  const auto r = run_cli("replay " + path + " --model llama-2-7b --out " + dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(path + ":2: input_length:"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir));  // nothing written for a failed run

  const auto skip = run_cli("replay " + path + " --model llama-2-7b --on-bad-record skip --json");
  ASSERT_EQ(skip.exit_code, 0) << skip.err;
  const auto j = nlohmann::json::parse(skip.out);
  EXPECT_EQ(j.at("trace").at("skipped_records"), 1);
  EXPECT_EQ(j.at("trace").at("requests"), 2);
}

TEST(CliReplay, MissingAndUnreadableTracesFail) {
  const auto r = run_cli("replay /nonexistent/trace.jsonl --model llama-2-7b");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/trace.jsonl"), std::string::npos) << r.err;
  const std::string odd = write(::testing::TempDir() + "/kvscope_odd.txt", "hello\n");
  const auto f = run_cli("replay " + odd + " --model llama-2-7b");
  EXPECT_EQ(f.exit_code, 1);
  EXPECT_NE(f.err.find("--format"), std::string::npos) << f.err;
}

TEST(CliReplay, BadArgumentsExitTwo) {
  struct Case {
    std::string args;
    const char* says;
  };
  const std::string t = " " + kTrace + " --model llama-2-7b";
  const Case cases[] = {
      {"replay --model llama-2-7b", "--trace"},
      {"replay" + t + " --method nope", "--method"},
      {"replay" + t + " --rate-scale 0", "--rate-scale"},
      {"replay" + t + " --max-batch 0", "--max-batch"},
      {"replay" + t + " --token-budget -5", "--token-budget"},
      {"replay" + t + " --gpu-mem 1GiB", "--gpu-mem"},
      {"replay" + t + " --format xml", "--format"},
      {"replay" + t + " --on-bad-record maybe", "--on-bad-record"},
      {"replay" + t + " --threshold 1.5", "--threshold"},
      {"replay" + t + " --method baseline,baseline", "--method"},
      {"replay" + t + " --max-requests 0", "--max-requests"},
  };
  for (const auto& c : cases) {
    const auto r = run_cli(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args << "\n" << r.err;
  }
}

TEST(CliReplay, HelpExplainsEveryOption) {
  const auto r = run_cli("replay --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* opt :
       {"--model", "--method", "--gpu", "--gpu-mem", "--threshold", "--out", "--json",
        "--rate-scale", "--max-batch", "--token-budget", "--no-chunked-prefill", "--on-bad-record",
        "--format", "--ccv-eviction", "(tokens)", "(bytes"})
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
}

TEST(CliReplay, GpuMemoryIsTheProfilesDeviceUnlessGiven) {
  // An H200 profile prices the run and, without --gpu-mem, sizes it too: the memory the
  // calibration recorded for its device, not the default --gpu preset's (an H100's 80 GiB).
  const std::string profile =
      std::string(KVSCOPE_SOURCE_DIR) + "/results/profiles/h200-llama-3.1-8b.json";
  nlohmann::json p;
  std::ifstream(profile) >> p;
  const int64_t device_bytes = p.at("device").at("memory_bytes").get<int64_t>();
  const std::string base =
      "replay " + kTrace + " --model llama-3.1-8b --max-requests 20 --method baseline --json ";
  const auto r = run_cli(base + "--profile " + profile);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).at("run").at("gpu_memory_bytes"), device_bytes);
  const auto g = run_cli(base + "--profile " + profile + " --gpu-mem 100GiB");
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_EQ(nlohmann::json::parse(g.out).at("run").at("gpu_memory_bytes"), int64_t{100} << 30);
  const auto roof = run_cli(base);
  ASSERT_EQ(roof.exit_code, 0) << roof.err;
  EXPECT_EQ(nlohmann::json::parse(roof.out).at("run").at("gpu_memory_bytes"), int64_t{80} << 30);
}
