#include "model/analytic.h"

namespace kvscope {

double AnalyticRow::kv_bytes(Method m) const {
  if (m == Method::baseline) return static_cast<double>(kv_baseline_bytes);
  if (m == Method::fourier) return static_cast<double>(kv_fourier_bytes);
  if (m == Method::ccv) return kv_ccv_bytes;
  if (m == Method::fourier_ccv) return kv_fourier_ccv_bytes;
  return 0;
}

std::vector<AnalyticRow> analytic_rows(const ModelShape& shape, const MethodConfig& config,
                                       const OpCostModel& ops, double p,
                                       const std::vector<int64_t>& ns,
                                       const std::optional<GivenPaperTerms>& given) {
  const int64_t d2 = config.ccv.resolved_d2(shape);
  std::vector<AnalyticRow> rows;
  rows.reserve(ns.size());
  for (int64_t n : ns) {
    AnalyticRow row;
    row.n_tokens = n;
    if (given)
      row.terms = given->ref_n_tokens > 0 ? scale_paper_terms(given->terms, given->ref_n_tokens, n)
                                          : given->terms;
    else
      row.terms = paper_terms(ops, shape, d2, n);
    row.paper = paper_cost(row.terms, shape.layers, config.ccv.l_eff, p);
    row.full = full_layer_cost(ops, shape, config.ccv, n, p);
    row.kv_baseline_bytes = sequence_kv_bytes(shape, Method::baseline, config, n);
    row.kv_fourier_bytes = sequence_kv_bytes(shape, Method::fourier, config, n);
    row.kv_ccv_bytes = expected_sequence_kv_bytes(shape, Method::ccv, config, n, p);
    row.kv_fourier_ccv_bytes = expected_sequence_kv_bytes(shape, Method::fourier_ccv, config, n, p);
    row.ccv_entry_bytes = ccv_entry_bytes(shape, config.ccv, n);
    rows.push_back(row);
  }
  return rows;
}

}  // namespace kvscope
