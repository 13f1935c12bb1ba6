#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_runner.h"

using kvscope::testing::run_cli;

// An independent writing of the paper's formula, to check the CLI end to end.
static double t_ccv(double sa, double l, double cos, double L, double le, double p) {
  return le * sa + l + (L - le) * (p * cos + (1 - p) * (sa + l));
}

TEST(CliModel, ExplicitTermsReproduceThePaperFormula) {
  const auto r = run_cli(
      "model --model llama-2-7b --n 1024 --p 0.37 --l-eff 6 "
      "--t-sa 1.234567 --t-l 0.456789 --t-cos 0.0123 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto& row = j.at("rows").at(0);
  EXPECT_EQ(row.at("n"), 1024);
  const double expect = t_ccv(1.234567, 0.456789, 0.0123, 32, 6, 0.37);
  EXPECT_NEAR(row.at("t_ccv_ms").get<double>() / expect, 1.0, 1e-9);
  EXPECT_NEAR(row.at("t_tran_ms").get<double>() / (32 * 1.234567), 1.0, 1e-9);
  EXPECT_NEAR(row.at("speedup").get<double>() / (32 * 1.234567 / expect), 1.0, 1e-9);
  for (const char* k : {"baseline", "fourier", "ccv", "fourier_ccv"})
    EXPECT_TRUE(row.at("kv_bytes").contains(k)) << k;
  EXPECT_EQ(row.at("kv_bytes").at("baseline").get<int64_t>(), int64_t{1024} * 524288);
}

TEST(CliModel, RefNScalesTermsToEachLength) {
  const auto r = run_cli(
      "model --model llama-2-7b --n 1024,2048 --p 0.5 --l-eff 8 --t-sa 1 "
      "--t-l 0.5 --t-cos 0.1 --ref-n 1024 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = nlohmann::json::parse(r.out).at("rows");
  EXPECT_NEAR(rows.at(1).at("t_ccv_ms").get<double>() / t_ccv(4, 1, 0.2, 32, 8, 0.5), 1.0, 1e-9);
}

TEST(CliModel, RooflineTableRuns) {
  const auto r = run_cli("model --model llama-3.1-8b --n 1k,32k");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("32768"), std::string::npos);
  EXPECT_NE(r.out.find("T_ccv"), std::string::npos);
}

TEST(CliModel, HelpExplainsEveryOption) {
  const auto r = run_cli("model --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* opt : {"--model", "--n", "--p", "--l-eff", "--d2", "--t-sa", "--t-l", "--t-cos",
                          "--fourier-m", "--json", "(ms)", "(tokens)"})
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
}

TEST(CliModel, BadArgumentsExitTwoWithAMessage) {
  struct Case {
    const char* args;
    const char* says;
  };
  const Case cases[] = {
      {"model", "--model"},
      {"model --model llama-2-7b --p 1.5", "--p"},
      {"model --model llama-2-7b --n 12,-4", "--n"},
      {"model --model llama-2-7b --n abc", "--n"},
      {"model --model llama-2-7b --t-sa 1", "give all three"},
      {"model --model nosuch-model", "unknown model"},
      {"model --model llama-2-7b --l-eff 40", "--l-eff"},
      {"model --model llama-2-7b --threshold 1.7", "--threshold"},
      {"model --model llama-2-7b --fourier-dims 0-200", "--fourier-dims"},
      {"model --model llama-2-7b --bogus", "bogus"},
      {"frobnicate", "unknown command"},
  };
  for (const auto& c : cases) {
    const auto r = run_cli(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args << "\n" << r.err;
  }
}

TEST(CliModel, TopLevelHelpListsCommands) {
  const auto r = run_cli("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("model"), std::string::npos);
}

// kvscope makes the CPU backend's idle OpenMP threads sleep at once unless the environment says
// otherwise (kernels/cpu/openmp_wait.h): it runs itself again with OMP_WAIT_POLICY=passive.
class CliOpenMpWait : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
      unsetenv(name);
    }
  }
  void TearDown() override {
    for (const auto& [name, v] : saved_) {
      if (v)
        setenv(name.c_str(), v->c_str(), 1);
      else
        unsetenv(name.c_str());
    }
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST_F(CliOpenMpWait, PassiveUnlessTheEnvironmentSays) {
  auto r = run_cli("--version");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("idle OpenMP threads: passive\n"), std::string::npos) << r.out;
  setenv("OMP_WAIT_POLICY", "ACTIVE", 1);
  r = run_cli("--version");
  EXPECT_NE(r.out.find("idle OpenMP threads: active\n"), std::string::npos) << r.out;
  unsetenv("OMP_WAIT_POLICY");
  setenv("GOMP_SPINCOUNT", "1000", 1);
  r = run_cli("--version");
  EXPECT_NE(r.out.find("idle OpenMP threads: spin 1000\n"), std::string::npos) << r.out;
}
