// The analytic rows: for each context length N, the paper's cost model, the full-layer model and
// the KV bytes per sequence of each method. `kvscope model` prints them and kvscope-gui's
// analytic view draws them, both from this one function.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "model/cost.h"
#include "model/memory.h"
#include "model/shape.h"

namespace kvscope {

struct AnalyticRow {
  int64_t n_tokens = 0;
  PaperTerms terms;
  PassCost paper, full;
  int64_t kv_baseline_bytes = 0, kv_fourier_bytes = 0;
  double kv_ccv_bytes = 0, kv_fourier_ccv_bytes = 0;  // expectations at hit probability p
  int64_t ccv_entry_bytes = 0;

  // KV bytes per sequence of `m` (expected at p for the CCV methods).
  double kv_bytes(Method m) const;
};

// The paper's terms when they are measured rather than priced: taken at ref_n_tokens and carried
// to each N by scale_paper_terms, or used unchanged at every N when ref_n_tokens is 0.
struct GivenPaperTerms {
  PaperTerms terms;
  int64_t ref_n_tokens = 0;
};

// One row per length in `ns`, in order. The paper's terms come from `given` when there are any,
// else from `ops`; the full-layer model is always priced by `ops`.
std::vector<AnalyticRow> analytic_rows(const ModelShape& shape, const MethodConfig& config,
                                       const OpCostModel& ops, double p,
                                       const std::vector<int64_t>& ns,
                                       const std::optional<GivenPaperTerms>& given = std::nullopt);

}  // namespace kvscope
