#include "model/hardware.h"

#include "model/error.h"

namespace kvscope {
namespace {
std::vector<HardwareProfile> presets() {
  // NVIDIA H100 SXM5 and H200 datasheets (dense, no sparsity). The CPU entry is a
  // 2-core AVX2 machine at ~3 GHz (2 FMA ports x 8 f32 lanes x 2 FLOP x 2 cores) with one
  // DDR channel; it only seeds the model until `kvscope calibrate --backend cpu` measures it.
  HardwareProfile h100{"h100-sxm", "datasheet", 989.4e12, 66.9e12, 3.35e12,
                       int64_t{80} << 30, 0.003, 132};
  HardwareProfile h200{"h200", "datasheet", 989.4e12, 66.9e12, 4.8e12,
                       int64_t{141} * 1000 * 1000 * 1000, 0.003, 132};
  HardwareProfile cpu{"cpu-2core", "datasheet", 96e9, 192e9, 20e9, int64_t{24} << 30, 0.0005, 2};
  return {h100, h200, cpu};
}
}  // namespace

HardwareProfile hardware_preset(const std::string& name) {
  for (const auto& p : presets())
    if (p.name == name) return p;
  std::string known;
  for (const auto& n : hardware_preset_names()) known += (known.empty() ? "" : ", ") + n;
  throw InputError(name, "--gpu", "unknown hardware preset (known: " + known + ")");
}

std::vector<std::string> hardware_preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets()) names.push_back(p.name);
  return names;
}

}  // namespace kvscope
