#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/error.h"
#include "model/shape.h"

using kvscope::InputError;
using kvscope::load_model;
using kvscope::model_from_hf_config;

TEST(ModelShape, PresetsLoadWithTheirPublishedShapes) {
  const auto l2 = load_model("llama-2-7b");
  EXPECT_EQ(l2.layers, 32);
  EXPECT_EQ(l2.d1(), 4096);
  EXPECT_EQ(l2.kv_heads, 32);
  EXPECT_EQ(l2.head_dim, 128);
  EXPECT_EQ(l2.dtype, kvscope::DType::f16);

  const auto l3 = load_model("llama-3.1-8b");
  EXPECT_EQ(l3.kv_heads, 8);
  EXPECT_EQ(l3.group_size(), 4);
  EXPECT_DOUBLE_EQ(l3.rope_theta, 500000.0);

  const auto l70 = load_model("llama-3.1-70b");
  EXPECT_EQ(l70.layers, 80);
  EXPECT_EQ(l70.hidden, 8192);

  const auto q = load_model("qwen2.5-7b");
  EXPECT_EQ(q.head_dim, 128);  // 3584 / 28
  EXPECT_TRUE(q.qkv_bias);
  EXPECT_EQ(load_model("mistral-7b").family, "mistral");
  EXPECT_GE(kvscope::model_preset_names().size(), 6u);
}

namespace {
nlohmann::json llama_like() {
  return {{"model_type", "llama"},        {"num_hidden_layers", 2}, {"hidden_size", 64},
          {"num_attention_heads", 4},     {"num_key_value_heads", 2},
          {"intermediate_size", 128},     {"vocab_size", 100}};
}

std::string error_of(const nlohmann::json& c) {
  try {
    model_from_hf_config(c, "cfg.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(ModelShape, DefaultsFollowHuggingFace) {
  auto c = llama_like();
  c.erase("num_key_value_heads");
  const auto m = model_from_hf_config(c, "cfg.json");
  EXPECT_EQ(m.kv_heads, 4);
  EXPECT_EQ(m.head_dim, 16);
  EXPECT_DOUBLE_EQ(m.rope_theta, 10000.0);
}

TEST(ModelShape, ExplicitHeadDimWins) {
  auto c = llama_like();
  c["head_dim"] = 32;
  EXPECT_EQ(model_from_hf_config(c, "cfg.json").head_dim, 32);
}

TEST(ModelShape, BadConfigsNameFileAndField) {
  auto missing = llama_like();
  missing.erase("hidden_size");
  EXPECT_EQ(error_of(missing), "cfg.json: hidden_size: missing (required for the model shape)");

  auto negative = llama_like();
  negative["num_hidden_layers"] = -3;
  EXPECT_NE(error_of(negative).find("num_hidden_layers: must be positive"), std::string::npos);

  auto text = llama_like();
  text["vocab_size"] = "many";
  EXPECT_NE(error_of(text).find("vocab_size: expected an integer"), std::string::npos);

  auto gqa = llama_like();
  gqa["num_key_value_heads"] = 3;
  EXPECT_NE(error_of(gqa).find("num_key_value_heads"), std::string::npos);

  auto family = llama_like();
  family["model_type"] = "gpt2";
  EXPECT_NE(error_of(family).find("unsupported model type 'gpt2'"), std::string::npos);

  auto dtype = llama_like();
  dtype["torch_dtype"] = "int4";
  EXPECT_NE(error_of(dtype).find("torch_dtype"), std::string::npos);

  EXPECT_NE(error_of(nlohmann::json::array()).find("JSON object"), std::string::npos);
}

TEST(ModelShape, UnknownPresetOrMissingFile) {
  try {
    load_model("llama-9-13b");
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.field(), "--model");
    EXPECT_NE(std::string(e.what()).find("llama-2-7b"), std::string::npos);  // lists presets
  }
}

TEST(ModelShape, ConfigFileThatIsNotJson) {
  const std::string path = ::testing::TempDir() + "/broken-config.json";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    std::fputs("{\"model_type\": \"llama\",", f);
    std::fclose(f);
  }
  EXPECT_THROW(load_model(path), InputError);
}
