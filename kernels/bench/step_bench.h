// Step benchmarks: the operations one model's steps run, at that model's own shapes, timed the
// way a step runs them. They feed the step tables of the calibrated cost model
// (model/calibration.h), which `kvscope check` holds against whole steps run on the kernels.
//
// Why not the generic families of bench.h: a step runs each operation back to back with the
// next, on weights and caches that are not in the last-level cache (each layer has its own, and
// every other layer's weights and caches pass through the cache between two uses of one
// layer's), and a GEMM's speed follows its row count through tile and split choices that one
// straight line per family cannot follow. So each point here times `k` calls back to back (k
// chosen so a timed run lasts about a millisecond), rotating over copies of the inputs that
// together exceed the last-level cache (kStepRotateBytes: an H100's L2, a CPU's L3), each copy
// used again only after all the others, and reports the mean time of one call. Families and
// axes:
//   step_copy/kib                                       elementwise stand-in (copy of kib KiB)
//   step_gemm/bf16/rows/out/in/bias                     QKV, O, gate+up, down, LM head, CCV layer
//   step_attention/bf16/batch/q_heads/kv_heads/head_dim/q_len/tokens      exact, causal
//   step_fourier_attention/(same)/cdims/m               over the Fourier cache
//   step_fourier_compress/bf16/heads/tokens/head_dim/cdims/m   one K or V tensor
//   step_fourier_reconstruct/(same)
//   step_cosine_rows/bf16/rows/dim                      the CCV check
// The free axes (rows, q_len, tokens, kib) run over grids covering the replay's steps: up to the
// token budget, the batch size and the longest context.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/backend.h"
#include "kernels/bench/bench.h"
#include "model/memory.h"
#include "model/shape.h"

namespace kvscope::kernels::bench {

struct StepBenchConfig {
  ModelShape model;
  MethodConfig methods;
  bool fourier = true;          // measure the Fourier cache's operations
  bool ccv = true;              // measure the CCV layer and the cosine check
  int64_t max_context = 32768;  // longest sequence (tokens)
  int64_t max_rows = 8192;      // most tokens in one step (the token budget)
  int64_t max_seqs = 256;       // most sequences in one step
};

// The rotated inputs of one point (a GEMM's weight, attention's K and V, ...) are copies that
// together hold at least this much: an H100's 50 MB L2 ten times over and a server CPU's L3 (32
// MB on the 2-core EPYC of results/profiles/) sixteen times over. Far more than the cache, not
// just past it: a GPU's L2 does not replace strictly least-recently-used lines, so a rotation
// only two or three times its size still finds part of a copy there, which a step (where every
// other layer's weights and caches pass between two uses of one layer's) never does.
constexpr size_t kStepRotateBytes = size_t{512} << 20;
// At most this many copies (operands under 8 KiB rotate over less than kStepRotateBytes).
constexpr size_t kStepMaxCopies = size_t{1} << 16;

// Copies of an operand of `operand_bytes` that together hold at least kStepRotateBytes.
int rotation_copies(size_t operand_bytes);

// The order a point uses its copies in: 0, 1, ..., copies - 1, 0, 1, ... carried across timed
// runs, so that no copy is used twice before every other copy was used once.
class CopyRotation {
 public:
  explicit CopyRotation(int copies) : copies_(copies < 1 ? 1 : copies) {}
  int next() {
    const int i = next_;
    next_ = (next_ + 1) % copies_;
    return i;
  }

 private:
  int copies_, next_ = 0;
};

// Geometric grid from 1 to `max` (included), `per_octave` points per doubling, integers.
std::vector<int64_t> geometric_grid(int64_t lo, int64_t max, int per_octave);

// Registers the step families with Google Benchmark. `b`, `m` and `c` must outlive the run.
void register_step_benchmarks(Backend& b, const DeviceMeasurement& m, const StepBenchConfig& c);

}  // namespace kvscope::kernels::bench
