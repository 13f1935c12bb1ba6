// Shared pieces of the subcommands' option handling.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include <memory>

#include "model/cost.h"
#include "model/memory.h"
#include "sim/cli/commands.h"
#include "sim/replay/replay.h"

namespace kvscope::cli {

namespace po = boost::program_options;

// A bad command line: reported with the subcommand's name and exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum ExitCode { kOk = 0, kFailure = 1, kUsage = 2 };

// Parses args against desc; on --help prints usage and returns false (caller exits 0).
// `positional` maps bare arguments to options (e.g. the trace of `kvscope replay TRACE`).
bool parse_or_help(const Args& args, const po::options_description& desc, po::variables_map& vm,
                   const std::string& usage_line,
                   const po::positional_options_description* positional = nullptr);

// "1024,4096,32k" -> {1024, 4096, 32768}; k/m suffixes are powers of two.
std::vector<int64_t> parse_token_list(const std::string& s, const std::string& option);
int64_t parse_tokens(const std::string& s, const std::string& option);
// "80GiB", "512MiB", "4e9" -> bytes.
int64_t parse_bytes(const std::string& s, const std::string& option);

// "baseline,fourier" or "all" -> methods; a UsageError naming `option` for an unknown or
// repeated method or an empty list.
std::vector<Method> parse_method_list(const std::string& s, const std::string& option = "--method");

// The method options every subcommand shares (--fourier-*, --d2, --l-eff, --threshold, --ccv-*).
void add_method_options(po::options_description& desc);
MethodConfig method_config_from(const po::variables_map& vm, const ModelShape& shape);

// The options choosing how operations are priced: --gpu (roofline of a preset) or --profile
// (constants fitted to a calibration profile; model/calibration.h).
void add_cost_options(po::options_description& desc);
std::unique_ptr<OpCostModel> cost_model_from(const po::variables_map& vm);
// The memory of the GPU a run simulates: `gpu_mem` (the --gpu-mem text) when given, else the
// device a calibration profile was measured on (when `costs` is calibrated and the profile
// recorded it), else the `gpu_preset`'s. One rule for replay, plan and kvscope-gui.
int64_t gpu_memory_from(const std::string* gpu_mem, const std::string& gpu_preset,
                        const OpCostModel& costs);

// The trace-format and scheduler options replay, check and plan share: --format, --max-batch,
// --token-budget, --no-chunked-prefill, and with `bad_record_option` also --on-bad-record
// (kvscope check reads only the first requests of a trace, so it has no skip policy).
// trace_and_scheduler_from fills those fields of `config`; the replay validates the values.
void add_trace_and_scheduler_options(po::options_description& desc, bool bad_record_option);
void trace_and_scheduler_from(const po::variables_map& vm, ReplayConfig& config);

// Runs body, turning UsageError and InputError into a message on stderr and an exit code.
int guarded(const std::string& command, int (*body)(const Args&), const Args& args);

std::string human_bytes(double bytes);

}  // namespace kvscope::cli
