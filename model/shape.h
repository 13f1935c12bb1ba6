// Model shapes: what kvscope needs to know about a decoder-only transformer to count its bytes
// and price its kernels. Read from a Hugging Face config.json (Llama, Mistral, Qwen2 families)
// or one of the presets shipped in model/presets/ (which are such files, compiled in).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "model/dtype.h"

namespace kvscope {

struct ModelShape {
  std::string name;    // preset name or config path
  std::string family;  // llama | mistral | qwen2
  int64_t layers = 0;
  int64_t hidden = 0;  // d_model
  int64_t heads = 0;   // query heads
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t intermediate = 0;  // MLP width (gated: gate and up are each this wide)
  int64_t vocab = 0;
  double rope_theta = 10000.0;
  DType dtype = DType::bf16;
  bool tied_embeddings = false;
  bool qkv_bias = false;  // Qwen2 has biases on q, k, v

  // The width of the attention output Z, the paper's d1 (4096 for Llama-2-7B).
  int64_t d1() const { return heads * head_dim; }
  int64_t kv_width() const { return kv_heads * head_dim; }
  int64_t group_size() const { return heads / kv_heads; }
};

// Parses a Hugging Face config.json object. `source` names it in error messages.
ModelShape model_from_hf_config(const nlohmann::json& config, const std::string& source);

// A preset name (see model_preset_names()) or a path to a config.json file.
// Throws InputError naming the file and field for anything missing or inconsistent.
ModelShape load_model(const std::string& preset_or_path);

std::vector<std::string> model_preset_names();

}  // namespace kvscope
