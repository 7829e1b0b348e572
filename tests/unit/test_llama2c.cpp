// llama2.c checkpoints: the real stories260K.bin (offsets, shapes and values from
// shared/data/README.md), synthetic files whose every float is its own index (so each tensor's
// position is checked exactly), and every header / size error.
#include <gtest/gtest.h>

#include "io/llama2c.h"
#include "io_test_util.h"

namespace smoe {
namespace {

using namespace smoe::testing;

// The float32 at a byte offset of the file.
float float_at(const Bytes& file, size_t byte_offset) {
  float v;
  std::memcpy(&v, file.data() + byte_offset, 4);
  return v;
}

TEST(Llama2c, RealStories260K) {
  const std::string p = std::string(SMOE_SHARED_DATA_DIR) + "/stories260K.bin";
  if (!fs::exists(p)) GTEST_SKIP() << "stories260K.bin is not in ../shared/data (shared test data)";
  const Bytes file = read_all(p);
  ASSERT_EQ(file.size(), 1056540u);
  for (bool mmap : {true, false}) {
    auto s = Llama2cSource::open(p, load_options(mmap, false));
    const Llama2cHeader& h = s->header();
    EXPECT_EQ(h.dim, 64);
    EXPECT_EQ(h.hidden_dim, 172);
    EXPECT_EQ(h.n_layers, 5);
    EXPECT_EQ(h.n_heads, 8);
    EXPECT_EQ(h.n_kv_heads, 4);
    EXPECT_EQ(h.vocab_size, 512);
    EXPECT_EQ(h.seq_len, 512);
    EXPECT_TRUE(h.shared_classifier);
    EXPECT_EQ(s->tensors().size(), 1u + 5 * 9 + 2);
    EXPECT_EQ(s->description(),
              "llama2.c checkpoint " + p + " (5 layers, dim 64, vocab 512, shared classifier)");

    const TensorView* emb = s->find("tok_embeddings.weight");
    ASSERT_NE(emb, nullptr);
    const std::byte* base = emb->data - 28;
    // (name, byte offset of layer 0 from README.md, shape, bytes per layer)
    struct Want {
      std::string name;
      size_t offset;
      std::vector<int64_t> shape;
    };
    const std::vector<Want> per_layer = {{"attention_norm.weight", 131100, {64}},
                                         {"attention.wq.weight", 132380, {64, 64}},
                                         {"attention.wk.weight", 214300, {32, 64}},
                                         {"attention.wv.weight", 255260, {32, 64}},
                                         {"attention.wo.weight", 296220, {64, 64}},
                                         {"ffn_norm.weight", 378140, {64}},
                                         {"feed_forward.w1.weight", 379420, {172, 64}},
                                         {"feed_forward.w2.weight", 599580, {64, 172}},
                                         {"feed_forward.w3.weight", 819740, {172, 64}}};
    for (int l = 0; l < 5; ++l) {
      for (const Want& w : per_layer) {
        const std::string name = "layers." + std::to_string(l) + "." + w.name;
        const TensorView* t = s->find(name);
        ASSERT_NE(t, nullptr) << name;
        EXPECT_EQ(t->dtype, DType::F32);
        EXPECT_EQ(t->shape, w.shape) << name;
        EXPECT_EQ(t->nbytes, static_cast<size_t>(t->numel()) * 4) << name;
        const size_t off = w.offset + static_cast<size_t>(l) * t->nbytes;
        EXPECT_EQ(static_cast<size_t>(t->data - base), off) << name;
        // First and last value against the file read independently.
        float first, last;
        std::memcpy(&first, t->data, 4);
        std::memcpy(&last, t->data + t->nbytes - 4, 4);
        EXPECT_EQ(first, float_at(file, off)) << name;
        EXPECT_EQ(last, float_at(file, off + t->nbytes - 4)) << name;
      }
    }
    EXPECT_EQ(emb->shape, (std::vector<int64_t>{512, 64}));
    EXPECT_EQ(s->find("norm.weight")->data - base, 1039900);
    EXPECT_EQ(s->find("norm.weight")->shape, (std::vector<int64_t>{64}));
    const TensorView* out = s->find("output.weight");
    EXPECT_EQ(out->data, emb->data);
    EXPECT_EQ(out->shape, emb->shape);
    // RMSNorm weights of a trained model are positive and of order 1; embeddings are not all zero.
    float g;
    std::memcpy(&g, s->find("norm.weight")->data, 4);
    EXPECT_GT(g, 0.0f);
    EXPECT_EQ(std::memcmp(emb->data, file.data() + 28, emb->nbytes), 0);
  }
}

struct Dims {
  int32_t dim, hidden, layers, heads, kv_heads, vocab, seq;
};

// A checkpoint whose float number i (after the header) has the value i.
Bytes synthetic(const Dims& d, int64_t extra_floats = 0) {
  Bytes b;
  for (int32_t v : {d.dim, d.hidden, d.layers, d.heads, d.kv_heads, d.vocab, d.seq})
    put<int32_t>(b, v);
  const int64_t V = d.vocab < 0 ? -d.vocab : d.vocab, D = d.dim, H = d.hidden, L = d.layers;
  const int64_t hs = D / d.heads, kv = hs * d.kv_heads;
  int64_t n = V * D + L * D + 2 * L * D * D + 2 * L * kv * D + L * D + 3 * L * H * D + D +
              2 * d.seq * (hs / 2);
  if (d.vocab < 0) n += V * D;
  for (int64_t i = 0; i < n + extra_floats; ++i) put<float>(b, static_cast<float>(i));
  return b;
}

float first_value(const TensorView* t) {
  float v;
  std::memcpy(&v, t->data, 4);
  return v;
}

TEST(Llama2c, SyntheticLayoutSeparateClassifier) {
  const Dims d{8, 12, 2, 4, 2, -10, 6};  // head 2, kv_dim 4
  TempDir dir;
  const std::string p = dir / "m.bin";
  write_all(p, synthetic(d));
  auto s = Llama2cSource::open(p);
  EXPECT_FALSE(s->header().shared_classifier);
  EXPECT_EQ(s->header().vocab_size, -10);
  EXPECT_TRUE(contains(s->description(), "vocab 10, separate classifier"));
  // Float offsets written out from the format description.
  const int64_t emb = 0, att = 80, wq = att + 16, wk = wq + 128, wv = wk + 64, wo = wv + 64,
                ffn = wo + 128, w1 = ffn + 16, w2 = w1 + 192, w3 = w2 + 192, fin = w3 + 192,
                fr = fin + 8, fi = fr + 6, wcls = fi + 6;
  auto at = [&](const std::string& n) { return first_value(s->find(n)); };
  EXPECT_EQ(at("tok_embeddings.weight"), emb);
  EXPECT_EQ(at("layers.1.attention_norm.weight"), att + 8);
  EXPECT_EQ(at("layers.1.attention.wq.weight"), wq + 64);
  EXPECT_EQ(at("layers.1.attention.wk.weight"), wk + 32);
  EXPECT_EQ(at("layers.0.attention.wv.weight"), wv);
  EXPECT_EQ(at("layers.1.attention.wo.weight"), wo + 64);
  EXPECT_EQ(at("layers.1.ffn_norm.weight"), ffn + 8);
  EXPECT_EQ(at("layers.1.feed_forward.w1.weight"), w1 + 96);
  EXPECT_EQ(at("layers.1.feed_forward.w2.weight"), w2 + 96);
  EXPECT_EQ(at("layers.1.feed_forward.w3.weight"), w3 + 96);
  EXPECT_EQ(at("norm.weight"), fin);
  EXPECT_EQ(at("output.weight"), wcls);
  EXPECT_EQ(s->find("output.weight")->shape, (std::vector<int64_t>{10, 8}));
  EXPECT_EQ(s->find("layers.0.attention.wk.weight")->shape, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(s->find("layers.0.feed_forward.w2.weight")->shape, (std::vector<int64_t>{8, 12}));
  EXPECT_EQ(s->find("layers.1.feed_forward.w3.weight")->shape, (std::vector<int64_t>{12, 8}));
  EXPECT_EQ(s->find("layers.2.attention.wq.weight"), nullptr);
  EXPECT_EQ(s->find("freq_cis_real"), nullptr);
}

TEST(Llama2c, SyntheticSharedClassifierHasNoWcls) {
  const Dims d{8, 12, 1, 4, 4, 10, 6};
  TempDir dir;
  write_all(dir / "m.bin", synthetic(d));
  auto s = Llama2cSource::open(dir / "m.bin");
  EXPECT_TRUE(s->header().shared_classifier);
  EXPECT_EQ(s->find("output.weight")->data, s->find("tok_embeddings.weight")->data);
  EXPECT_EQ(s->find("layers.0.attention.wk.weight")->shape, (std::vector<int64_t>{8, 8}));
}

TEST(Llama2c, WrongSizeStatesExpectedAndActual) {
  const Dims d{8, 12, 1, 4, 2, 10, 6};
  const Bytes good = synthetic(d);
  TempDir dir;
  const std::string p = dir / "m.bin";
  auto err = [&](const Bytes& b) {
    write_all(p, b);
    return error_of([&] { Llama2cSource::open(p); });
  };
  EXPECT_EQ(err(good), "");
  const std::string n = std::to_string(good.size());
  EXPECT_EQ(
      err(Bytes(good.begin(), good.end() - 4)),
      p + ": size mismatch: a llama2.c checkpoint with this header (shared classifier) needs " + n +
          " bytes, the file has " + std::to_string(good.size() - 4));
  EXPECT_TRUE(contains(err(synthetic(d, 1)),
                       "needs " + n + " bytes, the file has " + std::to_string(good.size() + 4)));
  // A file carrying a classifier but with a positive vocab_size: the message points at the sign.
  EXPECT_TRUE(contains(err(synthetic(d, 80)), "is the sign of vocab_size wrong?"));
  Dims neg = d;
  neg.vocab = -10;
  EXPECT_TRUE(contains(err(synthetic(neg, -80)), "(separate classifier) needs"));
  EXPECT_TRUE(contains(err(synthetic(neg, -80)), "is the sign of vocab_size wrong?"));
}

TEST(Llama2c, BadHeadersAreRejected) {
  TempDir dir;
  const std::string p = dir / "m.bin";
  auto err = [&](const Dims& d) {
    Bytes b;
    for (int32_t v : {d.dim, d.hidden, d.layers, d.heads, d.kv_heads, d.vocab, d.seq})
      put<int32_t>(b, v);
    b.resize(b.size() + 4096);
    write_all(p, b);
    return error_of([&] { Llama2cSource::open(p); });
  };
  const Dims ok{8, 12, 1, 4, 2, 10, 6};
  for (int field = 0; field < 7; ++field) {
    for (int32_t bad : {0, -3}) {
      if (field == 5 && bad < 0) continue;  // negative vocab is the separate-classifier flag
      Dims d = ok;
      int32_t* fields[] = {&d.dim, &d.hidden, &d.layers, &d.heads, &d.kv_heads, &d.vocab, &d.seq};
      *fields[field] = bad;
      EXPECT_TRUE(contains(err(d), p + ": not a llama2.c checkpoint (header")) << field << bad;
    }
  }
  EXPECT_TRUE(contains(err({8, 12, 1, 3, 3, 10, 6}), "not a llama2.c checkpoint"));  // 3 ∤ 8
  EXPECT_TRUE(contains(err({8, 12, 1, 4, 3, 10, 6}), "kv_heads=3"));                 // 3 ∤ 4
  EXPECT_TRUE(contains(err({8, 12, 1, 4, 8, 10, 6}), "not a llama2.c checkpoint"));  // kv > heads
  EXPECT_TRUE(contains(err({1 << 30, 12, 1, 4, 2, 10, 6}), "not a llama2.c checkpoint"));
  EXPECT_TRUE(contains(err({8, 12, 1 << 30, 4, 2, 10, 6}), "not a llama2.c checkpoint"));
  EXPECT_TRUE(contains(err({8, 12, 1, 4, 2, INT32_MIN, 6}), "not a llama2.c checkpoint"));
  // Too short for the header, empty, missing.
  write_all(p, Bytes(27, 1));
  EXPECT_TRUE(contains(error_of([&] { Llama2cSource::open(p); }), "too short"));
  write_all(p, {});
  EXPECT_TRUE(contains(error_of([&] { Llama2cSource::open(p); }), "(0 bytes)"));
  EXPECT_TRUE(contains(error_of([&] { Llama2cSource::open(dir / "none.bin"); }), "cannot open"));
}

}  // namespace
}  // namespace smoe
