// Loading checks: every missing or misshaped tensor is named, with expected vs actual.
#include <gtest/gtest.h>

#include <cstring>

#include "../support/memory_source.h"
#include "core/error.h"
#include "model/config.h"
#include "model/moe.h"
#include "model/weights.h"

namespace smoe {
namespace {

std::string bind_error(const ModelConfig& c, std::shared_ptr<test::MemorySource> src) {
  try {
    bind_weights(src, c, NameScheme::Gguf);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Weights, MissingTensorIsNamed) {
  const ModelConfig c = test::tiny_mixtral();
  auto src = test::make_model(c, NameScheme::Gguf);
  src->drop("blk.1.attn_k.weight");
  const std::string e = bind_error(c, src);
  EXPECT_NE(e.find("missing tensor 'blk.1.attn_k.weight'"), std::string::npos) << e;
  EXPECT_NE(e.find("[16, 32]"), std::string::npos) << e;
}

TEST(Weights, MisshapedTensorIsNamedWithBothShapes) {
  const ModelConfig c = test::tiny_mixtral();
  auto src = test::make_model(c, NameScheme::Gguf);
  src->drop("blk.0.ffn_up_exps.weight");
  src->put("blk.0.ffn_up_exps.weight", DType::F32, {4, 32, 48}, std::vector<float>(4 * 32 * 48));
  const std::string e = bind_error(c, src);
  EXPECT_NE(e.find("'blk.0.ffn_up_exps.weight'"), std::string::npos) << e;
  EXPECT_NE(e.find("has shape [4, 32, 48], expected [4, 48, 32]"), std::string::npos) << e;
}

TEST(Weights, TiedOutputUsesTheEmbedding) {
  const ModelConfig c = test::tiny_mixtral();
  auto src = test::make_model(c, NameScheme::Gguf);
  src->drop("output.weight");
  ModelWeights w = bind_weights(src, c, NameScheme::Gguf);
  EXPECT_EQ(w.output.data, w.tok_embeddings.data);
}

TEST(Weights, HfQkRowsLeftInPlaceAreTheReorderedRowsThroughRotateHalfRow) {
  const ModelConfig c = test::tiny_mixtral();
  auto src = test::make_model(c, NameScheme::HuggingFace);
  const ModelWeights copied = bind_weights(src, c, NameScheme::HuggingFace);
  const ModelWeights in_place =
      bind_weights(src, c, NameScheme::HuggingFace, {.reorder_hf_qk = false});
  EXPECT_FALSE(copied.qk_rotate_half);
  EXPECT_TRUE(in_place.qk_rotate_half);
  EXPECT_FALSE(copied.owned_bytes.empty());
  EXPECT_TRUE(in_place.owned_bytes.empty());
  for (size_t l = 0; l < copied.layers.size(); ++l) {
    const LayerWeights &a = copied.layers[l], &b = in_place.layers[l];
    EXPECT_EQ(b.wq.data,
              src->find("model.layers." + std::to_string(l) + ".self_attn.q_proj.weight")->data);
    for (const auto& [x, y] : {std::pair{&a.wq, &b.wq}, std::pair{&a.wk, &b.wk}})
      for (int64_t r = 0; r < x->rows; ++r)
        EXPECT_EQ(std::memcmp(x->row(r), y->row(rotate_half_row(r, c.head_dim)), x->row_bytes), 0)
            << "layer " << l << " row " << r;
  }
  // A GGUF source has nothing to reorder.
  EXPECT_FALSE(bind_weights(test::make_model(c, NameScheme::Gguf), c, NameScheme::Gguf,
                            {.reorder_hf_qk = false})
                   .qk_rotate_half);
}

TEST(Config, MixtralParameterCounts) {
  ModelConfig c;
  c.architecture = "mixtral";
  c.dim = 4096;
  c.n_layers = 32;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.head_dim = 128;
  c.hidden_dim = 14336;
  c.vocab_size = 32000;
  c.n_experts = 8;
  c.n_experts_used = 2;
  c.max_context = 32768;
  c.validate("test");
  const ParamCounts p = count_params(c);
  EXPECT_NEAR(p.total / 1e9, 46.7, 0.05);
  EXPECT_NEAR(p.active / 1e9, 12.9, 0.05);
}

TEST(Config, InconsistentConfigsAreRejected) {
  ModelConfig c = test::tiny_mixtral();
  c.n_kv_heads = 3;
  EXPECT_THROW(c.validate("x"), Error);
  c = test::tiny_mixtral();
  c.n_experts_used = 5;
  EXPECT_THROW(c.validate("x"), Error);
  c = test::tiny_mixtral();
  c.dim = 0;
  EXPECT_THROW(c.validate("x"), Error);
}

TEST(Moe, TopKSoftmaxOverTheChosenLogitsOnly) {
  const float logits[5] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
  int32_t chosen[2];
  float w[2];
  route_top_k(logits, 5, 2, chosen, w);
  EXPECT_EQ(chosen[0], 1);  // tie: lower id first
  EXPECT_EQ(chosen[1], 3);
  EXPECT_FLOAT_EQ(w[0], 0.5f);
  EXPECT_FLOAT_EQ(w[1], 0.5f);
  const float l2[3] = {0.0f, 1.0f, 3.0f};
  route_top_k(l2, 3, 2, chosen, w);
  EXPECT_EQ(chosen[0], 2);
  EXPECT_EQ(chosen[1], 1);
  EXPECT_NEAR(w[0], 1.0 / (1.0 + std::exp(-2.0)), 1e-6);
}

}  // namespace
}  // namespace smoe
