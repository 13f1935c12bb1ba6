// kvscope plan end to end on the bundled Mooncake sample: the report parses, the PDF renders, the
// CSV's numbers are those of run_replay called directly with the same configuration, interrupts
// leave nothing behind, and bad arguments are refused.
#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "cli_runner.h"
#include "model/calibration.h"
#include "model/hardware.h"
#include "model/memory.h"
#include "page_image.h"
#include "sim/plan/plan.h"
#include "sim/replay/replay.h"

extern char** environ;

using kvscope::testing::run_cli;
namespace fs = std::filesystem;

namespace {

const std::string kTrace = KVSCOPE_PLAN_TEST_TRACE;
constexpr int64_t kRequests = 80;  // a prefix keeps the test fast; the engine is the same

std::string fresh_dir(const std::string& name) {
  const std::string dir =
      ::testing::TempDir() + "/kvscope-plan-" + name + "-" + std::to_string(::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// RFC 4180 rows keyed by the header.
using CsvRow = std::map<std::string, std::string>;
std::vector<CsvRow> read_csv(const std::string& path) {
  const std::string text = slurp(path);
  std::vector<std::vector<std::string>> rows(1);
  std::string cell;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(cell);
      cell.clear();
    } else if (c == '\n') {
      rows.back().push_back(cell);
      cell.clear();
      rows.emplace_back();
    } else {
      cell += c;
    }
  }
  rows.pop_back();  // after the last newline
  std::vector<CsvRow> out;
  for (size_t r = 1; r < rows.size(); ++r) {
    EXPECT_EQ(rows[r].size(), rows[0].size()) << path << " row " << r;
    CsvRow row;
    for (size_t c = 0; c < rows[0].size() && c < rows[r].size(); ++c) row[rows[0][c]] = rows[r][c];
    out.push_back(row);
  }
  return out;
}

int xmllint(const std::string& path) {
  return std::system(("xmllint --noout '" + path + "'").c_str());
}

size_t files_in(const std::string& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

const char* kCheck = R"({"kvscope_check": 1, "model": "llama-2-7b", "backend": "cpu",
  "device": "test fixture", "date": "2026-11-23", "command": "hand-written for the plan test",
  "trace": "sample", "requests": 200,
  "latency": [{"method": "baseline", "step_kind": "decode", "steps": 321,
               "median_rel_error": 0.0312, "p90_rel_error": 0.0871, "max_rel_error": 0.25}],
  "memory": [{"method": "fourier", "predicted_bytes": 123456789, "allocated_bytes": 123456789}]})";

// One HTML plan shared by the tests that read it (it is the slowest part).
class PlanReport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fresh_dir("html");
    std::ofstream(dir_ + "/check.json") << kCheck;
    result_ = run_cli("plan --model llama-2-7b --trace '" + kTrace + "' --max-requests " +
                      std::to_string(kRequests) +
                      " --slo-ttft 20s --rate-tolerance 0.1 --target-rate 40 --sweep-thresholds "
                      "0.7 --sweep-fourier-m 128 "
                      "--sweep-l-eff 6 --contexts 4k,32k --check '" +
                      dir_ + "/check.json' --out '" + dir_ + "/plan.html'");
  }
  static std::string dir_;
  static kvscope::testing::CliResult result_;
};
std::string PlanReport::dir_;
kvscope::testing::CliResult PlanReport::result_;

kvscope::ReplayConfig same_config_as_the_cli() {
  kvscope::ReplayConfig rc;
  rc.model = kvscope::load_model("llama-2-7b");
  rc.max_requests = kRequests;
  rc.keep_steps = false;
  rc.keep_requests = false;
  return rc;  // every other field at the CLI's defaults, which are the struct's defaults
}

}  // namespace

TEST_F(PlanReport, WritesAWellFormedHtmlReportAndItsCsv) {
  ASSERT_EQ(result_.exit_code, 0) << result_.err;
  const std::string html = slurp(dir_ + "/plan.html");
  EXPECT_EQ(xmllint(dir_ + "/plan.html"), 0);
  for (const char* section : {"Answers", "Charts", "Sensitivity", "Inputs", "Assumptions",
                              "Fidelity", "h100-sxm", "p90", "<svg ", "plan.methods.csv"})
    EXPECT_NE(html.find(section), std::string::npos) << section;
  // The fidelity figures of the check summary, as percentages.
  EXPECT_NE(html.find("8.7%"), std::string::npos);
  EXPECT_NE(html.find("test fixture"), std::string::npos);
  for (const char* t : {"methods", "memory", "runs", "sweep", "fidelity"})
    EXPECT_TRUE(fs::exists(dir_ + "/plan." + std::string(t) + ".csv")) << t;
  // Nothing else: no temporaries.
  EXPECT_EQ(files_in(dir_), 1u + 1u + 5u);  // check.json, plan.html, five CSV files
  EXPECT_NE(result_.err.find("replays"), std::string::npos);  // progress on stderr
}

TEST_F(PlanReport, NumbersEqualThoseOfTheReplayTheyCameFrom) {
  ASSERT_EQ(result_.exit_code, 0) << result_.err;
  const auto methods = read_csv(dir_ + "/plan.methods.csv");
  ASSERT_EQ(methods.size(), 4u);
  const kvscope::RooflineCostModel costs(kvscope::hardware_preset("h100-sxm"));
  kvscope::ReplayConfig rc = same_config_as_the_cli();

  // The trace's own rate, from a replay at scale 1.
  rc.methods = {kvscope::Method::baseline};
  const auto at_one = kvscope::run_replay(kTrace, rc, costs);
  const double base_rate = static_cast<double>(at_one.trace.requests) / at_one.trace.duration_s;

  for (const auto& row : methods) {
    const auto m = kvscope::parse_method(row.at("method"));
    ASSERT_TRUE(m);
    EXPECT_EQ(row.at("base_rate_per_s"), kvscope::exact_number(base_rate));
    const double scale = std::stod(row.at("max_rate_scale"));
    ASSERT_GT(scale, 0) << row.at("method") << ": SLO missed at every rate on the sample";
    rc.methods = {*m};
    rc.rate_scale = scale;
    const auto r = kvscope::run_replay(kTrace, rc, costs);
    const auto& s = r.methods.at(0).summary;
    const std::string who = row.at("method");
    EXPECT_EQ(row.at("max_rate_per_s"), kvscope::exact_number(scale * base_rate)) << who;
    EXPECT_EQ(row.at("ttft_ms_at_slo_percentile"), kvscope::exact_number(s.ttft_ms.p90)) << who;
    EXPECT_EQ(row.at("tbt_ms_at_slo_percentile"), kvscope::exact_number(s.tbt_ms.p90)) << who;
    EXPECT_EQ(row.at("tokens_per_s_per_gpu"), kvscope::exact_number(s.throughput_tokens_per_s))
        << who;
    EXPECT_EQ(row.at("hit_rate"), kvscope::exact_number(s.hit_rate)) << who;
    EXPECT_EQ(row.at("peak_kv_bytes"), std::to_string(s.peak_kv_bytes)) << who;
    EXPECT_EQ(row.at("replay_kv_capacity_bytes"), std::to_string(s.kv_capacity_bytes)) << who;
    EXPECT_EQ(row.at("headroom_bytes"), std::to_string(s.kv_capacity_bytes - s.peak_kv_bytes))
        << who;
    // The memory model's capacity is the engine's.
    EXPECT_EQ(row.at("kv_capacity_bytes"), std::to_string(s.kv_capacity_bytes)) << who;
    EXPECT_LE(s.ttft_ms.p90, 20000.0) << who;
    EXPECT_LE(s.tbt_ms.p90, 100.0) << who;
    EXPECT_EQ(row.at("gpus_for_target"),
              std::to_string(kvscope::gpus_needed(40, scale * base_rate)))
        << who;
    // Exact bytes from model/memory.h.
    const kvscope::MemoryFit fit =
        kvscope::fit_memory(rc.model, *m, rc.method_config, rc.gpu_memory_bytes, {}, s.hit_rate);
    EXPECT_EQ(row.at("max_context_miss_tokens"), std::to_string(fit.max_context_miss)) << who;
    EXPECT_EQ(row.at("max_context_hit_tokens"), std::to_string(fit.max_context_hit)) << who;
  }

  // Every replay of the search is in runs.csv as it came out of the engine; spot-check the
  // first replay of each method (scale 1) against the direct run.
  const auto runs = read_csv(dir_ + "/plan.runs.csv");
  rc.rate_scale = 1;
  for (const auto& row : runs) {
    if (row.at("step") != "0" || row.at("search").find("threshold=0.7") != std::string::npos ||
        row.at("search").find("fourier_m=128") != std::string::npos ||
        row.at("search").find("l_eff=6") != std::string::npos)
      continue;
    rc.methods = {*kvscope::parse_method(row.at("method"))};
    const auto direct = kvscope::run_replay(kTrace, rc, costs);
    const auto& s = direct.methods.at(0).summary;
    EXPECT_EQ(row.at("rate_scale"), "1");
    EXPECT_EQ(row.at("ttft_ms_p50"), kvscope::exact_number(s.ttft_ms.p50)) << row.at("method");
    EXPECT_EQ(row.at("ttft_ms_p99"), kvscope::exact_number(s.ttft_ms.p99)) << row.at("method");
    EXPECT_EQ(row.at("e2e_ms_p90"), kvscope::exact_number(s.e2e_ms.p90)) << row.at("method");
    EXPECT_EQ(row.at("makespan_s"), kvscope::exact_number(s.makespan_s)) << row.at("method");
    EXPECT_EQ(row.at("preemptions"), std::to_string(s.preemptions)) << row.at("method");
  }

  // Memory table: batch counts at each context are exact divisions of the capacity.
  for (const auto& row : read_csv(dir_ + "/plan.memory.csv")) {
    const auto m = *kvscope::parse_method(row.at("method"));
    const int64_t n = std::stoll(row.at("context_tokens"));
    const int64_t bytes = kvscope::sequence_kv_bytes(rc.model, m, rc.method_config, n, false);
    EXPECT_EQ(row.at("sequence_bytes_miss"), std::to_string(bytes));
    EXPECT_EQ(row.at("max_batch_miss"),
              std::to_string(std::stoll(row.at("kv_capacity_bytes")) / bytes));
  }
}

TEST_F(PlanReport, SweepRowsVaryOneParameter) {
  ASSERT_EQ(result_.exit_code, 0) << result_.err;
  const auto sweep = read_csv(dir_ + "/plan.sweep.csv");
  // ccv, fourier_ccv x (1 threshold + 1 L_eff); fourier, fourier_ccv x 1 M.
  EXPECT_EQ(sweep.size(), 2u * 2 + 2u * 1);
  for (const auto& row : sweep) {
    const std::string axis = row.at("axis");
    const std::string swept = axis == "threshold" ? row.at("threshold")
                              : axis == "l_eff"   ? row.at("l_eff")
                                                  : row.at("fourier_m");
    EXPECT_EQ(swept, row.at("value")) << axis;
    EXPECT_TRUE(axis == "threshold" || axis == "l_eff" || axis == "fourier_m") << axis;
  }
}

TEST(CliPlan, PdfFromTheSameChartsRendersAndIsNotBlank) {
  const std::string dir = fresh_dir("pdf");
  const auto r = run_cli("plan --model llama-2-7b --trace '" + kTrace +
                         "' --max-requests 100 --no-sweep "
                         "--quiet --out '" +
                         dir + "/plan.pdf'");
#if KVSCOPE_HAVE_PDF
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GE(kvscope::testing::pdf_page_count(dir + "/plan.pdf"), 2);
  std::string error;
  const auto page = kvscope::testing::render_pdf_page(dir + "/plan.pdf", 1, 50, error);
  ASSERT_GT(page.width, 0) << error;
  EXPECT_GT(page.fraction_non_white(), 0.02);
  // Page 2 holds charts: their series colours must be there.
  const auto charts = kvscope::testing::render_pdf_page(dir + "/plan.pdf", 2, 50, error);
  ASSERT_GT(charts.width, 0) << error;
  EXPECT_GT(charts.fraction_coloured(), 0.002);
  EXPECT_TRUE(fs::exists(dir + "/plan.methods.csv"));
#else
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("Qt"), std::string::npos) << r.err;
  EXPECT_EQ(files_in(dir), 0u);
#endif
}

TEST(CliPlan, MarkdownWritesItsChartsBeside) {
  const std::string dir = fresh_dir("md");
  const auto r =
      run_cli("plan --model llama-2-7b --trace '" + kTrace +
              "' --max-requests 100 --no-sweep --methods baseline,fourier --quiet --out '" + dir +
              "/plan.md'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string md = slurp(dir + "/plan.md");
  for (const char* id : {"rate", "ttft", "tbt", "context", "batch"}) {
    const std::string svg = "plan." + std::string(id) + ".svg";
    EXPECT_NE(md.find("](" + svg + ")"), std::string::npos) << id;
    ASSERT_TRUE(fs::exists(dir + "/" + svg)) << id;
    EXPECT_EQ(xmllint(dir + "/" + svg), 0) << id;
  }
  EXPECT_EQ(read_csv(dir + "/plan.methods.csv").size(), 2u);
  // At the default SLO (p90 TTFT <= 2 s) the sample's bursts of long prompts miss it at every
  // rate, and the report says so rather than printing a rate.
  EXPECT_NE(md.find("misses the SLO"), std::string::npos);
}

TEST(CliPlan, ACalibrationProfileNamesItsDeviceAndDate) {
  const std::string dir = fresh_dir("profile");
  const std::string profile = std::string(KVSCOPE_SOURCE_DIR) + "/results/profiles/cpu-2core.json";
  const kvscope::CalibrationProfile p = kvscope::load_profile(profile);
  const auto r =
      run_cli("plan --model kvscope-tiny --profile '" + profile + "' --trace '" + kTrace +
              "' --max-requests 40 --no-sweep --methods baseline,fourier --l-eff 2 --slo-ttft 600s "
              "--slo-tbt 10s --rate-tolerance 0.2 --quiet --out '" +
              dir + "/plan.html'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string html = slurp(dir + "/plan.html");
  EXPECT_NE(html.find(p.device.name), std::string::npos);
  EXPECT_NE(html.find("measured " + p.device.date), std::string::npos);
  EXPECT_NE(html.find("calibrated("), std::string::npos);
  // GPU memory defaults to the profiled device's.
  for (const auto& row : read_csv(dir + "/plan.methods.csv"))
    EXPECT_EQ(row.at("gpu_memory_bytes"), std::to_string(p.device.memory_bytes));
}

// Whether process `pid` catches signal `sig` (has installed a handler): Linux's
// /proc/PID/status SigCgt mask. Polled so that an interrupt test does not race the child's
// start-up, which takes seconds on a loaded machine (it loads the CUDA libraries twice).
bool catches_signal(pid_t pid, int sig) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("SigCgt:", 0) == 0)
      return (std::stoull(line.substr(7), nullptr, 16) >> (sig - 1)) & 1u;
  return false;
}

TEST(CliPlan, InterruptLeavesNoReportAndNoTemporaries) {
  const std::string dir = fresh_dir("sigint");
  const std::string out = dir + "/plan.html";
  std::vector<std::string> args = {
      KVSCOPE_CLI, "plan",  "--model", "llama-2-7b", "--trace",
      kTrace,      "--out", out,       "--quiet"};  // the whole trace: slow
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ), 0);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!catches_signal(pid, SIGINT) && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(catches_signal(pid, SIGINT)) << "kvscope plan never installed its SIGINT handler";
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // into loading or the sweep
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_EQ(files_in(dir), 0u);
}

TEST(CliPlan, BadArgumentsAreRefusedBeforeAnyReplay) {
  const std::string dir = fresh_dir("bad");
  std::ofstream(dir + "/bad-check.json") << R"({"kvscope_check": 1, "model": "m"})";
  std::ofstream(dir + "/bad.jsonl")
      << R"({"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1]})"
      << "\n"
      << R"({"timestamp": 1000, "input_length": -3, "output_length": 5, "hash_ids": [1]})"
      << "\n";
  struct Case {
    std::string args;
    int code;
    const char* says;
  };
  const std::string base = "plan --model llama-2-7b --trace '" + kTrace + "' --quiet ";
  const Case cases[] = {
      {base + "--out " + dir + "/r.txt", 2, ".html, .md or .pdf"},
      {base + "--out " + dir + "/r.html --methods baseline,warp", 2, "warp"},
      {base + "--out " + dir + "/r.html --methods ccv,ccv", 2, "--methods: ccv is listed twice"},
      {base + "--out " + dir + "/r.html --format xml", 2, "--format"},
      {base + "--out " + dir + "/r.html --on-bad-record maybe", 2, "--on-bad-record"},
      {base + "--out " + dir + "/r.html --slo-ttft 2", 2, "unit"},
      {base + "--out " + dir + "/r.html --slo-tbt=-5ms", 2, "--slo-tbt"},
      {base + "--out " + dir + "/r.html --slo-percentile p95", 2, "--slo-percentile"},
      {base + "--out " + dir + "/r.html --max-requests 1", 2, "--max-requests"},
      {base + "--out " + dir + "/r.html --target-rate 0", 2, "--target-rate"},
      {base + "--out " + dir + "/r.html --sweep-l-eff 4,99", 2, "--l-eff"},
      {base + "--out " + dir + "/no/such/dir/r.html", 2, "does not exist"},
      {base + "--out " + dir + "/r.html --check " + dir + "/bad-check.json", 1, "backend"},
      {"plan --model llama-2-7b --trace " + dir + "/missing.jsonl --out " + dir + "/r.html", 2,
       "missing.jsonl"},
      {"plan --trace x --out " + dir + "/r.html", 2, "--model"},
      // A bad record found by the replays (in worker threads) still names file, line and field.
      {"plan --model llama-2-7b --quiet --trace " + dir + "/bad.jsonl --out " + dir + "/r.html", 1,
       "bad.jsonl:2: input_length"},
  };
  for (const auto& c : cases) {
    const auto r = run_cli(c.args);
    EXPECT_EQ(r.exit_code, c.code) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args << "\n" << r.err;
  }
  EXPECT_EQ(files_in(dir), 2u);  // only the bad inputs: no report, no temporaries
}

TEST(CliPlan, HelpNamesEveryOptionWithUnits) {
  const auto r = run_cli("plan --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* opt : {"--model", "--trace", "--out", "--gpu", "--gpu-mem", "--slo-ttft",
                          "--slo-tbt", "--slo-percentile", "--methods", "--target-rate", "--check",
                          "--max-requests", "--jobs", "--format", "(requests/s)", "(tokens"})
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
}
