// Host-side conversions between f32 and the 16-bit storage types. bf16 rounds to nearest, ties
// to even (what PyTorch and CUDA's __float2bfloat16_rn do), and keeps NaN a NaN; f16 goes
// through Eigen::half, which rounds the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "model/dtype.h"

namespace kvscope::kernels {

inline float bf16_to_f32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  // Adding 0x7fff plus the lowest kept bit rounds half-way cases to the even neighbour.
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

// n elements of type t at src (raw bytes) -> f32, and back.
void to_f32(DType t, const void* src, float* dst, size_t n);
void from_f32(DType t, const float* src, void* dst, size_t n);

// Whole-vector helpers for tests and tools: encode rounds; decode is exact.
std::vector<std::byte> encode(DType t, const std::vector<float>& v);
std::vector<float> decode(DType t, const std::vector<std::byte>& bytes);
// The value each f32 becomes after a round trip through t (what a backend actually sees).
std::vector<float> round_through(DType t, const std::vector<float>& v);

}  // namespace kvscope::kernels
