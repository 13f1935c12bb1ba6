// Reading kvscope check's steps.csv back (read_steps_csv): what write_steps_csv writes reads back
// as the same steps, the repository's H100 check output reads with one row per step counted in
// its summary, and a bad file is refused with its line and column.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <sstream>

#include "model/error.h"
#include "sim/check/check_report.h"
#include "sim/plan/check_summary.h"

using namespace kvscope;
using namespace kvscope::check;

namespace {

CheckStep step(Method m, int64_t index, StepKind kind, double pred, double meas,
               std::string shape) {
  CheckStep s;
  s.method = m;
  s.index = index;
  s.kind = kind;
  s.predicted_ms = pred;
  s.measured_ms = meas;
  s.shape = std::move(shape);
  return s;
}

std::string written(const CheckResult& r) {
  std::ostringstream out;
  write_steps_csv(out, r);
  return out.str();
}

InputError error_for(const std::string& text) {
  std::istringstream in(text);
  try {
    read_steps_csv(in, "steps.csv");
  } catch (const InputError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted:\n" << text;
  return InputError("", "", "");
}

const char* kHeader =
    "method,step,kind,prefill_seqs,decode_seqs,prefill_tokens,decode_tokens,ccv_hits,max_kv,"
    "mean_decode_kv,predicted_ms,measured_ms,rel_error,pred_attention_ms,pred_dense_ms,"
    "pred_ccv_ms,pred_other_ms,predicted_kv_bytes,allocated_kv_bytes,device_used_bytes,reps,"
    "meas_attention_ms,meas_dense_ms,meas_ccv_ms,meas_other_ms,shape\n";

const char* kRow =
    "ccv,7,decode,0,3,0,3,1,900,850,1.5,1.25,0.2,1,0.4,0.05,0.05,1024,1024,-1,5,-1,-1,-1,-1,"
    "\"3 decodes kv 800..900 (mean 850)\"\n";

}  // namespace

TEST(StepsCsv, WhatCheckWritesReadsBack) {
  CheckResult r;
  // Times with at most 9 significant digits: the writer's precision, so they read back exactly.
  r.steps = {
      step(Method::baseline, 0, StepKind::prefill, 211.623864, 215.365982,
           "prefill 6758@6758, 1434@1434"),
      step(Method::fourier, 12, StepKind::mixed, 3.25, 2.5,
           "5 decodes kv 2292..7325 (mean 6075); prefill 2439@4834"),
      step(Method::ccv, 3, StepKind::decode, 0.000125, 0.0001, "a \"quoted\" shape, with commas"),
      step(Method::fourier_ccv, 4000000, StepKind::decode, 9.5, 0, ""),
  };
  const auto rows = [&] {
    std::istringstream in(written(r));
    return read_steps_csv(in, "steps.csv");
  }();
  ASSERT_EQ(rows.size(), r.steps.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE(i);
    const CheckStep& s = r.steps[i];
    EXPECT_EQ(rows[i].method, s.method);
    EXPECT_EQ(rows[i].step, s.index);
    EXPECT_EQ(rows[i].kind, s.kind);
    EXPECT_EQ(rows[i].predicted_ms, s.predicted_ms);
    EXPECT_EQ(rows[i].measured_ms, s.measured_ms);
    EXPECT_NEAR(rows[i].rel_error, s.rel_error(), 1e-8 * std::max(1.0, s.rel_error()));
    EXPECT_EQ(rows[i].shape, s.shape);
  }
  EXPECT_EQ(rows[3].rel_error, 0.0);  // nothing measured: check reports no error
}

TEST(StepsCsv, ReadsTheRepositoryH100CheckStepByStep) {
  const std::string dir = std::string(KVSCOPE_SOURCE_DIR) + "/results/fidelity/h100-llama-3.1-8b";
  const auto rows = read_steps_csv(dir + "/steps.csv");
  const CheckSummary summary = load_check_summary(dir + "/check_summary.json");
  // One row per step the summary counts, per method and kind.
  std::map<std::pair<std::string, std::string>, int64_t> counted;
  for (const auto& r : rows) {
    ++counted[{std::string(method_name(r.method)), std::string(step_kind_name(r.kind))}];
    ++counted[{std::string(method_name(r.method)), "all"}];
    EXPECT_GT(r.measured_ms, 0);
    EXPECT_NEAR(r.rel_error, std::abs(r.predicted_ms - r.measured_ms) / r.measured_ms, 1e-8);
  }
  ASSERT_EQ(summary.latency.size(), counted.size());
  for (const auto& l : summary.latency)
    EXPECT_EQ((counted[{l.method, l.step_kind}]), l.steps) << l.method << " " << l.step_kind;
  EXPECT_EQ(rows.front().shape, "prefill 6758@6758, 1434@1434");
}

TEST(StepsCsv, ColumnsAreFoundByName) {
  // A column added (or moved) later does not change what is read.
  const std::string text =
      "extra,shape,measured_ms,predicted_ms,rel_error,kind,step,method\n"
      "x,\"prefill 10@10\",2,1,0.5,prefill,0,fourier+ccv\n";
  std::istringstream in(text);
  const auto rows = read_steps_csv(in, "steps.csv");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].method, Method::fourier_ccv);
  EXPECT_EQ(rows[0].predicted_ms, 1.0);
  EXPECT_EQ(rows[0].measured_ms, 2.0);
  EXPECT_EQ(rows[0].shape, "prefill 10@10");
}

TEST(StepsCsv, BadFilesNameLineAndColumn) {
  const std::string good = std::string(kHeader) + kRow;
  {
    std::istringstream in(good);
    EXPECT_EQ(read_steps_csv(in, "steps.csv").size(), 1u);
  }
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = std::string(kHeader) + kRow + kRow;
    const auto p = s.rfind(from);  // in the second row: line 3
    EXPECT_NE(p, std::string::npos) << from;
    return s.replace(p, from.size(), to);
  };
  struct Case {
    std::string text;
    int64_t line;
    std::string field;
  };
  const std::vector<Case> cases = {
      {replaced("ccv,7", "lru,7"), 3, "method"},
      {replaced("ccv,7", "ccv,seven"), 3, "step"},
      {replaced("ccv,7", "ccv,-7"), 3, "step"},
      {replaced(",decode,", ",chunk,"), 3, "kind"},
      {replaced("850,1.5,", "850,fast,"), 3, "predicted_ms"},
      {replaced("1.5,1.25,", "1.5,-1.25,"), 3, "measured_ms"},
      {replaced("1.25,0.2,", "1.25,nan,"), 3, "rel_error"},
      {replaced("1024,1024,", "1024,"), 3, ""},         // a field missing
      {replaced("(mean 850)\"", "(mean 850)"), 3, ""},  // an unterminated quote
      {std::string("method,step,kind,predicted_ms,rel_error,shape\n"), 1, "measured_ms"},
      {std::string(), 1, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const InputError e = error_for(c.text);
    EXPECT_EQ(e.source(), "steps.csv");
    EXPECT_EQ(e.line(), c.line);
    EXPECT_EQ(e.field(), c.field);
  }
  EXPECT_THROW(read_steps_csv("/nonexistent/steps.csv"), InputError);
}
