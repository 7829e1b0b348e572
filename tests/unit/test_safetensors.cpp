// Safetensors files and folders, and llama2.c checkpoints: round trips and malformed inputs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/llama2c.h"
#include "io/safetensors.h"

namespace smoe {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("smoe_st_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::string operator/(const std::string& n) const { return (path / n).string(); }
};

SafetensorsEntry entry(const std::string& name, DType t, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<uint8_t> b(*dtype_bytes(t, n));
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 7 + name.size());
  return {name, t, std::move(shape), std::move(b)};
}

template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, RoundTrip) {
  TempDir d;
  const std::vector<SafetensorsEntry> ts = {
      entry("a", DType::F32, {2, 3}), entry("b.weight", DType::BF16, {5}),
      entry("c", DType::F16, {1, 1, 4}), entry("i", DType::I32, {2})};
  write_safetensors(d / "model.safetensors", ts);
  auto s = SafetensorsSource::open_dir(d.path.string());
  ASSERT_EQ(s->tensors().size(), 4u);
  for (const auto& e : ts) {
    const TensorView* t = s->find(e.name);
    ASSERT_NE(t, nullptr) << e.name;
    EXPECT_EQ(t->dtype, e.dtype);
    EXPECT_EQ(t->shape, e.shape);
    ASSERT_EQ(t->nbytes, e.bytes.size());
    EXPECT_EQ(std::memcmp(t->data, e.bytes.data(), t->nbytes), 0);
  }
}

TEST(Safetensors, ShardedFolderWithIndex) {
  TempDir d;
  write_safetensors(d / "model-00001-of-00002.safetensors", {entry("x", DType::F32, {4})});
  write_safetensors(d / "model-00002-of-00002.safetensors", {entry("y", DType::F32, {2, 2})});
  {
    std::ofstream(d / "model.safetensors.index.json")
        << R"({"metadata": {}, "weight_map": {"x": "model-00001-of-00002.safetensors",
              "y": "model-00002-of-00002.safetensors"}})";
  }
  auto s = SafetensorsSource::open_dir(d.path.string());
  EXPECT_NE(s->find("x"), nullptr);
  EXPECT_NE(s->find("y"), nullptr);
  EXPECT_NE(s->description().find("2 shards"), std::string::npos);
  std::ofstream(d / "model.safetensors.index.json")
      << R"({"weight_map": {"x": "model-00002-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}})";
  EXPECT_NE(error_of([&] { SafetensorsSource::open_dir(d.path.string()); }).find("'x' is listed"),
            std::string::npos);
  std::ofstream(d / "model.safetensors.index.json")
      << R"({"weight_map": {"x": "../evil.safetensors"}})";
  EXPECT_NE(error_of([&] { SafetensorsSource::open_dir(d.path.string()); }).find("plain file name"),
            std::string::npos);
}

TEST(Safetensors, MalformedFilesAreNamed) {
  TempDir d;
  const std::string p = d / "m.safetensors";
  auto write_raw = [&](uint64_t n, const std::string& json, size_t data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << json << std::string(data, '\0');
  };
  auto err = [&] { return error_of([&] { SafetensorsSource::open_file(p); }); };
  write_raw(1000, "{}", 0);
  EXPECT_NE(err().find("does not fit"), std::string::npos);
  write_raw(5, "{nope", 0);
  EXPECT_NE(err().find("invalid safetensors header JSON"), std::string::npos);
  const std::string bad_dtype = R"({"t": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}})";
  write_raw(bad_dtype.size(), bad_dtype, 4);
  EXPECT_NE(err().find("'t' has unsupported dtype"), std::string::npos);
  const std::string out_of_range =
      R"({"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})";
  write_raw(out_of_range.size(), out_of_range, 8);
  EXPECT_NE(err().find("outside"), std::string::npos);
  const std::string wrong_size =
      R"({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}})";
  write_raw(wrong_size.size(), wrong_size, 16);
  EXPECT_NE(err().find("needs 12 bytes"), std::string::npos);
  EXPECT_NE(error_of([&] { SafetensorsSource::open_dir(d / "nothing"); }).size(), 0u);
  TempDir empty;
  EXPECT_NE(
      error_of([&] { SafetensorsSource::open_dir(empty.path.string()); }).find("no .safetensors"),
      std::string::npos);
}

TEST(Llama2c, RealStories260K) {
  const std::string p = std::string(SMOE_SHARED_DATA_DIR) + "/stories260K.bin";
  if (!fs::exists(p)) GTEST_SKIP() << "stories260K.bin is not in ../shared/data (shared test data)";
  auto s = Llama2cSource::open(p);
  const Llama2cHeader& h = s->header();
  EXPECT_EQ(h.dim, 64);
  EXPECT_EQ(h.hidden_dim, 172);
  EXPECT_EQ(h.n_layers, 5);
  EXPECT_EQ(h.n_heads, 8);
  EXPECT_EQ(h.n_kv_heads, 4);
  EXPECT_EQ(h.vocab_size, 512);
  EXPECT_TRUE(h.shared_classifier);
  std::ifstream in(p, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  const std::byte* base = s->find("tok_embeddings.weight")->data - 28;
  EXPECT_EQ(s->find("layers.0.attention.wq.weight")->data - base, 132380);
  EXPECT_EQ(s->find("layers.0.feed_forward.w1.weight")->data - base, 379420);
  EXPECT_EQ(s->find("norm.weight")->data - base, 1039900);
  EXPECT_EQ(s->find("layers.1.attention.wk.weight")->shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(s->find("output.weight")->data, s->find("tok_embeddings.weight")->data);
}

TEST(Llama2c, WrongSizesAndHeadersAreRejected) {
  TempDir d;
  const std::string p = d / "m.bin";
  auto write = [&](std::vector<int32_t> h, size_t floats) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(h.data()), 28);
    out << std::string(floats * 4, '\0');
  };
  auto err = [&] { return error_of([&] { Llama2cSource::open(p); }); };
  // dim 8, hidden 8, 1 layer, 2 heads, 2 kv heads, vocab 4, seq 4: head 4.
  const size_t body = 4 * 8 + 8 + 8 * 8 * 4 + 8 + 8 * 8 * 3 + 8 + 4 * 2 * 2;
  write({8, 8, 1, 2, 2, 4, 4}, body);
  EXPECT_EQ(err(), "");
  write({8, 8, 1, 2, 2, 4, 4}, body - 1);
  EXPECT_NE(err().find("needs"), std::string::npos);
  write({8, 8, 1, 2, 2, -4, 4}, body + 4 * 8);  // separate classifier
  auto s = Llama2cSource::open(p);
  EXPECT_NE(s->find("output.weight")->data, s->find("tok_embeddings.weight")->data);
  write({8, 8, 1, 3, 2, 4, 4}, body);
  EXPECT_NE(err().find("not a llama2.c checkpoint"), std::string::npos);
  write({1 << 30, 8, 1, 2, 2, 4, 4}, 0);
  EXPECT_NE(err().find("not a llama2.c checkpoint"), std::string::npos);
}

}  // namespace
}  // namespace smoe
