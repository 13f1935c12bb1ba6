// The two techniques kvscope models and their parameters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvscope {

struct ModelShape;

// A method: how the KV cache is stored (an index into kv_format_registry(), model/kv_format.h)
// and whether CCV caching is on. kvscope's four methods are the two registered formats, exact
// and Fourier, each with CCV off and on.
struct Method {
  uint8_t format = 0;
  bool with_ccv = false;

  static const Method baseline, fourier, ccv, fourier_ccv;

  friend constexpr bool operator==(Method a, Method b) {
    return a.format == b.format && a.with_ccv == b.with_ccv;
  }
  friend constexpr bool operator!=(Method a, Method b) { return !(a == b); }
  friend constexpr bool operator<(Method a, Method b) {  // the order of all_methods()
    return a.with_ccv != b.with_ccv ? a.with_ccv < b.with_ccv : a.format < b.format;
  }
};
// Indices of the registered formats (kv_format_registry() keeps this order).
inline constexpr uint8_t kExactKvFormat = 0, kFourierKvFormat = 1;
inline constexpr Method Method::baseline{kExactKvFormat, false};
inline constexpr Method Method::fourier{kFourierKvFormat, false};
inline constexpr Method Method::ccv{kExactKvFormat, true};
inline constexpr Method Method::fourier_ccv{kFourierKvFormat, true};

// baseline | fourier | ccv | fourier_ccv: the format's method name, or its CCV name.
std::string_view method_name(Method m);
std::optional<Method> parse_method(std::string_view s);  // also accepts "fourier+ccv"
// Every registered format without CCV, then every one with it: baseline, fourier, ccv,
// fourier_ccv (the order of every table and chart).
const std::vector<Method>& all_methods();
// The position of `m` in all_methods() (charts and tables keyed by method use it).
size_t method_index(Method m);
inline bool uses_ccv(Method m) { return m.with_ccv; }
// For code about the Fourier format's own parameters (FourierConfig: sweeps over M, labels,
// the kernels kvscope check and calibrate run); bytes and costs go through the format.
inline bool uses_fourier(Method m) { return m.format == kFourierKvFormat; }

// Fourier-approximated KV cache. In every layer and KV head, the compressed head dimensions of
// K and V keep only `m` spectral coefficients for the tokens between the sink and the window;
// the other dimensions, and the sink and window tokens in every dimension, stay exact.
struct FourierConfig {
  // Which head dims are compressed. Empty: the lowest `compressed_count` dims, which the paper
  // finds insensitive to long context (with RoPE, the fastest-rotating pairs).
  std::vector<int64_t> compressed_dims;
  int64_t compressed_count = -1;  // -1: half of head_dim
  int64_t m = 256;                // spectral coefficients kept per compressed dim
  int64_t sink_tokens = 4;
  int64_t window_tokens = 64;

  // The dims actually compressed for this head size, sorted; throws InputError if invalid.
  std::vector<int64_t> resolve_dims(int64_t head_dim) const;
  // resolve_dims(head_dim).size(), without building the list when the count is all that is
  // needed (the memory model and the replay ask for it per token).
  int64_t resolved_count(int64_t head_dim) const;
  void validate(int64_t head_dim) const;
};

enum class Eviction { lru, lfu, ttl };
std::string_view eviction_name(Eviction e);
std::optional<Eviction> parse_eviction(std::string_view s);

// Compressed Context Vector caching: CCV = W_c Z + b_c maps the attention output Z (d1 x N)
// to d2 x N; after the first l_eff layers a cosine check against a cached CCV decides whether the
// remaining layers skip attention.
struct CcvConfig {
  int64_t d2 = -1;                          // -1: d1 / 2 (2048 for Llama-2-7B, as in the paper)
  int64_t l_eff = 8;                        // layers always computed (paper: 5-10)
  double threshold = 0.8;                   // cosine similarity needed for a hit
  int64_t budget_bytes = int64_t{4} << 30;  // CCV cache capacity
  Eviction eviction = Eviction::lru;
  double ttl_s = 600.0;  // expiry for Eviction::ttl

  int64_t resolved_d2(const ModelShape& shape) const;
  void validate(const ModelShape& shape) const;
};

// The parameters of every method: each format's and CCV's (model/kv_format.h says what a new
// format adds here).
struct MethodConfig {
  FourierConfig fourier;
  CcvConfig ccv;
};

// The paper's threshold presets: aggressive 0.7, balanced 0.8, conservative 0.9; or a number in
// (0, 1]. Returns nullopt for anything else.
std::optional<double> parse_threshold(std::string_view s);

}  // namespace kvscope
