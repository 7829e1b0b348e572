// GGUF: writer → reader round trips and every malformed-file case named in a clear error.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"

namespace smoe {
namespace {

namespace fs = std::filesystem;

std::string tmp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("smoe_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::vector<uint8_t> read_all(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_all(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::string error_of(const std::string& path, LoadOptions o = {}) {
  try {
    GgufFile::open(path, o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A small valid file with every metadata type and a few tensors.
std::string make_file(const std::string& name) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("u32", 7);
  w.set_i32("i32", -7);
  w.set_u64("u64", uint64_t{1} << 40);
  w.set_f32("f32", 0.5f);
  w.set_bool("flag", true);
  w.set_string_array("strs", {"a", "", "▁Hello"});
  w.set_f32_array("floats", {1.0f, -2.5f});
  w.set_i32_array("ints", {3, -4, 5});
  GgufValue nested;
  nested.type = GgufType::ARRAY;
  nested.elem_type = GgufType::ARRAY;
  GgufValue inner;
  inner.type = GgufType::ARRAY;
  inner.elem_type = GgufType::UINT8;
  inner.ints = {1, 2, 255};
  nested.arrays = {inner, inner};
  w.set_value("nested", nested);
  std::vector<float> a(6);
  for (int i = 0; i < 6; ++i) a[i] = static_cast<float>(i) - 2.5f;
  w.add_tensor("a.weight", DType::F32, {2, 3}, a.data(), a.size() * 4);
  std::vector<uint8_t> q8(34 * 2, 0x11);
  w.add_tensor("q.weight", DType::Q8_0, {1, 64}, q8.data(), q8.size());
  std::vector<uint8_t> h(2 * 16, 0x3c);  // 32 bytes: the file ends exactly with its data
  w.add_tensor("h", DType::F16, {16}, h.data(), h.size());
  const std::string p = tmp_path(name);
  w.write(p);
  return p;
}

TEST(Gguf, RoundTripsEveryValueTypeAndTensor) {
  const std::string p = make_file("rt.gguf");
  for (bool mmap : {true, false}) {
    auto g = GgufFile::open(p, {mmap, false});
    EXPECT_EQ(g->version(), 3u);
    EXPECT_EQ(*g->get_string("general.architecture"), "llama");
    EXPECT_EQ(*g->get_int("u32"), 7);
    EXPECT_EQ(*g->get_int("i32"), -7);
    EXPECT_EQ(*g->get_int("u64"), int64_t{1} << 40);
    EXPECT_EQ(*g->get_float("f32"), 0.5);
    EXPECT_EQ(*g->get_float("u32"), 7.0);
    EXPECT_TRUE(*g->get_bool("flag"));
    EXPECT_EQ(*g->get_string_array("strs"), (std::vector<std::string>{"a", "", "▁Hello"}));
    EXPECT_EQ(*g->get_float_array("floats"), (std::vector<double>{1.0, -2.5}));
    EXPECT_EQ(*g->get_int_array("ints"), (std::vector<int64_t>{3, -4, 5}));
    const GgufValue* n = g->find_kv("nested");
    ASSERT_NE(n, nullptr);
    ASSERT_EQ(n->arrays.size(), 2u);
    EXPECT_EQ(n->arrays[1].ints, (std::vector<int64_t>{1, 2, 255}));
    EXPECT_FALSE(g->get_int("missing").has_value());
    const TensorView* a = g->find("a.weight");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(a->dtype, DType::F32);
    float v[6];
    std::memcpy(v, a->data, 24);
    EXPECT_EQ(v[5], 2.5f);
    const TensorView* q = g->find("q.weight");
    EXPECT_EQ(q->nbytes, 68u);
    EXPECT_EQ(std::to_integer<int>(q->data[67]), 0x11);
    for (const TensorView& t : g->tensors())
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 32, 0u) << t.name;
  }
  std::remove(p.c_str());
}

TEST(Gguf, WrongKindOfValueIsNamed) {
  const std::string p = make_file("kind.gguf");
  auto g = GgufFile::open(p);
  try {
    g->get_int("general.architecture");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("'general.architecture' should be an integer, but is string"),
        std::string::npos)
        << e.what();
  }
  std::remove(p.c_str());
}

TEST(Gguf, VersionTwoReadsAndOthersAreRejected) {
  const std::string p = make_file("ver.gguf");
  auto bytes = read_all(p);
  bytes[4] = 2;
  write_all(p, bytes);
  EXPECT_EQ(GgufFile::open(p)->version(), 2u);
  bytes[4] = 1;
  write_all(p, bytes);
  EXPECT_NE(error_of(p).find("unsupported GGUF version 1"), std::string::npos);
  bytes[4] = 99;
  write_all(p, bytes);
  EXPECT_NE(error_of(p).find("unknown GGUF version 99"), std::string::npos);
  bytes[0] = 'X';
  write_all(p, bytes);
  EXPECT_NE(error_of(p).find("bad magic"), std::string::npos);
  std::remove(p.c_str());
}

TEST(Gguf, EveryTruncationIsACleanError) {
  const std::string p = make_file("trunc.gguf");
  const auto bytes = read_all(p);
  const std::string q = tmp_path("trunc_cut.gguf");
  for (size_t n = 0; n < bytes.size(); ++n) {
    write_all(q, std::vector<uint8_t>(bytes.begin(), bytes.begin() + n));
    const std::string e = error_of(q);
    ASSERT_FALSE(e.empty()) << "a file cut at " << n << " of " << bytes.size()
                            << " bytes was accepted";
  }
  std::remove(p.c_str());
  std::remove(q.c_str());
}

// Offsets inside the header of make_file()'s output, found by scanning for the key.
size_t find(const std::vector<uint8_t>& b, const std::string& s) {
  for (size_t i = 0; i + s.size() <= b.size(); ++i)
    if (std::memcmp(b.data() + i, s.data(), s.size()) == 0) return i;
  return std::string::npos;
}

TEST(Gguf, HugeCountsAreRejectedBeforeAllocating) {
  const std::string p = make_file("huge.gguf");
  const auto good = read_all(p);
  auto put64 = [&](std::vector<uint8_t> b, size_t at, uint64_t v) {
    std::memcpy(b.data() + at, &v, 8);
    write_all(p, b);
    return error_of(p);
  };
  EXPECT_NE(put64(good, 8, uint64_t{1} << 60).find("tensor count"), std::string::npos);
  EXPECT_NE(put64(good, 16, uint64_t{1} << 60).find("metadata count"), std::string::npos);
  // The first key's length prefix (right after the 24-byte header).
  EXPECT_NE(put64(good, 24, uint64_t{1} << 60).find("claims"), std::string::npos);
  // The string array's length.
  const size_t strs = find(good, "strs");
  EXPECT_NE(put64(good, strs + 4 + 4, uint64_t{1} << 60).find("more than the file holds"),
            std::string::npos);
  std::remove(p.c_str());
}

TEST(Gguf, BadTensorInfosAreNamed) {
  const std::string p = make_file("tensors.gguf");
  const auto good = read_all(p);
  const size_t at = find(good, "a.weight") + 8;  // n_dims follows the name
  auto patch32 = [&](size_t off, uint32_t v) {
    auto b = good;
    std::memcpy(b.data() + off, &v, 4);
    write_all(p, b);
    return error_of(p);
  };
  auto patch64 = [&](size_t off, uint64_t v) {
    auto b = good;
    std::memcpy(b.data() + off, &v, 8);
    write_all(p, b);
    return error_of(p);
  };
  EXPECT_NE(patch32(at, 5).find("'a.weight' has 5 dimensions"), std::string::npos);
  EXPECT_NE(patch32(at, 0).find("'a.weight' has 0 dimensions"), std::string::npos);
  const size_t type_at = at + 4 + 16;
  const std::string e = patch32(type_at, 16);
  EXPECT_NE(e.find("'a.weight'"), std::string::npos) << e;
  EXPECT_NE(e.find("IQ2_XXS"), std::string::npos) << e;
  EXPECT_NE(patch64(type_at + 4, 3).find("not a multiple of the alignment"), std::string::npos);
  EXPECT_NE(patch64(type_at + 4, 1 << 20).find("beyond the end of the file"), std::string::npos);
  auto b = good;
  b.resize(b.size() - 8);  // cut the last tensor's data
  write_all(p, b);
  EXPECT_NE(error_of(p).find("beyond the end of the file"), std::string::npos);
  std::remove(p.c_str());
}

TEST(Gguf, WriterRejectsInconsistentTensors) {
  GgufWriter w;
  std::vector<uint8_t> b(10);
  EXPECT_THROW(w.add_tensor("x", DType::F32, {3}, b.data(), b.size()), Error);
  EXPECT_THROW(w.add_tensor("x", DType::Q4_0, {16}, b.data(), b.size()), Error);
  std::vector<uint8_t> ok(12);
  w.add_tensor("x", DType::F32, {3}, ok.data(), ok.size());
  EXPECT_THROW(w.add_tensor("x", DType::F32, {3}, ok.data(), ok.size()), Error);
}

// Resident memory of this process in KiB (Linux).
long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

TEST(Gguf, OpeningDoesNotCopyTheWeights) {
  const std::string p = tmp_path("big.gguf");
  {
    GgufWriter w;
    std::vector<uint8_t> big(size_t{128} << 20, 0x3c);  // 128 MiB of f16 weights
    w.add_tensor("big.weight", DType::F16, {8192, 8192}, big.data(), big.size());
    w.write(p);
  }
  const long before = rss_kib();
  auto g = GgufFile::open(p);
  const long after = rss_kib();
  ASSERT_NE(g->find("big.weight"), nullptr);
  EXPECT_LT(after - before, 16 * 1024)
      << "opening a 128 MiB GGUF made " << (after - before) << " KiB resident";
  // Touching the pages brings them in: the view really is the file.
  EXPECT_EQ(std::to_integer<int>(g->find("big.weight")->data[(size_t{128} << 20) - 1]), 0x3c);
  std::remove(p.c_str());
}

TEST(MappedFile, MissingFileAndDirectoryAreClearErrors) {
  EXPECT_NE(error_of("/nonexistent/model.gguf").find("cannot open '/nonexistent/model.gguf'"),
            std::string::npos);
  EXPECT_NE(error_of(fs::temp_directory_path().string()).find("is a directory"), std::string::npos);
}

}  // namespace
}  // namespace smoe
