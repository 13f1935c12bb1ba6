#include "model/shape.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "model/error.h"
#include "model/presets_embedded.h"

namespace kvscope {
namespace {

using nlohmann::json;

int64_t positive_int(const json& c, const std::string& source, const char* key) {
  if (!c.contains(key)) throw InputError(source, key, "missing (required for the model shape)");
  const json& v = c.at(key);
  if (!v.is_number_integer()) throw InputError(source, key, "expected an integer, got " + v.dump());
  const int64_t x = v.get<int64_t>();
  if (x <= 0) throw InputError(source, key, "must be positive, got " + std::to_string(x));
  return x;
}

int64_t positive_int_or(const json& c, const std::string& source, const char* key,
                        int64_t fallback) {
  if (!c.contains(key) || c.at(key).is_null()) return fallback;
  return positive_int(c, source, key);
}

}  // namespace

ModelShape model_from_hf_config(const json& c, const std::string& source) {
  if (!c.is_object()) throw InputError(source, "", "a config.json must be a JSON object");
  ModelShape m;
  m.name = source;
  if (!c.contains("model_type") || !c.at("model_type").is_string())
    throw InputError(source, "model_type", "missing; kvscope reads llama, mistral and qwen2 configs");
  m.family = c.at("model_type").get<std::string>();
  if (m.family != "llama" && m.family != "mistral" && m.family != "qwen2")
    throw InputError(source, "model_type",
                     "unsupported model type '" + m.family + "' (supported: llama, mistral, qwen2)");
  m.layers = positive_int(c, source, "num_hidden_layers");
  m.hidden = positive_int(c, source, "hidden_size");
  m.heads = positive_int(c, source, "num_attention_heads");
  m.kv_heads = positive_int_or(c, source, "num_key_value_heads", m.heads);
  m.intermediate = positive_int(c, source, "intermediate_size");
  m.vocab = positive_int(c, source, "vocab_size");
  if (c.contains("head_dim") && !c.at("head_dim").is_null()) {
    m.head_dim = positive_int(c, source, "head_dim");
  } else {
    if (m.hidden % m.heads != 0)
      throw InputError(source, "num_attention_heads",
                       "hidden_size " + std::to_string(m.hidden) + " is not divisible by " +
                           std::to_string(m.heads) + " heads and no head_dim is given");
    m.head_dim = m.hidden / m.heads;
  }
  if (m.heads % m.kv_heads != 0)
    throw InputError(source, "num_key_value_heads",
                     std::to_string(m.kv_heads) + " KV heads do not divide " +
                         std::to_string(m.heads) + " query heads");
  if (c.contains("rope_theta")) {
    const json& v = c.at("rope_theta");
    if (!v.is_number() || v.get<double>() <= 0)
      throw InputError(source, "rope_theta", "expected a positive number, got " + v.dump());
    m.rope_theta = v.get<double>();
  }
  if (c.contains("torch_dtype") && !c.at("torch_dtype").is_null()) {
    const json& v = c.at("torch_dtype");
    auto t = v.is_string() ? parse_dtype(v.get<std::string>()) : std::nullopt;
    if (!t) throw InputError(source, "torch_dtype", "expected float32, float16 or bfloat16, got " + v.dump());
    m.dtype = *t;
  }
  if (c.contains("tie_word_embeddings")) {
    const json& v = c.at("tie_word_embeddings");
    if (!v.is_boolean()) throw InputError(source, "tie_word_embeddings", "expected true or false");
    m.tied_embeddings = v.get<bool>();
  }
  m.qkv_bias = m.family == "qwen2";
  if (c.contains("attention_bias") && c.at("attention_bias").is_boolean())
    m.qkv_bias = c.at("attention_bias").get<bool>();
  return m;
}

std::vector<std::string> model_preset_names() {
  std::vector<std::string> names;
  for (const auto& p : embedded_presets()) names.emplace_back(p.name);
  return names;
}

ModelShape load_model(const std::string& preset_or_path) {
  for (const auto& p : embedded_presets()) {
    if (p.name == preset_or_path) {
      ModelShape m = model_from_hf_config(json::parse(p.config_json), std::string(p.name));
      m.name = p.name;
      return m;
    }
  }
  const std::filesystem::path path(preset_or_path);
  if (!std::filesystem::exists(path)) {
    std::string known;
    for (const auto& n : model_preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw InputError(preset_or_path, "--model",
                     "unknown model: neither a preset (" + known + ") nor an existing config.json");
  }
  std::ifstream in(path);
  if (!in) throw InputError(preset_or_path, "", "cannot open file");
  json c;
  try {
    c = json::parse(in);
  } catch (const json::parse_error& e) {
    throw InputError(preset_or_path, "", std::string("not valid JSON: ") + e.what());
  }
  return model_from_hf_config(c, preset_or_path);
}

}  // namespace kvscope
