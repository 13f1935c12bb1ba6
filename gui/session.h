// A session: everything kvscope-gui's views are computed from, as one value (files, parameters,
// which view is shown). It is what a session file holds, and it turns itself into the kvscope
// command lines that reproduce its views headless. The app never builds a MethodConfig or a cost
// model by hand: resolve() feeds the session's own command-line arguments through the CLI's
// option parser, so the window and "Copy command line" cannot disagree.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "model/cost.h"
#include "model/memory.h"
#include "model/methods.h"
#include "model/shape.h"
#include "sim/replay/replay.h"

namespace kvscope::gui {

using Args = std::vector<std::string>;

// In the order of the window's tabs.
enum class View { analytic, replay, summary, fidelity };
std::string_view view_name(View v);  // analytic | replay | summary | fidelity

struct Session {
  // Inputs.
  std::string trace_path;             // empty: none opened
  std::string trace_format = "auto";  // auto | mooncake | azure | kvscope
  std::string model = "llama-2-7b";   // a preset name or a config.json path
  std::string profile_path;           // calibration profile; empty: the GPU preset's roofline
  std::string gpu = "h100-sxm";       // hardware preset pricing the operations
  // A kvscope check result the Fidelity view shows (its --out folder or its check summary);
  // empty: none. It is only shown: no other view is computed from it.
  std::string check_path;

  // The analytic charts: context lengths from n_min to n_max, points_per_doubling per octave,
  // and the hit probability p the paper's model assumes.
  int64_t n_min_tokens = 1024;
  int64_t n_max_tokens = 131072;
  int64_t points_per_doubling = 2;
  double p = 0.5;

  // Methods and their parameters (the CLI's --fourier-*, --d2, --l-eff, --threshold, --ccv-*).
  std::vector<Method> methods = all_methods();
  int64_t fourier_m = 256;
  std::string fourier_dims;  // empty: half of head_dim, the lowest; else a count or a list
  int64_t fourier_sink_tokens = 4;
  int64_t fourier_window_tokens = 64;
  int64_t d2 = -1;  // -1: d1 / 2
  int64_t l_eff = 8;
  double threshold = 0.8;
  double ccv_budget_gib = 4.0;
  Eviction ccv_eviction = Eviction::lru;
  double ccv_ttl_s = 600.0;

  // The replay.
  double gpu_memory_gib = 0;  // 0: the profile's device's, else the GPU preset's (as the CLI)
  int64_t max_batch = 256;
  int64_t token_budget_tokens = 8192;
  bool chunked_prefill = true;
  double rate_scale = 1.0;
  int64_t max_requests = -1;  // -1: the whole trace
  bool skip_bad_records = false;

  View view = View::analytic;

  bool operator==(const Session&) const = default;
};

// The context lengths of the analytic charts: n_min * 2^(k / points_per_doubling), rounded to
// whole tokens, up to n_max (which is always included).
std::vector<int64_t> context_lengths(const Session& s);

// The options every subcommand shares: methods and pricing.
Args method_args(const Session& s);
// `kvscope model ...` reproducing the analytic view (without the leading "model").
Args model_command_args(const Session& s);
// `kvscope replay ...` reproducing the replay and summary views (without the leading "replay").
Args replay_command_args(const Session& s);
// The command for the session's current view, quoted for a POSIX shell, starting with `program`:
// `replay` for the replay and summary views, `model` for the others.
std::string command_line(const Session& s, const std::string& program = "kvscope");
std::string shell_quote(const std::string& arg);

// The model, method parameters and operation prices a session stands for, resolved through the
// CLI's option parser. Throws InputError (bad model file) or cli::UsageError (bad parameter).
struct Resolved {
  ModelShape shape;
  MethodConfig config;
  std::shared_ptr<const OpCostModel> ops;
};
Resolved resolve(const Session& s);

// The replay's configuration for a resolved session.
ReplayConfig replay_config(const Session& s, const Resolved& r);

// Session files: {"kvscope_session": 1, ...}. Keys left out keep their defaults; a key of the
// wrong type or with a bad value is an InputError naming the file and the key. Relative paths in
// the file are taken relative to the file's folder.
nlohmann::json session_to_json(const Session& s);
Session session_from_json(const nlohmann::json& j, const std::string& source,
                          const std::string& base_dir = "");
void save_session(const Session& s, const std::string& path);
Session load_session(const std::string& path);

}  // namespace kvscope::gui
