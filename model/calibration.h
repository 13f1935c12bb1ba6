// Calibration: the cost model fitted to kernels measured on a real device.
//
// A calibration profile is what `kvscope calibrate` writes: Google Benchmark's JSON (one row per
// benchmark, named family/axis:value/..., see kernels/bench/bench.h) plus a "device" block. Each
// family is fitted separately by least squares on relative error, with non-negative constants:
//   time_ms = overhead_ms + flops / flops_per_ms + bytes / bytes_per_ms
// where flops and bytes are the same *_work() counts the roofline model uses (model/cost.h), so
// the fitted rates read as "achieved FLOP/s and B/s" and the overhead as the launch cost.
// CalibratedCostModel prices T_sa (attention_prefill), decode attention (attention_decode),
// attention over the Fourier cache (fourier_attention_decode / _prefill), T_l and the dense
// layers (gemm), T_cos (cosine_rows) and elementwise work (copy) from those fits.
//
// Step tables. A profile measured with `kvscope calibrate --model M` also holds the step_*
// families (kernels/bench/step_bench.h): the operations of M's steps at M's own shapes, timed
// the way a step runs them (back to back, over inputs rotated so the L2 cache holds no weights).
// One straight line per family cannot follow a GEMM from its weight-bound to its compute-bound
// regime, nor a kernel's tile and split choices; so where a query's fixed axes (everything but
// the row or token counts) match measured rows, the price is the step family's fit times the
// measured/fitted ratio interpolated between the measured points (linearly in the logarithms of
// the free axes: rows for GEMM and cosine, q_len and tokens for attention, tokens for the
// Fourier transforms, size for copies), and outside the measured range the nearest point's
// ratio. At a measured point the price is the measurement. Queries that match no step table
// fall back to the plain family fits above.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "model/cost.h"

namespace kvscope {

struct ProfileDevice {
  std::string backend;  // "cpu" | "cuda"
  std::string name;
  int64_t multiprocessors = 0;
  int64_t memory_bytes = 0;
  std::string driver;
  std::string date;
  double copy_bytes_per_s = 0;
  double gemm_flops_per_s_bf16 = 0;
  double gemm_flops_per_s_f32 = 0;
};

struct ProfileRow {
  std::string name;                     // the benchmark's full name
  std::string family;                   // before the first '/'
  std::map<std::string, int64_t> args;  // axis -> value
  double time_ms = 0;
};

struct CalibrationProfile {
  std::string source;  // file path, for messages
  ProfileDevice device;
  std::vector<ProfileRow> rows;  // measured iteration rows (aggregates and errors skipped)
  int64_t fourier_sink = 4, fourier_window = 64;
};

// Throws InputError naming the file and field for anything missing or malformed.
CalibrationProfile load_profile(const std::string& path);
CalibrationProfile parse_profile(const nlohmann::json& j, const std::string& source);

// The FLOPs and bytes of one row, from its family and axes; nullopt for a family kvscope does
// not model. Throws InputError when a known family lacks an axis.
std::optional<Work> row_work(const CalibrationProfile& p, const ProfileRow& r);

struct OpFit {
  std::string family;
  double overhead_ms = 0;
  double flops_per_ms = 0;  // 0: FLOPs did not explain the times (coefficient fitted to 0)
  double bytes_per_ms = 0;  // 0: likewise for bytes
  int64_t rows = 0;
  double rms_rel_residual = 0;  // sqrt(mean(((predicted - measured) / measured)^2))
  double max_rel_residual = 0;  // max |predicted - measured| / measured
  double predict_ms(const Work& w) const;
};

// Least squares on relative error with non-negative constants (exact: every subset of the three
// terms is solved and the best feasible one kept). Needs at least one row.
OpFit fit_family(const std::string& family, const std::vector<Work>& work,
                 const std::vector<double>& time_ms);

// Measured/fitted ratios of one step family at one setting of its fixed axes, over its free
// axes (1 or 2 of them: `outer` is the slower axis, 0 for 1-D tables).
struct StepGrid {
  // outer value -> (inner value, log(measured / fit)) sorted by inner value
  std::map<int64_t, std::vector<std::pair<int64_t, double>>> points;
  double log_ratio(int64_t outer, int64_t inner) const;
};

struct StepTable {
  OpFit fit;
  std::map<std::vector<int64_t>, StepGrid> grids;  // fixed axes -> grid
  int64_t rows = 0;
};

class CalibratedCostModel final : public OpCostModel {
 public:
  // Families the model needs; a profile without at least 3 rows of each is rejected.
  static const std::vector<std::string>& required_families();
  // Fits every family in the profile. Throws InputError for a missing required family.
  explicit CalibratedCostModel(const CalibrationProfile& p);

  std::string describe() const override;
  double attention_ms(const AttentionShape& a) const override;
  double fourier_attention_ms(const FourierAttentionShape& f) const override;
  double gemm_ms(const GemmShape& g) const override;
  double cosine_ms(int64_t rows, int64_t dim, DType t) const override;
  double elementwise_ms(double bytes) const override;
  double fourier_compress_ms(const FourierCompressShape& s) const override;
  double fourier_reconstruct_ms(const FourierCompressShape& s) const override;

  const ProfileDevice& device() const { return device_; }
  // The step tables (family -> table); empty for a profile measured without --model.
  const std::map<std::string, StepTable>& step_tables() const { return steps_; }
  const std::map<std::string, OpFit>& fits() const { return fits_; }
  const OpFit& fit(const std::string& family) const;
  // A table of the fits and their residuals, one family per line.
  std::string fit_report() const;

 private:
  std::string source_;
  ProfileDevice device_;
  std::map<std::string, OpFit> fits_;
  std::map<std::string, StepTable> steps_;
  // The step table's price of `w` at fixed axes `key` and free axes (outer, inner), or a
  // negative number when the family or key was not measured.
  double step_price(const std::string& family, const std::vector<int64_t>& key, int64_t outer,
                    int64_t inner, const Work& w) const;
};

// The fixed axes and free axes of a step_* row, in the order step_price() takes them; false for
// a family that is not a step family.
struct StepAxes {
  std::vector<int64_t> key;
  int64_t outer = 0, inner = 0;
};
bool step_axes(const CalibrationProfile& p, const ProfileRow& r, StepAxes& out);

// Rejects (InputError on field "--gpu") a profile measured on other hardware than the named
// preset (h100-sxm, h200: the GPU's name; cpu-2core: the cpu backend).
void check_profile_matches(const CalibrationProfile& p, const std::string& preset);

}  // namespace kvscope
