// GGUF: writer -> reader round trips of every value type and several tensor types (copied and
// streamed), typed getters, and malformed files (built by hand) that must each fail with a clear
// smoe::Error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io_test_util.h"

namespace smoe {
namespace {

using namespace smoe::testing;

GgufValue scalar(GgufType t, std::variant<uint64_t, int64_t, double, bool, std::string> s) {
  GgufValue v;
  v.type = t;
  v.scalar = std::move(s);
  return v;
}

GgufValue array(GgufType elem) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = elem;
  return v;
}

// Exact equality of two values (types, scalar alternative and every element).
void expect_same(const GgufValue& a, const GgufValue& b, const std::string& where) {
  EXPECT_EQ(a.type, b.type) << where;
  if (a.type != GgufType::ARRAY) {
    EXPECT_TRUE(a.scalar == b.scalar) << where;
    return;
  }
  EXPECT_EQ(a.elem_type, b.elem_type) << where;
  EXPECT_EQ(a.ints, b.ints) << where;
  EXPECT_EQ(a.floats, b.floats) << where;
  EXPECT_EQ(a.strings, b.strings) << where;
  EXPECT_EQ(a.bools, b.bools) << where;
  ASSERT_EQ(a.arrays.size(), b.arrays.size()) << where;
  for (size_t i = 0; i < a.arrays.size(); ++i)
    expect_same(a.arrays[i], b.arrays[i], where + "[" + std::to_string(i) + "]");
}

// One value of every type, in the form the reader produces (unsigned ints as uint64_t, signed as
// int64_t, floats as double).
std::vector<GgufKV> every_value() {
  std::vector<GgufKV> kv;
  kv.push_back({"u8", scalar(GgufType::UINT8, uint64_t{255})});
  kv.push_back({"i8", scalar(GgufType::INT8, int64_t{-128})});
  kv.push_back({"u16", scalar(GgufType::UINT16, uint64_t{65535})});
  kv.push_back({"i16", scalar(GgufType::INT16, int64_t{-32768})});
  kv.push_back({"u32", scalar(GgufType::UINT32, uint64_t{4294967295u})});
  kv.push_back({"i32", scalar(GgufType::INT32, int64_t{std::numeric_limits<int32_t>::min()})});
  kv.push_back({"f32", scalar(GgufType::FLOAT32, double{0.1f})});
  kv.push_back({"bool", scalar(GgufType::BOOL, true)});
  kv.push_back({"str", scalar(GgufType::STRING, std::string("▁Hello\n\0x", 11))});
  kv.push_back({"empty_str", scalar(GgufType::STRING, std::string())});
  kv.push_back({"u64", scalar(GgufType::UINT64, std::numeric_limits<uint64_t>::max())});
  kv.push_back({"i64", scalar(GgufType::INT64, std::numeric_limits<int64_t>::min())});
  kv.push_back({"f64", scalar(GgufType::FLOAT64, 0.1)});
  GgufValue a = array(GgufType::INT16);
  a.ints = {-1, 0, 32767};
  kv.push_back({"arr_i16", a});
  a = array(GgufType::UINT64);
  a.ints = {0, -1};  // -1: UINT64 max wraps
  kv.push_back({"arr_u64", a});
  a = array(GgufType::FLOAT64);
  a.floats = {0.1, -1e300, std::numeric_limits<double>::infinity()};
  kv.push_back({"arr_f64", a});
  a = array(GgufType::FLOAT32);
  a.floats = {double{1.5f}, double{-0.1f}};
  kv.push_back({"arr_f32", a});
  a = array(GgufType::BOOL);
  a.bools = {1, 0, 1};
  kv.push_back({"arr_bool", a});
  a = array(GgufType::STRING);
  a.strings = {"<unk>", "", "▁the", std::string(300, 'x')};
  kv.push_back({"arr_str", a});
  kv.push_back({"arr_empty", array(GgufType::UINT32)});
  GgufValue inner_s = array(GgufType::STRING);
  inner_s.strings = {"a", "bc"};
  GgufValue inner_i = array(GgufType::INT8);
  inner_i.ints = {-5, 5};
  GgufValue nested = array(GgufType::ARRAY);
  nested.arrays = {inner_s, inner_i, array(GgufType::FLOAT32)};
  GgufValue deeper = array(GgufType::ARRAY);
  deeper.arrays = {nested, nested};
  kv.push_back({"nested", nested});
  kv.push_back({"nested2", deeper});
  return kv;
}

struct TestTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  Bytes bytes;
};

std::vector<TestTensor> some_tensors() {
  std::mt19937 rng(7);
  auto make = [&](std::string name, DType t, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    Bytes b(*dtype_bytes(t, n));
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    return TestTensor{std::move(name), t, std::move(shape), std::move(b)};
  };
  return {make("f32.weight", DType::F32, {3, 5}),
          make("f16", DType::F16, {7}),
          make("bf16", DType::BF16, {2, 2, 3}),
          make("q8_0", DType::Q8_0, {3, 64}),
          make("q4_0", DType::Q4_0, {2, 1, 2, 32}),
          make("q4_k", DType::Q4_K, {2, 256}),
          make("q6_k", DType::Q6_K, {1, 512}),
          make("i32", DType::I32, {4}),
          make("f64", DType::F64, {1})};
}

GgufWriter writer_with_everything() {
  GgufWriter w;
  for (const GgufKV& kv : every_value()) w.set_value(kv.key, kv.value);
  for (const TestTensor& t : some_tensors())
    w.add_tensor(t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size());
  return w;
}

TEST(Gguf, RoundTripsEveryValueTypeAndTensorExactly) {
  TempDir d;
  const std::string p = d / "all.gguf";
  writer_with_everything().write(p);
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  const auto want = every_value();
  const auto tensors = some_tensors();
  for (bool mmap : {true, false}) {
    auto g = GgufFile::open(p, load_options(mmap, false));
    EXPECT_EQ(g->version(), 3u);
    EXPECT_EQ(g->alignment(), 32u);
    // The writer puts general.alignment (u32 32) first, then the keys in the order set.
    ASSERT_EQ(g->metadata().size(), want.size() + 1);
    EXPECT_EQ(g->metadata()[0].key, "general.alignment");
    EXPECT_EQ(g->metadata()[0].value.type, GgufType::UINT32);
    EXPECT_EQ(*g->get_int("general.alignment"), 32);
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(g->metadata()[i + 1].key, want[i].key);
      expect_same(g->metadata()[i + 1].value, want[i].value, want[i].key);
    }
    ASSERT_EQ(g->tensors().size(), tensors.size());
    const std::byte* base = nullptr;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const TensorView& v = g->tensors()[i];
      const TestTensor& t = tensors[i];
      EXPECT_EQ(v.name, t.name);
      EXPECT_EQ(v.file, p);
      EXPECT_EQ(v.dtype, t.dtype) << t.name;
      EXPECT_EQ(v.shape, t.shape) << t.name;
      ASSERT_EQ(v.nbytes, t.bytes.size()) << t.name;
      EXPECT_EQ(std::memcmp(v.data, t.bytes.data(), v.nbytes), 0) << t.name;
      if (!base) base = v.data;
      EXPECT_EQ((v.data - base) % 32, 0) << t.name;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % 32, 0u) << t.name;  // mmap / 64-aligned
    }
    EXPECT_EQ(g->find("q4_k"), &g->tensors()[5]);
    EXPECT_EQ(g->find("nope"), nullptr);
  }
}

TEST(Gguf, DimensionsAreStoredInnermostFirst) {
  GgufWriter w;
  Bytes b(4 * 2 * 3 * 5 * 7);
  w.add_tensor("t", DType::F32, {2, 3, 5, 7}, b.data(), b.size());
  TempDir d;
  w.write(d / "t.gguf");
  const Bytes raw = read_all(d / "t.gguf");
  const size_t at = find_bytes(raw, std::string("t\x04\0\0\0\x07", 6)) + 5;  // name, n_dims 4
  uint64_t ne[4];
  std::memcpy(ne, raw.data() + at, sizeof ne);
  EXPECT_EQ(ne[0], 7u);
  EXPECT_EQ(ne[3], 2u);
  EXPECT_EQ(GgufFile::open(d / "t.gguf")->find("t")->shape, (std::vector<int64_t>{2, 3, 5, 7}));
}

TEST(Gguf, CopyingAFileThroughTheWriterIsByteIdentical) {
  TempDir d;
  writer_with_everything().write(d / "a.gguf");
  auto g = GgufFile::open(d / "a.gguf");
  GgufWriter w;
  for (const GgufKV& kv : g->metadata()) w.set_value(kv.key, kv.value);
  for (const TensorView& t : g->tensors()) w.add_tensor(t.name, t.dtype, t.shape, t.data, t.nbytes);
  w.write(d / "b.gguf");
  EXPECT_EQ(read_all(d / "a.gguf"), read_all(d / "b.gguf"));
}

// The same metadata and tensors as writer_with_everything(), each tensor streamed in pieces of
// `piece` bytes; `calls` records the order in which the producers run.
GgufWriter streaming_writer(size_t piece, std::vector<std::string>* calls) {
  GgufWriter w;
  for (const GgufKV& kv : every_value()) w.set_value(kv.key, kv.value);
  for (const TestTensor& t : some_tensors())
    w.add_streamed_tensor(t.name, t.dtype, t.shape, [t, piece, calls](GgufTensorSink& sink) {
      calls->push_back(t.name);
      for (size_t at = 0; at < t.bytes.size(); at += piece)
        sink.write(t.bytes.data() + at, std::min(piece, t.bytes.size() - at));
      EXPECT_EQ(sink.written(), t.bytes.size());
    });
  return w;
}

TEST(Gguf, StreamedTensorsWriteTheSameBytesAsCopiedOnes) {
  TempDir d;
  writer_with_everything().write(d / "copied.gguf");
  std::vector<std::string> want;
  for (const TestTensor& t : some_tensors()) want.push_back(t.name);
  for (size_t piece : {size_t{1}, size_t{7}, size_t{1} << 20}) {
    std::vector<std::string> calls;
    const GgufWriter w = streaming_writer(piece, &calls);
    EXPECT_TRUE(calls.empty()) << "a producer ran before write()";
    w.write(d / "streamed.gguf");
    EXPECT_EQ(calls, want) << "each producer once, in the tensors' order";
    EXPECT_EQ(read_all(d / "copied.gguf"), read_all(d / "streamed.gguf")) << "pieces of " << piece;
  }
}

TEST(Gguf, StreamedAndCopiedTensorsMix) {
  TempDir d;
  const auto tensors = some_tensors();
  GgufWriter w;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TestTensor& t = tensors[i];
    if (i % 2)
      w.add_tensor(t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size());
    else
      w.add_streamed_tensor(t.name, t.dtype, t.shape,
                            [&t](GgufTensorSink& s) { s.write(t.bytes.data(), t.bytes.size()); });
  }
  w.write(d / "mixed.gguf");
  auto g = GgufFile::open(d / "mixed.gguf");
  ASSERT_EQ(g->tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i)
    EXPECT_EQ(std::memcmp(g->tensors()[i].data, tensors[i].bytes.data(), tensors[i].bytes.size()),
              0)
        << tensors[i].name;
}

TEST(Gguf, AProducerWritingTheWrongByteCountFailsAndLeavesNoFile) {
  TempDir d;
  const std::string p = d / "bad.gguf";
  const Bytes b(40, 1);  // one byte more than an f32 tensor of 3·3 values
  const auto writer = [&](size_t n) {
    GgufWriter w;
    w.add_tensor("before", DType::F32, {2}, b.data(), 8);
    w.add_streamed_tensor("blk.0.w", DType::F32, {3, 3},
                          [&b, n](GgufTensorSink& s) { s.write(b.data(), n); });
    return w;
  };
  EXPECT_EQ(error_of([&] { writer(35).write(p); }),
            "GGUF writer: the producer of tensor 'blk.0.w' (F32 [3, 3]) wrote 35 bytes, expected "
            "36");
  EXPECT_FALSE(fs::exists(p));
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  EXPECT_EQ(error_of([&] { writer(40).write(p); }),
            "GGUF writer: the producer of tensor 'blk.0.w' wrote 40 bytes, more than its 36 bytes");
  EXPECT_FALSE(fs::exists(p));
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  // A producer's own error passes through, and no file is left either.
  GgufWriter w;
  w.add_streamed_tensor("t", DType::F32, {1}, [](GgufTensorSink&) { fail("source unreadable"); });
  EXPECT_EQ(error_of([&] { w.write(p); }), "source unreadable");
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  // Declaring is checked as for copied tensors.
  EXPECT_TRUE(contains(error_of([&] { w.add_streamed_tensor("t", DType::F32, {1}, {}); }),
                       "'t' has no producer"));
  EXPECT_TRUE(contains(
      error_of([&] { w.add_streamed_tensor("t", DType::F32, {1}, [](GgufTensorSink&) {}); }),
      "'t' added twice"));
  EXPECT_TRUE(contains(
      error_of([&] { w.add_streamed_tensor("q", DType::Q4_0, {16}, [](GgufTensorSink&) {}); }),
      "'q' of shape [16] cannot be of type Q4_0"));
  // The file is written as well as it can be: an existing file is untouched by a failure.
  write_all(p, Bytes(10, 7));
  EXPECT_NE(error_of([&] { writer(0).write(p); }), "");
  EXPECT_EQ(read_all(p), Bytes(10, 7));
}

TEST(Gguf, TypedSettersAndGetters) {
  GgufWriter w;
  w.set_u32("u32", 7);
  w.set_i32("i32", -7);
  w.set_u64("u64", uint64_t{1} << 40);
  w.set_u64("huge", std::numeric_limits<uint64_t>::max());
  w.set_f32("f32", 0.5f);
  w.set_bool("flag", true);
  w.set_string("s", "llama");
  w.set_string("s", "mistral");  // replaces
  w.set_string_array("strs", {"a", "", "▁Hello"});
  w.set_f32_array("floats", {1.0f, -2.5f});
  w.set_i32_array("ints", {3, -4, 5});
  TempDir d;
  w.write(d / "g.gguf");
  auto g = GgufFile::open(d / "g.gguf");
  EXPECT_EQ(g->metadata().size(), 11u);
  EXPECT_EQ(*g->get_int("u32"), 7);
  EXPECT_EQ(*g->get_int("i32"), -7);
  EXPECT_EQ(*g->get_int("u64"), int64_t{1} << 40);
  EXPECT_EQ(*g->get_int("flag"), 1);
  EXPECT_EQ(*g->get_float("f32"), 0.5);
  EXPECT_EQ(*g->get_float("i32"), -7.0);
  EXPECT_EQ(*g->get_float("huge"), 18446744073709551615.0);
  EXPECT_TRUE(*g->get_bool("flag"));
  EXPECT_EQ(*g->get_string("s"), "mistral");
  EXPECT_EQ(*g->get_string_array("strs"), (std::vector<std::string>{"a", "", "▁Hello"}));
  EXPECT_EQ(*g->get_float_array("floats"), (std::vector<double>{1.0, -2.5}));
  EXPECT_EQ(*g->get_int_array("ints"), (std::vector<int64_t>{3, -4, 5}));
  EXPECT_FALSE(g->get_int("missing").has_value());
  EXPECT_FALSE(g->get_float("missing").has_value());
  EXPECT_FALSE(g->get_bool("missing").has_value());
  EXPECT_FALSE(g->get_string("missing").has_value());
  EXPECT_EQ(g->get_string_array("missing"), nullptr);
  EXPECT_EQ(g->get_float_array("missing"), nullptr);
  EXPECT_EQ(g->get_int_array("missing"), nullptr);
  EXPECT_EQ(g->description(), "GGUF v3 file " + (d / "g.gguf") + " (0 tensors, 11 metadata keys)");
}

TEST(Gguf, WrongKindOfValueNamesKeyExpectedAndActual) {
  GgufWriter w;
  w.set_string("arch", "llama");
  w.set_f32("f", 1.0f);
  w.set_u32("n", 3);
  w.set_u64("huge", std::numeric_limits<uint64_t>::max());
  w.set_i32_array("ints", {1});
  w.set_f32_array("floats", {1});
  TempDir d;
  const std::string p = d / "k.gguf";
  w.write(p);
  auto g = GgufFile::open(p);
  auto e = [&](auto f) { return error_of(f); };
  EXPECT_EQ(e([&] { g->get_int("arch"); }),
            p + ": metadata key 'arch' should be an integer, but is string");
  EXPECT_TRUE(contains(e([&] { g->get_int("f"); }), "'f' should be an integer, but is float32"));
  EXPECT_TRUE(
      contains(e([&] { g->get_int("ints"); }), "'ints' should be an integer, but is array"));
  EXPECT_TRUE(contains(e([&] { g->get_int("huge"); }), "'huge' holds 18446744073709551615"));
  EXPECT_TRUE(contains(e([&] { g->get_float("arch"); }), "'arch' should be a number"));
  EXPECT_TRUE(contains(e([&] { g->get_bool("n"); }), "'n' should be a bool, but is uint32"));
  EXPECT_TRUE(contains(e([&] { g->get_string("n"); }), "'n' should be a string, but is uint32"));
  EXPECT_TRUE(
      contains(e([&] { g->get_string_array("ints"); }), "'ints' should be an array of strings"));
  EXPECT_TRUE(
      contains(e([&] { g->get_float_array("ints"); }), "'ints' should be an array of floats"));
  EXPECT_TRUE(
      contains(e([&] { g->get_int_array("floats"); }), "'floats' should be an array of integers"));
  EXPECT_TRUE(contains(e([&] { g->get_int_array("n"); }), "'n' should be an array of integers"));
}

TEST(Gguf, WriterRejectsBadInput) {
  GgufWriter w;
  Bytes b(10);
  EXPECT_TRUE(contains(error_of([&] { w.add_tensor("x", DType::F32, {3}, b.data(), b.size()); }),
                       "'x' of shape [3] and type F32 cannot hold 10 bytes"));
  EXPECT_NE(error_of([&] { w.add_tensor("x", DType::Q4_0, {16}, b.data(), b.size()); }), "");
  EXPECT_NE(error_of([&] { w.add_tensor("x", DType::F32, {}, b.data(), 4); }), "");
  EXPECT_NE(error_of([&] { w.add_tensor("x", DType::F32, {1, 1, 1, 1, 1}, b.data(), 4); }), "");
  EXPECT_NE(error_of([&] { w.add_tensor("x", DType::F32, {0, 3}, b.data(), 0); }), "");
  EXPECT_NE(error_of([&] { w.add_tensor("x", DType::F32, {-1, -3}, b.data(), 12); }), "");
  Bytes ok(12);
  w.add_tensor("x", DType::F32, {3}, ok.data(), ok.size());
  EXPECT_TRUE(contains(error_of([&] { w.add_tensor("x", DType::F32, {3}, ok.data(), 12); }),
                       "'x' added twice"));
  // Values whose contents do not match their declared type.
  EXPECT_TRUE(contains(error_of([&] { w.set_value("k", scalar(GgufType::FLOAT32, int64_t{1})); }),
                       "metadata key 'k'"));
  EXPECT_NE(error_of([&] { w.set_value("k", scalar(GgufType::UINT32, 1.0)); }), "");
  EXPECT_NE(error_of([&] { w.set_value("k", scalar(GgufType::STRING, true)); }), "");
  EXPECT_NE(error_of([&] { w.set_value("k", scalar(static_cast<GgufType>(13), uint64_t{0})); }),
            "");
  GgufValue a = array(GgufType::INT32);
  a.floats = {1.0};
  EXPECT_TRUE(contains(error_of([&] { w.set_value("k", a); }), "wrong vector"));
  GgufValue n = array(GgufType::ARRAY);
  n.arrays = {scalar(GgufType::UINT8, uint64_t{1})};
  EXPECT_NE(error_of([&] { w.set_value("k", n); }), "");
  // Writing into a missing folder names the file and leaves nothing behind.
  TempDir d;
  const std::string p = d / "no/such/dir/x.gguf";
  EXPECT_TRUE(contains(error_of([&] { w.write(p); }), p + ".tmp"));
}

TEST(Gguf, WriteReplacesAnExistingFile) {
  TempDir d;
  const std::string p = d / "x.gguf";
  write_all(p, Bytes(1000, 0xff));
  GgufWriter w;
  w.set_u32("a", 1);
  w.write(p);
  EXPECT_EQ(*GgufFile::open(p)->get_int("a"), 1);
  EXPECT_FALSE(fs::exists(p + ".tmp"));
}

TEST(Gguf, OpeningDoesNotCopyTheWeights) {
  TempDir d;
  const std::string p = d / "big.gguf";
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
}

// ---------------------------------------------------------------------------------------------
// Malformed files. Parsed from memory under a recognisable name so every message can be checked
// to name the file.

const std::string kName = "/models/bad.gguf";

std::string parse_error(const Bytes& b) {
  return error_of([&] { GgufFile::parse(in_memory(b, kName)); });
}

// Checks that parsing fails and the message names the file and contains `part`.
void expect_error(const Bytes& b, const std::string& part) {
  const std::string e = parse_error(b);
  EXPECT_TRUE(contains(e, kName + ": ")) << "message does not name the file: '" << e << "'";
  EXPECT_TRUE(contains(e, part)) << "'" << e << "' lacks '" << part << "'";
}

// A valid file with one F32 [2, 3] tensor "t" (ne = {3, 2}).
GgufBytes one_tensor(uint32_t type = 0, std::vector<uint64_t> ne = {3, 2}, uint64_t off = 0,
                     size_t data = 32) {
  GgufBytes g(3, 1, 1);
  g.kv_u32("general.alignment", 32).tensor("t", ne, type, off).pad(32).zeros(data);
  return g;
}

TEST(GgufMalformed, HandBuiltValidFileParses) {
  auto g = GgufFile::parse(in_memory(one_tensor().b, kName));
  EXPECT_EQ(g->find("t")->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(g->find("t")->file, kName);
  EXPECT_EQ(g->description(), "GGUF v3 file /models/bad.gguf (1 tensors, 1 metadata keys)");
}

TEST(GgufMalformed, MagicAndVersion) {
  Bytes b = one_tensor().b;
  b[0] = 'X';
  expect_error(b, "not a GGUF file (bad magic)");
  expect_error({}, "bad magic");
  expect_error({'G', 'G', 'U'}, "bad magic");
  expect_error({'G', 'G', 'U', 'F', 3}, "truncated file: reading version at byte 4");
  b = one_tensor().b;
  poke<uint32_t>(b, 4, 2);
  EXPECT_EQ(GgufFile::parse(in_memory(b, kName))->version(), 2u);
  poke<uint32_t>(b, 4, 1);
  expect_error(b, "unsupported GGUF version 1");
  poke<uint32_t>(b, 4, 0);
  expect_error(b, "unknown GGUF version 0");
  poke<uint32_t>(b, 4, 99);
  expect_error(b, "unknown GGUF version 99");
  poke<uint32_t>(b, 4, 0x03000000);
  expect_error(b, "big-endian");
}

TEST(GgufMalformed, EveryTruncationIsACleanError) {
  TempDir d;
  writer_with_everything().write(d / "full.gguf");
  const Bytes full = read_all(d / "full.gguf");
  // Only the padding after the last tensor may go.
  const auto mem = in_memory(full, kName);
  const auto g = GgufFile::parse(mem);
  size_t used = 0;
  for (const TensorView& t : g->tensors())
    used = std::max(used, static_cast<size_t>(t.data - mem->data()) + t.nbytes);
  ASSERT_EQ(used, full.size() - 24);  // the last tensor is 8 bytes, padded to 32
  for (size_t n = 0; n < full.size(); ++n) {
    const std::string e = parse_error(Bytes(full.begin(), full.begin() + n));
    if (n >= used) {
      EXPECT_EQ(e, "") << n;
      continue;
    }
    ASSERT_TRUE(contains(e, kName)) << "cut at " << n << " of " << full.size() << ": '" << e << "'";
  }
  // A cut inside the header says what it was reading and where.
  const size_t key = find_bytes(full, "arr_str");
  EXPECT_TRUE(contains(parse_error(Bytes(full.begin(), full.begin() + key + 9)),
                       "truncated file: reading value type at byte"));
  // The same through real files, with and without mmap, for a sample of cut points.
  const std::string p = d / "cut.gguf";
  for (size_t n : {size_t{0}, size_t{10}, size_t{30}, key, used - 1}) {
    write_all(p, Bytes(full.begin(), full.begin() + n));
    for (bool mmap : {true, false})
      EXPECT_TRUE(contains(error_of([&] { GgufFile::open(p, load_options(mmap, false)); }), p))
          << n;
  }
}

TEST(GgufMalformed, HugeCountsAreRejectedBeforeAllocating) {
  const Bytes good = one_tensor().b;
  Bytes b = good;
  poke<uint64_t>(b, 8, uint64_t{1} << 60);
  expect_error(b, "tensor count 1152921504606846976 exceeds");
  b = good;
  poke<uint64_t>(b, 16, ~uint64_t{0});
  expect_error(b, "metadata count 18446744073709551615 exceeds");
  b = good;
  poke<uint64_t>(b, 24, uint64_t{1} << 62);  // the first key's length
  expect_error(b, "metadata key at byte 24 claims 4611686018427387904 bytes");
  GgufBytes s(3, 0, 1);
  s.key("s", 8).u64(1000).str("abc");  // string value longer than the file
  expect_error(s.b, "string value at byte");
  GgufBytes a(3, 0, 1);
  a.key("a", 9).u32(4).u64(uint64_t{1} << 61).u32(1);  // u32 array of 2^61 elements
  expect_error(a.b, "'a' claims an array of 2305843009213693952 elements");
  GgufBytes t(3, 1, 0);
  t.str(std::string(1, 'n')).u32(1).u64(1).u32(0);  // tensor info cut before its offset
  expect_error(t.b, "reading tensor offset");
}

TEST(GgufMalformed, BadMetadata) {
  GgufBytes unknown(3, 0, 1);
  unknown.key("weird", 13).u32(0);
  expect_error(unknown.b, "metadata key 'weird' has unknown value type 13");
  GgufBytes unknown_elem(3, 0, 1);
  unknown_elem.key("arr", 9).u32(77).u64(1);
  expect_error(unknown_elem.b, "'arr' has unknown value type 77");
  GgufBytes dup(3, 0, 2);
  dup.kv_u32("k", 1).kv_u32("k", 2);
  expect_error(dup.b, "metadata key 'k' appears twice");
  GgufBytes bad_bool(3, 0, 1);
  bad_bool.key("b", 7).u8(2);
  expect_error(bad_bool.b, "invalid bool value 2");
  GgufBytes deep(3, 0, 1);
  deep.key("deep", 9);
  for (int i = 0; i < 20; ++i) deep.u32(9).u64(1);
  deep.u32(0).u64(0);
  expect_error(deep.b, "'deep' nests arrays too deeply");
  GgufBytes ok_nested(3, 0, 1);
  ok_nested.key("n", 9).u32(9).u64(2).u32(0).u64(1).u8(7).u32(8).u64(1).str("x");
  auto g = GgufFile::parse(in_memory(ok_nested.b, kName));
  ASSERT_EQ(g->find_kv("n")->arrays.size(), 2u);
  EXPECT_EQ(g->find_kv("n")->arrays[1].strings, (std::vector<std::string>{"x"}));
}

TEST(GgufMalformed, Alignment) {
  for (uint32_t a : {0u, 3u, 48u, 0xffffffffu}) {
    GgufBytes g(3, 0, 1);
    g.kv_u32("general.alignment", a);
    expect_error(g.b, fmt::format("general.alignment {} is not a power of two", a));
  }
  GgufBytes big(3, 0, 1);
  big.kv_u32("general.alignment", 1u << 31);
  expect_error(big.b, "general.alignment 2147483648 is too large");
  GgufBytes str(3, 0, 1);
  str.key("general.alignment", 8).str("32");
  expect_error(str.b, "'general.alignment' should be an integer, but is string");
  // A 64-byte alignment moves the data section and constrains offsets.
  GgufBytes g(3, 2, 1);
  g.kv_u32("general.alignment", 64).tensor("a", {4}, 0, 0).tensor("b", {4}, 0, 64);
  const size_t infos_end = g.b.size();
  g.pad(64).zeros(64 + 16);
  poke<float>(g.b, (infos_end + 63) / 64 * 64 + 64, 1.25f);
  auto f = GgufFile::parse(in_memory(g.b, kName));
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->find("b")->data - f->find("a")->data, 64);
  float v;
  std::memcpy(&v, f->find("b")->data, 4);
  EXPECT_EQ(v, 1.25f);
  GgufBytes mis(3, 1, 1);
  mis.kv_u32("general.alignment", 64).tensor("a", {4}, 0, 32).pad(64).zeros(64);
  expect_error(mis.b, "tensor 'a' offset 32 is not a multiple of the alignment 64");
  // Default alignment 32 when the key is absent.
  GgufBytes def(3, 1, 0);
  def.tensor("a", {4}, 0, 16).pad(32).zeros(64);
  expect_error(def.b, "offset 16 is not a multiple of the alignment 32");
}

TEST(GgufMalformed, BadTensorInfos) {
  expect_error(one_tensor(0, {}).b, "tensor 't' has 0 dimensions");
  expect_error(one_tensor(0, {1, 1, 1, 1, 1}).b, "tensor 't' has 5 dimensions");
  expect_error(one_tensor(0, {3, 0}).b, "tensor 't' has an invalid dimension 0");
  expect_error(one_tensor(0, {uint64_t{1} << 41}).b, "invalid dimension");
  expect_error(one_tensor(0, {uint64_t{1} << 30, uint64_t{1} << 30}).b, "invalid dimension");
  const std::string iq = parse_error(one_tensor(16).b);
  EXPECT_TRUE(contains(iq, "tensor 't' has type 16 (IQ2_XXS)")) << iq;
  EXPECT_TRUE(contains(parse_error(one_tensor(1234).b), "type 1234 (unknown)"));
  expect_error(one_tensor(2, {16, 2}).b, "'t' rows of 16 elements are not whole Q4_0 blocks of 32");
  expect_error(one_tensor(12, {32}).b, "not whole Q4_K blocks of 256");
  expect_error(one_tensor(0, {3, 2}, 0, 23).b, "tensor 't' data (24 bytes at offset");
  expect_error(one_tensor(0, {3, 2}, 32, 32).b, "beyond the end of the file");
  expect_error(one_tensor(0, {3, 2}, ~uint64_t{0} - 31, 32).b, "beyond the end of the file");
  GgufBytes dup(3, 2, 0);
  dup.tensor("t", {4}, 0, 0).tensor("t", {4}, 0, 32).pad(32).zeros(64);
  expect_error(dup.b, "tensor 't' appears twice");
  // Overlapping tensors are allowed.
  GgufBytes overlap(3, 2, 0);
  overlap.tensor("a", {8}, 0, 0).tensor("b", {4}, 0, 0).pad(32).zeros(32);
  EXPECT_EQ(GgufFile::parse(in_memory(overlap.b, kName))->tensors().size(), 2u);
}

TEST(GgufMalformed, EmptyAndMissingFiles) {
  TempDir d;
  write_all(d / "empty.gguf", {});
  EXPECT_TRUE(contains(error_of([&] { GgufFile::open(d / "empty.gguf"); }), "bad magic"));
  EXPECT_TRUE(contains(error_of([&] { GgufFile::open(d / "missing.gguf"); }),
                       "cannot open '" + (d / "missing.gguf") + "'"));
  EXPECT_TRUE(contains(error_of([&] { GgufFile::open(d.path.string()); }), "is a directory"));
}

}  // namespace
}  // namespace smoe
