// kvscope model: the paper's analytic cost model and kvscope's memory model over context lengths.
#include <cstdio>
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "model/cost.h"
#include "model/memory.h"
#include "sim/cli/commands.h"
#include "sim/cli/options.h"

namespace kvscope::cli {

namespace {

struct Row {
  int64_t n = 0;
  PaperTerms terms;
  PassCost paper, full;
  int64_t kv_baseline = 0, kv_fourier = 0;
  double kv_ccv = 0, kv_fourier_ccv = 0;
  int64_t ccv_entry = 0;
};

nlohmann::json row_json(const Row& r) {
  return {
      {"n", r.n},
      {"t_tran_ms", r.paper.t_tran_ms},
      {"t_ccv_ms", r.paper.t_ccv_ms},
      {"speedup", r.paper.speedup()},
      {"terms", {{"t_sa_ms", r.terms.t_sa_ms}, {"t_l_ms", r.terms.t_l_ms}, {"t_cos_ms", r.terms.t_cos_ms}}},
      {"full_layer",
       {{"t_tran_ms", r.full.t_tran_ms}, {"t_ccv_ms", r.full.t_ccv_ms}, {"speedup", r.full.speedup()}}},
      {"kv_bytes",
       {{"baseline", r.kv_baseline},
        {"fourier", r.kv_fourier},
        {"ccv", r.kv_ccv},
        {"fourier_ccv", r.kv_fourier_ccv}}},
      {"ccv_entry_bytes", r.ccv_entry},
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
  PaperTerms given;
  if (explicit_terms == 3) {
    given = {vm["t-sa"].as<double>(), vm["t-l"].as<double>(), vm["t-cos"].as<double>()};
    for (double v : {given.t_sa_ms, given.t_l_ms, given.t_cos_ms})
      if (!(v >= 0.0)) throw UsageError("--t-sa/--t-l/--t-cos: must be non-negative times in ms");
  }
  const int64_t ref_n = vm.count("ref-n") ? parse_tokens(vm["ref-n"].as<std::string>(), "--ref-n") : 0;

  const auto ops = cost_model_from(vm);
  const int64_t d2 = cfg.ccv.resolved_d2(shape);
  std::vector<Row> rows;
  for (int64_t n : ns) {
    Row r;
    r.n = n;
    if (explicit_terms == 3)
      r.terms = ref_n > 0 ? scale_paper_terms(given, ref_n, n) : given;
    else
      r.terms = paper_terms(*ops, shape, d2, n);
    r.paper = paper_cost(r.terms, shape.layers, cfg.ccv.l_eff, p);
    r.full = full_layer_cost(*ops, shape, cfg.ccv, n, p);
    r.kv_baseline = sequence_kv_bytes(shape, Method::baseline, cfg, n);
    r.kv_fourier = sequence_kv_bytes(shape, Method::fourier, cfg, n);
    r.kv_ccv = expected_sequence_kv_bytes(shape, Method::ccv, cfg, n, p);
    r.kv_fourier_ccv = expected_sequence_kv_bytes(shape, Method::fourier_ccv, cfg, n, p);
    r.ccv_entry = ccv_entry_bytes(shape, cfg.ccv, n);
    rows.push_back(r);
  }

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
    for (const Row& r : rows) out["rows"].push_back(row_json(r));
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
  for (const Row& r : rows) {
    std::printf("%9lld %12.4f %12.4f %8.3f %12.4f %12.4f %8.3f %11s %11s %11s %11s\n",
                static_cast<long long>(r.n), r.paper.t_tran_ms, r.paper.t_ccv_ms,
                r.paper.speedup(), r.full.t_tran_ms, r.full.t_ccv_ms, r.full.speedup(),
                human_bytes(static_cast<double>(r.kv_baseline)).c_str(),
                human_bytes(static_cast<double>(r.kv_fourier)).c_str(),
                human_bytes(r.kv_ccv).c_str(), human_bytes(r.kv_fourier_ccv).c_str());
  }
  std::cout << "\nKV bytes are per sequence; the CCV columns are expectations at hit probability p.\n"
               "full = the full-layer model (projections, MLP, norms), which the paper's model leaves out.\n";
  return kOk;
}

}  // namespace kvscope::cli
