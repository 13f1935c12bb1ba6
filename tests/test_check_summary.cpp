#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "model/error.h"
#include "sim/plan/check_summary.h"

using kvscope::InputError;
using kvscope::load_check_summary;

namespace {

const char* kValid = R"({
  "kvscope_check": 1,
  "model": "llama-2-7b", "backend": "cuda", "device": "NVIDIA H100 80GB HBM3",
  "date": "2026-11-23", "command": "kvscope check traces/x.jsonl --requests 200",
  "trace": "traces/x.jsonl", "requests": 200,
  "latency": [
    {"method": "baseline", "step_kind": "prefill", "steps": 120,
     "median_rel_error": 0.021, "p90_rel_error": 0.06, "max_rel_error": 0.19},
    {"method": "fourier+ccv", "step_kind": "decode", "steps": 900,
     "median_rel_error": 0.03, "p90_rel_error": 0.08, "max_rel_error": 0.4}
  ],
  "memory": [{"method": "ccv", "predicted_bytes": 1048576, "allocated_bytes": 1048576}]
})";

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/kvscope-check-" + name;
  std::ofstream(path) << text;
  return path;
}

// The error for `text`, with the field and line it names.
InputError error_for(const std::string& text) {
  const std::string path = write_temp("bad.json", text);
  try {
    load_check_summary(path);
  } catch (const InputError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << text;
  return InputError("", "", "");
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  const auto p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  return s.replace(p, from.size(), to);
}

}  // namespace

TEST(CheckSummary, ReadsTheDocumentedSchema) {
  const auto s = load_check_summary(write_temp("ok.json", kValid));
  EXPECT_EQ(s.device, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(s.requests, 200);
  ASSERT_EQ(s.latency.size(), 2u);
  EXPECT_EQ(s.latency[1].method, "fourier_ccv");  // normalised
  EXPECT_EQ(s.latency[1].steps, 900);
  EXPECT_DOUBLE_EQ(s.latency[0].p90_rel_error, 0.06);
  ASSERT_EQ(s.memory.size(), 1u);
  EXPECT_EQ(s.memory[0].allocated_bytes, 1048576);
}

TEST(CheckSummary, BadInputNamesFieldAndLine) {
  EXPECT_EQ(error_for(replaced(kValid, "\"steps\": 900", "\"steps\": -3")).field(),
            "latency[1].steps");
  EXPECT_EQ(
      error_for(replaced(kValid, "\"method\": \"baseline\"", "\"method\": \"magic\"")).field(),
      "latency[0].method");
  EXPECT_EQ(
      error_for(replaced(kValid, "\"max_rel_error\": 0.19", "\"max_rel_error\": 0.01")).field(),
      "latency[0]");
  EXPECT_EQ(error_for(replaced(kValid, "\"device\": \"NVIDIA H100 80GB HBM3\",", "")).field(),
            "device");
  EXPECT_EQ(error_for(replaced(kValid, "\"kvscope_check\": 1", "\"kvscope_check\": 2")).field(),
            "kvscope_check");
  EXPECT_EQ(
      error_for(replaced(kValid, "\"step_kind\": \"decode\"", "\"step_kind\": \"warp\"")).field(),
      "latency[1].step_kind");
  EXPECT_EQ(
      error_for(replaced(kValid, "\"p90_rel_error\": 0.06", "\"p90_rel_error\": \"6%\"")).field(),
      "latency[0].p90_rel_error");
  const InputError syntax =
      error_for(replaced(kValid, "\"requests\": 200,", "\"requests\": 200,,"));
  EXPECT_EQ(syntax.line(), 5);
  const InputError missing_file = [] {
    try {
      load_check_summary("/nonexistent/check.json");
    } catch (const InputError& e) {
      return e;
    }
    return InputError("", "", "");
  }();
  EXPECT_EQ(missing_file.source(), "/nonexistent/check.json");
}
