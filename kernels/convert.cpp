#include "kernels/convert.h"

#include <Eigen/Core>

namespace kvscope::kernels {

void to_f32(DType t, const void* src, float* dst, size_t n) {
  if (n == 0) return;  // empty tensors may come with null pointers
  switch (t) {
    case DType::f32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::bf16: {
      const auto* s = static_cast<const uint16_t*>(src);
#pragma omp simd
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::f16: {
      const auto* s = static_cast<const Eigen::half*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
  }
}

void from_f32(DType t, const float* src, void* dst, size_t n) {
  if (n == 0) return;
  switch (t) {
    case DType::f32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::bf16: {
      auto* d = static_cast<uint16_t*>(dst);
#pragma omp simd
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
      return;
    }
    case DType::f16: {
      auto* d = static_cast<Eigen::half*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = Eigen::half(src[i]);
      return;
    }
  }
}

std::vector<std::byte> encode(DType t, const std::vector<float>& v) {
  std::vector<std::byte> out(v.size() * static_cast<size_t>(dtype_bytes(t)));
  from_f32(t, v.data(), out.data(), v.size());
  return out;
}

std::vector<float> decode(DType t, const std::vector<std::byte>& bytes) {
  std::vector<float> out(bytes.size() / static_cast<size_t>(dtype_bytes(t)));
  to_f32(t, bytes.data(), out.data(), out.size());
  return out;
}

std::vector<float> round_through(DType t, const std::vector<float>& v) {
  return decode(t, encode(t, v));
}

}  // namespace kvscope::kernels
