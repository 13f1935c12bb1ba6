#include <gtest/gtest.h>

#include "model/error.h"
#include "model/memory.h"

using namespace kvscope;

// Published parameter counts (Hugging Face model cards / safetensors metadata) are an
// independent check of the per-layer weight arithmetic.
TEST(Memory, WeightBytesMatchPublishedParameterCounts) {
  EXPECT_EQ(model_weight_bytes(load_model("llama-2-7b")), int64_t{6738415616} * 2);
  EXPECT_EQ(model_weight_bytes(load_model("llama-3.1-8b")), int64_t{8030261248} * 2);
  EXPECT_EQ(model_weight_bytes(load_model("llama-3.1-70b")), int64_t{70553706496} * 2);
  EXPECT_EQ(model_weight_bytes(load_model("mistral-7b")), int64_t{7241732096} * 2);
  EXPECT_EQ(model_weight_bytes(load_model("qwen2.5-7b")), int64_t{7615616512} * 2);
}

// KV bytes per token for the whole model: 2 (K,V) x layers x kv_heads x head_dim x bytes.
TEST(Memory, BaselineKvPerTokenForEachPreset) {
  const MethodConfig cfg;
  struct Case { const char* name; int64_t per_token; };
  const Case cases[] = {
      {"llama-2-7b", 2 * 32 * 32 * 128 * 2},    // 512 KiB per token
      {"llama-3.1-8b", 2 * 32 * 8 * 128 * 2},   // 128 KiB
      {"llama-3.1-70b", 2 * 80 * 8 * 128 * 2},  // 320 KiB
      {"mistral-7b", 2 * 32 * 8 * 128 * 2},
      {"qwen2.5-7b", 2 * 28 * 4 * 128 * 2},     // 56 KiB
      {"kvscope-tiny", 2 * 4 * 2 * 64 * 4},
  };
  for (const auto& c : cases) {
    const ModelShape s = load_model(c.name);
    EXPECT_EQ(sequence_kv_bytes(s, Method::baseline, cfg, 1), c.per_token) << c.name;
    EXPECT_EQ(sequence_kv_bytes(s, Method::baseline, cfg, 4096), 4096 * c.per_token) << c.name;
  }
}

// Llama-2-7B, 64 of 128 dims compressed to M=256, sink 4, window 64, N=32768, fp16:
// per KV head and for each of K and V: 64*32768 exact + 64*(68 + 256) compressed.
TEST(Memory, FourierHandComputed) {
  const ModelShape s = load_model("llama-2-7b");
  MethodConfig cfg;
  const int64_t per_head = 64 * 32768 + 64 * (68 + 256);
  const int64_t per_layer = 2 * 32 * per_head * 2;
  EXPECT_EQ(fourier_layer_kv_bytes(s, cfg.fourier, 32768), per_layer);
  EXPECT_EQ(sequence_kv_bytes(s, Method::fourier, cfg, 32768), 32 * per_layer);
  // Ratio to the exact cache approaches 1/2 as N grows.
  const double ratio = static_cast<double>(sequence_kv_bytes(s, Method::fourier, cfg, 32768)) /
                       static_cast<double>(sequence_kv_bytes(s, Method::baseline, cfg, 32768));
  EXPECT_NEAR(ratio, 0.5 + 0.5 * (68.0 + 256.0) / 32768.0, 1e-12);
}

TEST(Memory, FourierShortSequencesStayExact) {
  const ModelShape s = load_model("llama-3.1-8b");
  MethodConfig cfg;
  // Up to sink + window tokens nothing is compressed: same bytes as the exact cache.
  for (int64_t n : {1, 10, 68})
    EXPECT_EQ(sequence_kv_bytes(s, Method::fourier, cfg, n), sequence_kv_bytes(s, Method::baseline, cfg, n));
  // One token past the edge: the coefficient buffer appears, M=256 per compressed dim.
  const int64_t extra = 2 * 8 * 64 * (256 - 0) * 2 * 32;  // K,V x kv_heads x dims x M x bytes x layers
  EXPECT_EQ(sequence_kv_bytes(s, Method::fourier, cfg, 69) - sequence_kv_bytes(s, Method::baseline, cfg, 69),
            extra - 2 * 8 * 64 * 1 * 2 * 32);  // the one middle token's compressed dims are gone
}

TEST(Memory, FourierExplicitDimsAndAllDims) {
  const ModelShape s = load_model("llama-3.1-8b");
  MethodConfig cfg;
  cfg.fourier.compressed_dims = {0, 1, 126, 127};
  cfg.fourier.m = 8;
  cfg.fourier.sink_tokens = 0;
  cfg.fourier.window_tokens = 0;
  EXPECT_EQ(fourier_layer_kv_bytes(s, cfg.fourier, 100), 2 * 8 * (124 * 100 + 4 * 8) * 2);
  cfg.fourier.compressed_dims.clear();
  cfg.fourier.compressed_count = 128;
  EXPECT_EQ(fourier_layer_kv_bytes(s, cfg.fourier, 100000), 2 * 8 * 128 * 8 * 2);
  cfg.fourier.compressed_dims = {5, 5};
  EXPECT_THROW(fourier_layer_kv_bytes(s, cfg.fourier, 10), InputError);
  cfg.fourier.compressed_dims = {128};
  EXPECT_THROW(fourier_layer_kv_bytes(s, cfg.fourier, 10), InputError);
}

TEST(Memory, CcvHitKeepsOnlyTheEffectiveLayers) {
  const ModelShape s = load_model("llama-2-7b");
  MethodConfig cfg;
  cfg.ccv.l_eff = 8;
  const int64_t layer = exact_layer_kv_bytes(s, 1000);
  EXPECT_EQ(sequence_kv_bytes(s, Method::ccv, cfg, 1000, true), 8 * layer);
  EXPECT_EQ(sequence_kv_bytes(s, Method::ccv, cfg, 1000, false), 32 * layer);
  EXPECT_DOUBLE_EQ(expected_sequence_kv_bytes(s, Method::ccv, cfg, 1000, 0.0), 32.0 * static_cast<double>(layer));
  EXPECT_DOUBLE_EQ(expected_sequence_kv_bytes(s, Method::ccv, cfg, 1000, 1.0), 8.0 * static_cast<double>(layer));
  EXPECT_DOUBLE_EQ(expected_sequence_kv_bytes(s, Method::ccv, cfg, 1000, 0.25),
                   8.0 * static_cast<double>(layer) + 0.75 * 24.0 * static_cast<double>(layer));
  // With L_eff = L_total a hit saves nothing.
  cfg.ccv.l_eff = 32;
  EXPECT_EQ(sequence_kv_bytes(s, Method::ccv, cfg, 1000, true), sequence_kv_bytes(s, Method::baseline, cfg, 1000));
  // fourier_ccv: Fourier layers, l_eff of them on a hit.
  cfg.ccv.l_eff = 4;
  EXPECT_EQ(sequence_kv_bytes(s, Method::fourier_ccv, cfg, 5000, true), 4 * fourier_layer_kv_bytes(s, cfg.fourier, 5000));
}

TEST(Memory, CcvEntryAndLayerWeights) {
  const ModelShape s = load_model("llama-2-7b");
  CcvConfig c;  // d2 defaults to d1/2 = 2048
  EXPECT_EQ(c.resolved_d2(s), 2048);
  EXPECT_EQ(ccv_entry_bytes(s, c, 1000), 2048 * 1000 * 2);
  EXPECT_EQ(ccv_layer_weight_bytes(s, c), (2048 * 4096 + 2048) * 2);
  c.d2 = 512;
  EXPECT_EQ(ccv_entry_bytes(s, c, 1), 512 * 2);
}
