#include "model/kv_format.h"

#include <stdexcept>

namespace kvscope {

// Each format's factory, defined in its own file.
std::unique_ptr<KvFormat> make_exact_kv(const ModelShape& shape, const MethodConfig& config);
std::unique_ptr<KvFormat> make_fourier_kv(const ModelShape& shape, const MethodConfig& config);

double KvFormat::prefill_upkeep_ms(const OpCostModel&, int64_t, int64_t, int64_t) const {
  return 0.0;
}

const std::vector<KvFormatInfo>& kv_format_registry() {
  // Append only: a format's index is its Method::format (model/methods.h names the first two).
  static const std::vector<KvFormatInfo> formats = {
      {"exact", "baseline", "ccv", "baseline", "CCV", &make_exact_kv},
      {"fourier", "fourier", "fourier_ccv", "Fourier", "Fourier+CCV", &make_fourier_kv},
  };
  return formats;
}

const KvFormatInfo& kv_format_info(const Method& m) {
  const auto& formats = kv_format_registry();
  if (m.format >= formats.size())
    throw std::logic_error("kv_format_info: KV format " + std::to_string(m.format) +
                           " is not registered");
  return formats[m.format];
}

std::unique_ptr<KvFormat> make_kv_format(const Method& m, const ModelShape& shape,
                                         const MethodConfig& config) {
  return kv_format_info(m).make(shape, config);
}

}  // namespace kvscope
