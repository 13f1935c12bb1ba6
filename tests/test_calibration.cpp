// Fitting the cost model to calibration profiles (model/calibration.h): known constants are
// recovered from a synthetic profile, bad profiles are rejected naming file and field, and a
// profile from another device is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "model/calibration.h"
#include "model/error.h"

using namespace kvscope;
using nlohmann::json;

namespace {

// The constants a synthetic device "has" per family.
struct Truth {
  double overhead_ms, gflops, gbps;
};

json device() {
  return {{"backend", "cuda"},
          {"name", "NVIDIA H100 80GB HBM3"},
          {"multiprocessors", 132},
          {"memory_bytes", 85e9},
          {"driver", "test"},
          {"date", "2026-11-23T00:00:00Z"},
          {"copy_bytes_per_s", 3e12},
          {"gemm_flops_per_s_bf16", 7e14},
          {"gemm_flops_per_s_f32", 5e13}};
}

// Rows for every family the model needs, over shapes wide enough to separate the three terms,
// timed by `truth` (with relative noise of `noise`).
json synthetic_profile(const std::map<std::string, Truth>& truth, double noise, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-noise, noise);
  json j;
  j["device"] = device();
  j["context"] = {{"date", "2026-11-23"}};
  j["benchmarks"] = json::array();
  auto add = [&](const std::string& name) {
    const std::string family = name.substr(0, name.find('/'));
    CalibrationProfile p;
    // Reuse the library's name parsing through a one-row profile.
    json one = {
        {"device", device()},
        {"benchmarks", json::array({{{"name", name}, {"real_time", 1.0}, {"time_unit", "ms"}}})}};
    p = parse_profile(one, "synthetic");
    const Work w = *row_work(p, p.rows.at(0));
    const Truth& t = truth.at(family);
    const double ms =
        (t.overhead_ms + w.flops / (t.gflops * 1e6) + w.bytes / (t.gbps * 1e6)) * (1.0 + u(gen));
    j["benchmarks"].push_back({{"name", name + "/min_time:0.250/manual_time"},
                               {"run_type", "iteration"},
                               {"real_time", ms * 1e3},
                               {"time_unit", "us"},
                               {"iterations", 10}});
  };
  for (int mib : {1, 16, 256, 2048}) add("copy/mib:" + std::to_string(mib));
  for (int n : {512, 2048, 8192, 16384})
    add("attention_prefill/bf16:1/batch:1/q_heads:32/kv_heads:8/head_dim:128/tokens:" +
        std::to_string(n));
  for (int b : {1, 8})
    for (int n : {1024, 4096, 32768})
      add("attention_decode/bf16:1/batch:" + std::to_string(b) +
          "/q_heads:32/kv_heads:8/head_dim:128/tokens:" + std::to_string(n));
  for (int b : {1, 8})
    for (int n : {1024, 4096, 32768})
      add("fourier_attention_decode/bf16:1/batch:" + std::to_string(b) +
          "/q_heads:32/kv_heads:8/head_dim:128/tokens:" + std::to_string(n) + "/cdims:64/m:256");
  for (int rows : {1, 16, 256, 4096, 16384}) {
    add("gemm/bf16:1/rows:" + std::to_string(rows) + "/out:2048/in:4096/bias:1");
    add("gemm/bf16:1/rows:" + std::to_string(rows) + "/out:14336/in:4096/bias:0");
  }
  // The cosine's FLOPs and bytes are proportional within one dtype; both dtypes separate them.
  for (int bf16 : {0, 1})
    for (int rows : {1024, 8192, 65536})
      add("cosine_rows/bf16:" + std::to_string(bf16) + "/rows:" + std::to_string(rows) +
          "/dim:2048");
  // An aggregate and an errored row, which the loader must skip.
  j["benchmarks"].push_back({{"name", "gemm/bf16:1/rows:1/out:1/in:1/bias:0_mean"},
                             {"run_type", "aggregate"},
                             {"real_time", 1e9},
                             {"time_unit", "ms"}});
  j["benchmarks"].push_back({{"name", "gemm/bf16:1/rows:2/out:1/in:1/bias:0"},
                             {"error_occurred", true},
                             {"real_time", 1e9},
                             {"time_unit", "ms"}});
  return j;
}

const std::map<std::string, Truth> kTruth = {
    {"copy", {0.004, 1.0, 2500.0}},
    {"attention_prefill", {0.010, 400000.0, 1500.0}},
    {"attention_decode", {0.008, 50000.0, 2800.0}},
    {"fourier_attention_decode", {0.015, 30000.0, 2000.0}},
    {"gemm", {0.006, 600000.0, 2600.0}},
    {"cosine_rows", {0.003, 20000.0, 2900.0}},
};

}  // namespace

TEST(Calibration, RecoversKnownConstantsExactly) {
  const CalibrationProfile p = parse_profile(synthetic_profile(kTruth, 0.0, 1), "synthetic.json");
  const CalibratedCostModel m(p);
  for (const auto& [family, t] : kTruth) {
    const OpFit& f = m.fit(family);
    SCOPED_TRACE(family);
    EXPECT_NEAR(f.overhead_ms / t.overhead_ms, 1.0, 1e-6);
    EXPECT_NEAR(f.bytes_per_ms / (t.gbps * 1e6), 1.0, 1e-6);
    // copy moves no FLOPs: that term must drop out rather than come back as noise.
    if (family == "copy")
      EXPECT_EQ(f.flops_per_ms, 0.0);
    else
      EXPECT_NEAR(f.flops_per_ms / (t.gflops * 1e6), 1.0, 1e-5);
    EXPECT_LT(f.rms_rel_residual, 1e-9);
  }
  // The skipped aggregate and error rows did not reach the fit.
  EXPECT_EQ(m.fit("gemm").rows, 10);
}

TEST(Calibration, NoisyProfileFitsWithinTheNoise) {
  const CalibrationProfile p = parse_profile(synthetic_profile(kTruth, 0.03, 2), "noisy.json");
  const CalibratedCostModel m(p);
  for (const auto& [family, t] : kTruth) {
    SCOPED_TRACE(family);
    EXPECT_LT(m.fit(family).rms_rel_residual, 0.03);
    EXPECT_LT(m.fit(family).max_rel_residual, 0.06);
  }
  // Predictions at a shape in between the measured ones land within a few percent.
  const AttentionShape a{1, 32, 8, 128, 1, 8192, true, DType::bf16};
  const Work w = attention_work(a);
  const Truth& t = kTruth.at("attention_decode");
  const double want = t.overhead_ms + w.flops / (t.gflops * 1e6) + w.bytes / (t.gbps * 1e6);
  EXPECT_NEAR(m.attention_ms(a) / want, 1.0, 0.05);
  EXPECT_NE(m.describe().find("NVIDIA H100"), std::string::npos);
  EXPECT_NE(m.fit_report().find("attention_decode"), std::string::npos);
}

TEST(Calibration, PaperTermsComeFromTheFits) {
  const CalibratedCostModel m(parse_profile(synthetic_profile(kTruth, 0.0, 3), "s.json"));
  const GemmShape g{4096, 2048, 4096, true, DType::bf16};
  const Work w = gemm_work(g);
  const Truth& t = kTruth.at("gemm");
  EXPECT_NEAR(m.gemm_ms(g), t.overhead_ms + w.flops / (t.gflops * 1e6) + w.bytes / (t.gbps * 1e6),
              1e-9);
  const Truth& c = kTruth.at("copy");
  EXPECT_NEAR(m.elementwise_ms(1e9), c.overhead_ms + 1e9 / (c.gbps * 1e6), 1e-9);
}

namespace {
void expect_input_error(const json& j, const std::string& field_part) {
  try {
    const CalibratedCostModel m(parse_profile(j, "bad.json"));
    FAIL() << "accepted a bad profile; expected an error on " << field_part;
  } catch (const InputError& e) {
    EXPECT_EQ(e.source(), "bad.json");
    EXPECT_NE(std::string(e.what()).find(field_part), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(Calibration, BadProfilesNameTheField) {
  const json good = synthetic_profile(kTruth, 0.0, 4);
  {
    json j = good;
    j.erase("device");
    expect_input_error(j, "device");
  }
  {
    json j = good;
    j["device"].erase("copy_bytes_per_s");
    expect_input_error(j, "device.copy_bytes_per_s");
  }
  {
    json j = good;
    j["device"]["gemm_flops_per_s_bf16"] = -1;
    expect_input_error(j, "device.gemm_flops_per_s_bf16");
  }
  {
    json j = good;
    j["device"]["backend"] = "tpu";
    expect_input_error(j, "device.backend");
  }
  {
    json j = good;
    j["benchmarks"][0]["time_unit"] = "fortnights";
    expect_input_error(j, "benchmarks[0].time_unit");
  }
  {
    json j = good;
    j["benchmarks"][1].erase("real_time");
    expect_input_error(j, "benchmarks[1].real_time");
  }
  {
    json j = good;
    j["benchmarks"][2]["name"] = "copy/mib:lots";
    expect_input_error(j, "benchmarks[2].name");
  }
  {
    json j = good;
    j["benchmarks"][4]["name"] = "attention_prefill/bf16:1/batch:1";  // axes missing
    expect_input_error(j, "needs axis 'q_heads'");
  }
  {
    json j = good;
    json kept = json::array();
    for (const auto& b : j["benchmarks"])
      if (b["name"].get<std::string>().rfind("cosine_rows", 0) != 0) kept.push_back(b);
    j["benchmarks"] = kept;
    expect_input_error(j, "cosine_rows");
  }
  expect_input_error(json::array(), "JSON object");
}

TEST(Calibration, UnreadableFilesAreInputErrors) {
  EXPECT_THROW(load_profile("/nonexistent/profile.json"), InputError);
  const std::string path = ::testing::TempDir() + "kvscope-bad-profile.json";
  std::ofstream(path) << "{ \"device\": ";
  try {
    load_profile(path);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.source(), path);
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos);
  }
}

TEST(Calibration, ProfileMustMatchTheNamedDevice) {
  const CalibrationProfile h100 = parse_profile(synthetic_profile(kTruth, 0.0, 5), "h100.json");
  EXPECT_NO_THROW(check_profile_matches(h100, "h100-sxm"));
  try {
    check_profile_matches(h100, "h200");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.field(), "--gpu");
    EXPECT_NE(std::string(e.what()).find("H100"), std::string::npos);
  }
  EXPECT_THROW(check_profile_matches(h100, "cpu-2core"), InputError);
  json cpu = synthetic_profile(kTruth, 0.0, 6);
  cpu["device"]["backend"] = "cpu";
  cpu["device"]["name"] = "AMD EPYC";
  const CalibrationProfile c = parse_profile(cpu, "cpu.json");
  EXPECT_NO_THROW(check_profile_matches(c, "cpu-2core"));
  EXPECT_THROW(check_profile_matches(c, "h100-sxm"), InputError);
  EXPECT_THROW(check_profile_matches(c, "no-such-gpu"), InputError);
}
