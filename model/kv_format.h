// How a method stores one sequence's KV cache: the seam between a KV layout and everything that
// asks what it costs. The memory model (model/memory.h), the step pricer (sim/engine/), the
// replay and the reports ask the format; none of them branch on which format it is.
//
// A method is a KV format with CCV caching on or off (model/methods.h): the formats below times
// {off, on} are the methods kvscope knows. The exact cache ("baseline", "ccv") and the
// Fourier-approximated cache ("fourier", "fourier_ccv") are the two registered today.
//
// Adding a format (e.g. an FP8 or 2-bit quantized cache):
//   1. a file model/kv_<name>.cpp with a KvFormat subclass and its factory;
//   2. one line in kv_format_registry() (model/kv_format.cpp), appended so that the indices of
//      the formats before it, and so the Method constants of model/methods.h, stay;
//   3. if it has parameters, a struct beside FourierConfig in MethodConfig (model/methods.h),
//      its validation, and its options in the run settings (CLI, GUI, JSON);
//   4. to be checked on real kernels (kvscope check), a cache of that form in the kernel
//      executor (sim/check/executor.cpp) and kernels for it (kernels/backend.h); a replay, plan
//      and the GUI need nothing more.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "model/methods.h"
#include "model/shape.h"

namespace kvscope {

class OpCostModel;

// One format bound to a model and the method parameters: every question is asked per token
// count, in hot loops of the replay, so whatever the parameters resolve to is resolved once, at
// construction (which also validates them, throwing InputError).
class KvFormat {
 public:
  virtual ~KvFormat() = default;

  // K and V bytes of one layer holding `tokens` tokens of one sequence, exact to the byte.
  virtual int64_t layer_bytes(int64_t tokens) const = 0;

  // One layer's attention for `seqs` sequences, each with `q_tokens` new tokens over `kv_len`
  // keys (its new tokens included), its cache allocated for `cache_tokens` tokens (>= kv_len;
  // 0: kv_len), which decides the form a cache is in.
  virtual double attention_ms(const OpCostModel& ops, int64_t seqs, int64_t q_tokens,
                              int64_t kv_len, int64_t cache_tokens) const = 0;

  // What one layer spends, after a prefill chunk of `q_tokens` over `kv_len` keys, to keep the
  // sequence's cache in this format (its K and V), beyond the attention. 0: nothing to maintain.
  virtual double prefill_upkeep_ms(const OpCostModel& ops, int64_t q_tokens, int64_t kv_len,
                                   int64_t cache_tokens) const;

  // The head dimensions held in compressed form (0 for exact layouts); reports print it.
  virtual int64_t compressed_dims() const { return 0; }
};

// A registered format.
struct KvFormatInfo {
  std::string_view name;         // "exact", "fourier"
  std::string_view method_name;  // the method without CCV: "baseline", "fourier"
  std::string_view ccv_name;     // with CCV: "ccv", "fourier_ccv"
  std::string_view label;        // for charts: "baseline", "Fourier"
  std::string_view ccv_label;    // "CCV", "Fourier+CCV"
  std::unique_ptr<KvFormat> (*make)(const ModelShape& shape, const MethodConfig& config);
};

// Every format, in a fixed order (the index is Method::format).
const std::vector<KvFormatInfo>& kv_format_registry();
const KvFormatInfo& kv_format_info(const Method& m);

// The method's format bound to `shape` and `config` (validates the format's parameters).
std::unique_ptr<KvFormat> make_kv_format(const Method& m, const ModelShape& shape,
                                         const MethodConfig& config);

}  // namespace kvscope
