// The analytic view's numbers: for each context length N, the paper's cost model, the full-layer
// model and the KV bytes of each method, from the same model/ calls `kvscope model` makes.
#pragma once

#include <cstdint>
#include <vector>

#include "gui/session.h"
#include "model/cost.h"

namespace kvscope::gui {

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

std::vector<AnalyticRow> analytic_rows(const Resolved& r, double p, const std::vector<int64_t>& ns);

}  // namespace kvscope::gui
