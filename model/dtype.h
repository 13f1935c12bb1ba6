// Element types of weights, caches and activations.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kvscope {

enum class DType { f32, f16, bf16 };

constexpr int64_t dtype_bytes(DType t) { return t == DType::f32 ? 4 : 2; }
std::string_view dtype_name(DType t);
// Accepts kvscope's short names (f32, f16, bf16) and Hugging Face's (float32, float16, bfloat16).
std::optional<DType> parse_dtype(std::string_view s);

}  // namespace kvscope
