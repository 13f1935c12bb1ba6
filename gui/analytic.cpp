#include "gui/analytic.h"

#include "model/memory.h"

namespace kvscope::gui {

double AnalyticRow::kv_bytes(Method m) const {
  switch (m) {
    case Method::baseline:
      return static_cast<double>(kv_baseline_bytes);
    case Method::fourier:
      return static_cast<double>(kv_fourier_bytes);
    case Method::ccv:
      return kv_ccv_bytes;
    case Method::fourier_ccv:
      return kv_fourier_ccv_bytes;
  }
  return 0;
}

std::vector<AnalyticRow> analytic_rows(const Resolved& r, double p,
                                       const std::vector<int64_t>& ns) {
  const int64_t d2 = r.config.ccv.resolved_d2(r.shape);
  std::vector<AnalyticRow> rows;
  rows.reserve(ns.size());
  for (int64_t n : ns) {
    AnalyticRow row;
    row.n_tokens = n;
    row.terms = paper_terms(*r.ops, r.shape, d2, n);
    row.paper = paper_cost(row.terms, r.shape.layers, r.config.ccv.l_eff, p);
    row.full = full_layer_cost(*r.ops, r.shape, r.config.ccv, n, p);
    row.kv_baseline_bytes = sequence_kv_bytes(r.shape, Method::baseline, r.config, n);
    row.kv_fourier_bytes = sequence_kv_bytes(r.shape, Method::fourier, r.config, n);
    row.kv_ccv_bytes = expected_sequence_kv_bytes(r.shape, Method::ccv, r.config, n, p);
    row.kv_fourier_ccv_bytes =
        expected_sequence_kv_bytes(r.shape, Method::fourier_ccv, r.config, n, p);
    row.ccv_entry_bytes = ccv_entry_bytes(r.shape, r.config.ccv, n);
    rows.push_back(row);
  }
  return rows;
}

}  // namespace kvscope::gui
