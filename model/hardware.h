// What a device can do, as far as the roofline cost model is concerned. Nominal datasheet
// figures until a calibration profile replaces them with measured ones.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/dtype.h"

namespace kvscope {

struct HardwareProfile {
  std::string name;
  std::string source;              // "datasheet" or the calibration profile it came from
  double peak_flops_16 = 0;        // dense bf16/f16 matrix FLOP/s
  double peak_flops_32 = 0;        // dense f32 FLOP/s (no TF32)
  double mem_bytes_per_s = 0;      // device memory bandwidth
  int64_t memory_bytes = 0;        // device memory capacity
  double launch_overhead_ms = 0;   // fixed cost per kernel launch
  int64_t multiprocessors = 0;

  double peak_flops(DType t) const { return t == DType::f32 ? peak_flops_32 : peak_flops_16; }
};

// h100-sxm, h200, cpu-2core. Throws InputError for an unknown name.
HardwareProfile hardware_preset(const std::string& name);
std::vector<std::string> hardware_preset_names();

}  // namespace kvscope
