// kvscope calibrate and kvscope model --profile, end to end through the binary.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_runner.h"

using kvscope::testing::run_cli;

namespace {
// Builds without Google Benchmark (the ASan preset) cannot measure; calibrate says so.
bool built_without_bench(const kvscope::testing::CliResult& r) {
  return r.exit_code != 0 && r.err.find("built without Google Benchmark") != std::string::npos;
}
const std::string kShipped = std::string(KVSCOPE_SOURCE_DIR) + "/results/profiles/cpu-2core.json";
}  // namespace

TEST(CliModelProfile, ShippedCpuProfileDrivesTheModel) {
  const auto r = run_cli("model --model llama-3.1-8b --n 1k,4k --profile " + kShipped + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_NE(j.at("terms_source").get<std::string>().find("calibrated"), std::string::npos);
  const auto& rows = j.at("rows");
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) {
    EXPECT_GT(row.at("terms").at("t_sa_ms").get<double>(), 0.0);
    EXPECT_GT(row.at("terms").at("t_l_ms").get<double>(), 0.0);
    EXPECT_GT(row.at("terms").at("t_cos_ms").get<double>(), 0.0);
  }
  // Attention grows faster than linearly in N, the linear layer about linearly.
  const double sa1 = rows[0]["terms"]["t_sa_ms"], sa4 = rows[1]["terms"]["t_sa_ms"];
  EXPECT_GT(sa4 / sa1, 4.0);
  // The table form runs too, with the matching preset named explicitly.
  const auto t = run_cli("model --model llama-3.1-8b --gpu cpu-2core --profile " + kShipped);
  EXPECT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("calibrated"), std::string::npos);
}

TEST(CliModelProfile, ProfileFromAnotherDeviceIsRefused) {
  const auto r = run_cli("model --model llama-3.1-8b --gpu h100-sxm --profile " + kShipped);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--gpu"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cpu"), std::string::npos) << r.err;
}

TEST(CliModelProfile, MissingProfileIsAnError) {
  const auto r = run_cli("model --model llama-3.1-8b --profile /nonexistent.json");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/nonexistent.json"), std::string::npos) << r.err;
}

TEST(CliCalibrate, FitReportsResidualsOfTheShippedProfile) {
  const auto r = run_cli("calibrate --fit " + kShipped);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* family : {"attention_prefill", "attention_decode", "fourier_attention_decode",
                             "gemm", "cosine_rows", "copy"})
    EXPECT_NE(r.out.find(family), std::string::npos) << family;
  EXPECT_NE(r.out.find("rms res"), std::string::npos);
}

TEST(CliCalibrate, BadArgumentsExitTwo) {
  EXPECT_EQ(run_cli("calibrate --backend tpu --out /tmp/x.json").exit_code, 2);
  EXPECT_EQ(run_cli("calibrate --backend cpu").exit_code, 2);
  EXPECT_EQ(run_cli("calibrate --out /tmp/x.json").exit_code, 2);
}

// A real (filtered, so fast) measurement: the profile is Google Benchmark's JSON plus the
// device block, written whole.
TEST(CliCalibrate, WritesGoogleBenchmarkJsonWithDeviceBlock) {
  const std::string out = ::testing::TempDir() + "kvscope-calibrate-test.json";
  std::remove(out.c_str());
  const auto r = run_cli("calibrate --backend cpu --quick --filter '^copy/mib:16/' --out " + out);
  if (built_without_bench(r)) GTEST_SKIP() << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("copy/mib:16"), std::string::npos) << r.err;  // progress on stderr
  std::ifstream in(out);
  ASSERT_TRUE(in.good());
  const auto j = nlohmann::json::parse(in);
  EXPECT_TRUE(j.contains("context"));
  ASSERT_EQ(j.at("benchmarks").size(), 1u);
  EXPECT_EQ(j["benchmarks"][0]["time_unit"], "ms");
  EXPECT_GT(j["benchmarks"][0]["bytes_per_s"].get<double>(), 0.0);
  const auto& d = j.at("device");
  EXPECT_EQ(d.at("backend"), "cpu");
  EXPECT_GT(d.at("copy_bytes_per_s").get<double>(), 0.0);
  EXPECT_GT(d.at("gemm_flops_per_s_bf16").get<double>(), 0.0);
  EXPECT_FALSE(d.at("date").get<std::string>().empty());
  // Which implementations ran: the CPU backend's one switch, with its value.
  ASSERT_TRUE(d.contains("switches")) << d.dump();
  EXPECT_TRUE(d["switches"].contains("KVSCOPE_CPU_DCT")) << d.dump();
  std::remove(out.c_str());
}

TEST(CliCalibrate, CudaWithoutCudaFailsWithoutWriting) {
  const std::string out = ::testing::TempDir() + "kvscope-calibrate-cuda.json";
  std::remove(out.c_str());
  const auto r = run_cli("calibrate --backend cuda --quick --filter '^copy/mib:16/' --out " + out);
  if (r.exit_code == 0) GTEST_SKIP() << "a CUDA device is present here";
  if (built_without_bench(r)) GTEST_SKIP() << r.err;
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cuda"), std::string::npos) << r.err;
  EXPECT_FALSE(std::ifstream(out).good());
}
