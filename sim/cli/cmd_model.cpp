// kvscope model: the paper's analytic cost model and kvscope's memory model over context lengths.
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "model/analytic.h"
#include "model/memory.h"
#include "sim/cli/commands.h"
#include "sim/cli/options.h"

namespace kvscope::cli {

namespace {

nlohmann::json row_json(const AnalyticRow& r) {
  return {
      {"n", r.n_tokens},
      {"t_tran_ms", r.paper.t_tran_ms},
      {"t_ccv_ms", r.paper.t_ccv_ms},
      {"speedup", r.paper.speedup()},
      {"terms",
       {{"t_sa_ms", r.terms.t_sa_ms}, {"t_l_ms", r.terms.t_l_ms}, {"t_cos_ms", r.terms.t_cos_ms}}},
      {"full_layer",
       {{"t_tran_ms", r.full.t_tran_ms},
        {"t_ccv_ms", r.full.t_ccv_ms},
        {"speedup", r.full.speedup()}}},
      {"kv_bytes",
       {{"baseline", r.kv_baseline_bytes},
        {"fourier", r.kv_fourier_bytes},
        {"ccv", r.kv_ccv_bytes},
        {"fourier_ccv", r.kv_fourier_ccv_bytes}}},
      {"ccv_entry_bytes", r.ccv_entry_bytes},
  };
}

}  // namespace

int run_model(const Args& args) {
  po::options_description desc("kvscope model options");
  desc.add_options()
    ("model", po::value<std::string>()->required(),
     "model preset (llama-2-7b, llama-3.1-8b, llama-3.1-70b, mistral-7b, qwen2.5-7b, "
     "kvscope-tiny) or a Hugging Face config.json")
    ("n", po::value<std::string>()->default_value("1024,4096,32768"),
     "context lengths N, comma-separated (tokens; k = 1024)")
    ("p", po::value<double>()->default_value(0.5), "CCV hit probability p in [0,1]")
    ("t-sa", po::value<double>(), "explicit T_sa at --ref-n tokens (ms); needs --t-l and --t-cos")
    ("t-l", po::value<double>(), "explicit T_l at --ref-n tokens (ms)")
    ("t-cos", po::value<double>(), "explicit T_cos at --ref-n tokens (ms)")
    ("ref-n", po::value<std::string>(),
     "length at which the explicit terms were measured (tokens) [default: each N itself, "
     "i.e. the terms are used unchanged]")
    ("json", "print JSON instead of a table");
  add_method_options(desc);
  add_cost_options(desc);
  po::variables_map vm;
  if (!parse_or_help(args, desc, vm, "kvscope model --model M [--n 1024,4096] [options]")) return kOk;

  const ModelShape shape = load_model(vm["model"].as<std::string>());
  const MethodConfig cfg = method_config_from(vm, shape);
  const std::vector<int64_t> ns = parse_token_list(vm["n"].as<std::string>(), "--n");
  const double p = vm["p"].as<double>();
  if (!(p >= 0.0 && p <= 1.0)) throw UsageError("--p: must lie in [0, 1]");
  const int explicit_terms = static_cast<int>(vm.count("t-sa") + vm.count("t-l") + vm.count("t-cos"));
  if (explicit_terms != 0 && explicit_terms != 3)
    throw UsageError("--t-sa, --t-l and --t-cos go together: give all three or none");
  if (vm.count("ref-n") && explicit_terms == 0)
    throw UsageError("--ref-n only applies to explicit --t-sa/--t-l/--t-cos");
  std::optional<GivenPaperTerms> given;
  if (explicit_terms == 3) {
    given = GivenPaperTerms{
        {vm["t-sa"].as<double>(), vm["t-l"].as<double>(), vm["t-cos"].as<double>()}, 0};
    for (double v : {given->terms.t_sa_ms, given->terms.t_l_ms, given->terms.t_cos_ms})
      if (!(v >= 0.0)) throw UsageError("--t-sa/--t-l/--t-cos: must be non-negative times in ms");
    if (vm.count("ref-n"))
      given->ref_n_tokens = parse_tokens(vm["ref-n"].as<std::string>(), "--ref-n");
  }

  const auto ops = cost_model_from(vm);
  const int64_t d2 = cfg.ccv.resolved_d2(shape);
  const std::vector<AnalyticRow> rows = analytic_rows(shape, cfg, *ops, p, ns, given);

  const std::string terms_source =
      explicit_terms == 3 ? std::string("explicit") : ops->describe();
  if (vm.count("json")) {
    nlohmann::json out;
    out["model"] = shape.name;
    out["terms_source"] = terms_source;
    out["full_layer_source"] = ops->describe();
    out["params"] = {{"p", p},
                     {"layers", shape.layers},
                     {"l_eff", cfg.ccv.l_eff},
                     {"d1", shape.d1()},
                     {"d2", d2},
                     {"fourier_m", cfg.fourier.m},
                     {"fourier_compressed_dims", cfg.fourier.resolve_dims(shape.head_dim).size()},
                     {"fourier_sink", cfg.fourier.sink_tokens},
                     {"fourier_window", cfg.fourier.window_tokens},
                     {"dtype", std::string(dtype_name(shape.dtype))}};
    out["weight_bytes"] = model_weight_bytes(shape);
    out["ccv_layer_weight_bytes"] = ccv_layer_weight_bytes(shape, cfg.ccv);
    out["rows"] = nlohmann::json::array();
    for (const AnalyticRow& r : rows) out["rows"].push_back(row_json(r));
    std::cout << std::setprecision(17) << out.dump(2) << "\n";
    return kOk;
  }

  std::cout << "model " << shape.name << ": " << shape.layers << " layers, d1 " << shape.d1()
            << ", " << shape.heads << "/" << shape.kv_heads << " heads x " << shape.head_dim
            << ", " << dtype_name(shape.dtype) << "; weights " << human_bytes(static_cast<double>(model_weight_bytes(shape)))
            << "\n";
  std::cout << "p " << p << ", L_eff " << cfg.ccv.l_eff << ", d2 " << d2 << ", Fourier M "
            << cfg.fourier.m << " on " << cfg.fourier.resolve_dims(shape.head_dim).size()
            << " dims\npaper terms: " << terms_source << "\n\n";
  std::printf("%9s %12s %12s %8s %12s %12s %8s %11s %11s %11s %11s\n", "N", "T_tran ms",
              "T_ccv ms", "speedup", "full T_tran", "full T_ccv", "speedup", "KV base",
              "KV fourier", "KV ccv", "KV f+ccv");
  for (const AnalyticRow& r : rows) {
    std::printf("%9lld %12.4f %12.4f %8.3f %12.4f %12.4f %8.3f %11s %11s %11s %11s\n",
                static_cast<long long>(r.n_tokens), r.paper.t_tran_ms, r.paper.t_ccv_ms,
                r.paper.speedup(), r.full.t_tran_ms, r.full.t_ccv_ms, r.full.speedup(),
                human_bytes(static_cast<double>(r.kv_baseline_bytes)).c_str(),
                human_bytes(static_cast<double>(r.kv_fourier_bytes)).c_str(),
                human_bytes(r.kv_ccv_bytes).c_str(), human_bytes(r.kv_fourier_ccv_bytes).c_str());
  }
  std::cout << "\nKV bytes are per sequence; the CCV columns are expectations at hit probability p.\n"
               "full = the full-layer model (projections, MLP, norms), which the paper's model leaves out.\n";
  return kOk;
}

}  // namespace kvscope::cli
