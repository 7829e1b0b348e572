// Safetensors: round trips of every dtype, the writer's header layout, folders (index, single file,
// consolidated, all *.safetensors) and malformed headers, each a clear smoe::Error naming the file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io_test_util.h"

namespace smoe {
namespace {

using namespace smoe::testing;

SafetensorsEntry entry(const std::string& name, DType t, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<uint8_t> b(*dtype_bytes(t, n));
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 7 + name.size());
  return {name, t, std::move(shape), std::move(b)};
}

void expect_tensors(const SafetensorsSource& s, const std::vector<SafetensorsEntry>& ts) {
  for (const auto& e : ts) {
    const TensorView* t = s.find(e.name);
    ASSERT_NE(t, nullptr) << e.name;
    EXPECT_EQ(t->dtype, e.dtype) << e.name;
    EXPECT_EQ(t->shape, e.shape) << e.name;
    ASSERT_EQ(t->nbytes, e.bytes.size()) << e.name;
    if (t->nbytes) {
      EXPECT_EQ(std::memcmp(t->data, e.bytes.data(), t->nbytes), 0) << e.name;
    }
  }
}

TEST(Safetensors, RoundTripsEveryDtype) {
  TempDir d;
  const std::vector<SafetensorsEntry> ts = {
      entry("a", DType::F32, {2, 3}),    entry("b.weight", DType::BF16, {5}),
      entry("c", DType::F16, {1, 1, 4}), entry("d", DType::F64, {3}),
      entry("e", DType::I8, {7}),        entry("f", DType::I16, {2, 2}),
      entry("g", DType::I32, {2}),       entry("h", DType::I64, {1, 2}),
      entry("scalar", DType::F32, {}),   entry("empty", DType::F32, {0, 4})};
  const std::string p = d / "x.safetensors";
  write_safetensors(p, ts);
  for (bool mmap : {true, false}) {
    auto s = SafetensorsSource::open_file(p, load_options(mmap, false));
    ASSERT_EQ(s->tensors().size(), ts.size());
    expect_tensors(*s, ts);
    EXPECT_EQ(s->find("a")->file, p);
    EXPECT_EQ(s->description(), "safetensors file " + p);
  }
}

TEST(Safetensors, WriterHeaderLayout) {
  TempDir d;
  const std::string p = d / "x.safetensors";
  write_safetensors(p, {entry("zeta", DType::F32, {3}), entry("alpha", DType::F16, {1})});
  const Bytes b = read_all(p);
  uint64_t n;
  std::memcpy(&n, b.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_EQ(b.size(), 8 + n + 12 + 2);
  const std::string header(b.begin() + 8, b.begin() + 8 + static_cast<ptrdiff_t>(n));
  const auto j = nlohmann::ordered_json::parse(header);
  EXPECT_EQ(j.begin().key(), "zeta");  // tensors keep the order given
  EXPECT_EQ(j["zeta"]["data_offsets"].dump(), "[0,12]");
  EXPECT_EQ(j["alpha"]["data_offsets"].dump(), "[12,14]");
  EXPECT_EQ(j["alpha"]["dtype"], "F16");
  EXPECT_EQ(header.find_first_not_of(' ', header.find_last_of('}') + 1), std::string::npos);
}

TEST(Safetensors, WriterRejectsBadEntries) {
  TempDir d;
  const std::string p = d / "x.safetensors";
  auto bad = entry("x", DType::F32, {3});
  bad.bytes.pop_back();
  EXPECT_TRUE(contains(error_of([&] { write_safetensors(p, {bad}); }),
                       "tensor 'x' of shape [3] and dtype F32 needs 12 bytes, got 11"));
  EXPECT_TRUE(contains(error_of([&] { write_safetensors(p, {entry("q", DType::Q4_0, {32})}); }),
                       "cannot store tensor 'q' of type Q4_0"));
  EXPECT_TRUE(
      contains(error_of([&] {
                 write_safetensors(p, {entry("x", DType::F32, {1}), entry("x", DType::F32, {1})});
               }),
               "'x' is reserved or repeated"));
  EXPECT_NE(error_of([&] { write_safetensors(p, {entry("__metadata__", DType::F32, {1})}); }), "");
  EXPECT_TRUE(contains(error_of([&] { write_safetensors(d / "no/dir/x.safetensors", {}); }),
                       "cannot write"));
}

TEST(Safetensors, MetadataEntryIsSkipped) {
  const std::string h =
      R"({"__metadata__": {"format": "pt"}, "t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})";
  Bytes b;
  put<uint64_t>(b, h.size());
  b.insert(b.end(), h.begin(), h.end());
  put<float>(b, 2.5f);
  auto s = SafetensorsSource::parse(in_memory(b, "m.safetensors"));
  ASSERT_EQ(s->tensors().size(), 1u);
  float v;
  std::memcpy(&v, s->find("t")->data, 4);
  EXPECT_EQ(v, 2.5f);
}

TEST(Safetensors, FolderPriority) {
  TempDir d;
  const auto a = entry("a", DType::F32, {1}), b = entry("b", DType::F32, {1}),
             c = entry("c", DType::F32, {1});
  // No index, no model/consolidated: every *.safetensors file, sorted.
  write_safetensors(d / "z.safetensors", {c});
  write_safetensors(d / "m.safetensors", {b});
  write_all(d / "notes.txt", {'x'});
  fs::create_directories(d.path / "dir.safetensors");
  auto s = SafetensorsSource::open_dir(d.path.string());
  EXPECT_EQ(s->tensors().size(), 2u);
  EXPECT_EQ(s->tensors()[0].name, "b");  // m.safetensors before z.safetensors
  EXPECT_EQ(s->description(), "safetensors folder " + d.path.string() + " (2 files)");
  // consolidated.safetensors wins over the rest...
  write_safetensors(d / "consolidated.safetensors", {a});
  s = SafetensorsSource::open_dir(d.path.string());
  EXPECT_EQ(s->tensors().size(), 1u);
  EXPECT_NE(s->find("a"), nullptr);
  // ...model.safetensors over consolidated...
  write_safetensors(d / "model.safetensors", {c});
  s = SafetensorsSource::open_dir(d.path.string());
  EXPECT_NE(s->find("c"), nullptr);
  EXPECT_EQ(s->description(), "safetensors file " + (d / "model.safetensors"));
  // ...and an index over everything.
  std::ofstream(d / "model.safetensors.index.json") << R"({"weight_map": {"b": "m.safetensors"}})";
  s = SafetensorsSource::open_dir(d.path.string());
  EXPECT_EQ(s->tensors().size(), 1u);
  EXPECT_NE(s->find("b"), nullptr);
}

TEST(Safetensors, ShardedFolderWithIndex) {
  TempDir d;
  const std::vector<SafetensorsEntry> s1 = {entry("x", DType::F32, {4}),
                                            entry("z", DType::I8, {3})};
  const std::vector<SafetensorsEntry> s2 = {entry("y", DType::BF16, {2, 2})};
  write_safetensors(d / "model-00001-of-00002.safetensors", s1);
  write_safetensors(d / "model-00002-of-00002.safetensors", s2);
  const std::string index = d / "model.safetensors.index.json";
  std::ofstream(index) << R"({"metadata": {"total_size": 30}, "weight_map": {
      "x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors",
      "z": "model-00001-of-00002.safetensors"}})";
  auto s = SafetensorsSource::open_dir(d.path.string());
  expect_tensors(*s, s1);
  expect_tensors(*s, s2);
  EXPECT_EQ(s->description(), "safetensors folder " + d.path.string() + " (2 shards)");
  EXPECT_EQ(s->find("y")->file, d / "model-00002-of-00002.safetensors");

  auto err = [&](const std::string& json) {
    std::ofstream(index, std::ios::trunc) << json;
    return error_of([&] { SafetensorsSource::open_dir(d.path.string()); });
  };
  EXPECT_EQ(err(R"({"weight_map": {"x": "model-00002-of-00002.safetensors"}})"),
            index + ": tensor 'x' is listed in " + (d / "model-00002-of-00002.safetensors") +
                " but not found there");
  EXPECT_TRUE(contains(err(R"({"weight_map": {"w": "model-00001-of-00002.safetensors"}})"),
                       "tensor 'w' is listed in"));
  EXPECT_TRUE(contains(err(R"({"weight_map": {"x": "missing.safetensors"}})"),
                       "cannot open '" + (d / "missing.safetensors") + "'"));
  EXPECT_TRUE(contains(err(R"({"weight_map": {"x": "../evil.safetensors"}})"), "plain file name"));
  EXPECT_TRUE(contains(err(R"({"weight_map": {"x": ".."}})"), "plain file name"));
  EXPECT_TRUE(
      contains(err(R"({"weight_map": {"x": 3}})"), "weight_map['x'] is 3, not a file name"));
  EXPECT_TRUE(contains(err(R"({"weight_map": {}})"), index + ": \"weight_map\" lists no tensors"));
  EXPECT_TRUE(contains(err(R"({"metadata": {}})"), index + ": no \"weight_map\" object"));
  EXPECT_TRUE(contains(err(R"([1, 2])"), "no \"weight_map\" object"));
  EXPECT_TRUE(contains(err(R"({"weight_map": )"), index + ": invalid JSON"));
  // The same tensor in two shards.
  write_safetensors(d / "model-00002-of-00002.safetensors", {entry("x", DType::F32, {4})});
  EXPECT_TRUE(contains(err(R"({"weight_map": {"x": "model-00001-of-00002.safetensors",
                                               "y": "model-00002-of-00002.safetensors"}})"),
                       "tensor 'x' appears twice"));
}

TEST(Safetensors, FolderErrors) {
  TempDir d;
  EXPECT_EQ(error_of([&] { SafetensorsSource::open_dir(d / "nothing"); }),
            fmt::format("'{}' is not a folder", d / "nothing"));
  write_all(d / "file", {'x'});
  EXPECT_TRUE(contains(error_of([&] { SafetensorsSource::open_dir(d / "file"); }), "not a folder"));
  EXPECT_EQ(error_of([&] { SafetensorsSource::open_dir(d.path.string()); }),
            fmt::format("'{}' holds no .safetensors files", d.path.string()));
  EXPECT_TRUE(
      contains(error_of([&] { SafetensorsSource::open_files({}); }), "no safetensors files"));
  write_safetensors(d / "a.safetensors", {entry("t", DType::F32, {1})});
  write_safetensors(d / "b.safetensors", {entry("t", DType::F32, {1})});
  EXPECT_TRUE(contains(error_of([&] { SafetensorsSource::open_dir(d.path.string()); }),
                       (d / "b.safetensors") + ": tensor 't' appears twice"));
}

// ---------------------------------------------------------------------------------------------
// Malformed single files, parsed from memory under a recognisable name.

const std::string kBadSafetensors = "/models/bad.safetensors";

Bytes raw(const std::string& json, size_t data, uint64_t header_len = 0) {
  Bytes b;
  put<uint64_t>(b, header_len ? header_len : json.size());
  b.insert(b.end(), json.begin(), json.end());
  b.resize(b.size() + data);
  return b;
}

std::string safetensors_error(const Bytes& b) {
  return error_of([&] { SafetensorsSource::parse(in_memory(b, kBadSafetensors)); });
}

void expect_safetensors_error(const Bytes& b, const std::string& part) {
  const std::string e = safetensors_error(b);
  EXPECT_TRUE(contains(e, kBadSafetensors + ": "))
      << "message does not name the file: '" << e << "'";
  EXPECT_TRUE(contains(e, part)) << "'" << e << "' lacks '" << part << "'";
}

std::string one(const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return R"({"t": {"dtype": )" + dtype + R"(, "shape": )" + shape + R"(, "data_offsets": )" +
         offsets + "}}";
}

TEST(SafetensorsMalformed, HeaderFraming) {
  expect_safetensors_error({}, "not a safetensors file (only 0 bytes)");
  expect_safetensors_error({1, 2, 3}, "only 3 bytes");
  expect_safetensors_error(raw("{}", 0, 1000),
                           "header length 1000 does not fit the file of 10 bytes");
  expect_safetensors_error(raw("{}", 0, ~uint64_t{0}),
                           "header length 18446744073709551615 does not fit");
  expect_safetensors_error(raw("{}", 0, 1), "header length 1 does not fit");
  EXPECT_EQ(safetensors_error(raw("{}", 0)), "");  // no tensors is valid
  EXPECT_EQ(safetensors_error(raw("{}  ", 0)), "");
  expect_safetensors_error(raw("{nope", 0), "invalid safetensors header JSON");
  expect_safetensors_error(raw(R"({"t": )", 0), "invalid safetensors header JSON");
  expect_safetensors_error(raw("[1, 2]", 0), "safetensors header is a JSON array, not an object");
  expect_safetensors_error(raw("\"s\"", 0), "not an object");
  // Deep nesting is an error, not a stack overflow.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_TRUE(contains(safetensors_error(raw(deep, 0)), kBadSafetensors));
  const std::string deep_shape =
      one("\"F32\"", std::string(5000, '[') + std::string(5000, ']'), "[0, 0]");
  expect_safetensors_error(raw(deep_shape, 0),
                           "tensor 't' has an invalid shape <array of 1 entries>");
}

TEST(SafetensorsMalformed, Entries) {
  expect_safetensors_error(raw(R"({"t": 3})", 0), "tensor 't' needs dtype, shape and data_offsets");
  expect_safetensors_error(raw(R"({"t": {"dtype": "F32", "shape": [1]}})", 4), "'t' needs dtype");
  for (const char* dt : {"\"Q9\"", "\"U8\"", "\"BOOL\"", "\"F8_E4M3\"", "7", "null"}) {
    const std::string e = safetensors_error(raw(one(dt, "[1]", "[0, 1]"), 4));
    EXPECT_TRUE(
        contains(e, kBadSafetensors + ": tensor 't' has unsupported dtype " + std::string(dt)))
        << e;
  }
  expect_safetensors_error(raw(one("\"F32\"", "[-1]", "[0, 4]"), 4),
                           "'t' has an invalid shape [-1]");
  expect_safetensors_error(raw(one("\"F32\"", "[1.5]", "[0, 4]"), 4), "invalid shape [1.5]");
  expect_safetensors_error(raw(one("\"F32\"", "4", "[0, 4]"), 4), "invalid shape 4");
  expect_safetensors_error(raw(one("\"F32\"", "[1,1,1,1,1,1,1,1,1]", "[0, 4]"), 4),
                           "invalid shape");
  expect_safetensors_error(raw(one("\"F32\"", "[1099511627776, 1099511627776]", "[0, 4]"), 4),
                           "too large");
  expect_safetensors_error(raw(one("\"F32\"", "[1]", "[0]"), 4),
                           "'t' has invalid data_offsets [0]");
  expect_safetensors_error(raw(one("\"F32\"", "[1]", "[0, 4, 8]"), 4), "invalid data_offsets");
  expect_safetensors_error(raw(one("\"F32\"", "[1]", "[-4, 0]"), 4), "invalid data_offsets");
  expect_safetensors_error(raw(one("\"F32\"", "[1]", "{}"), 4), "invalid data_offsets");
  expect_safetensors_error(raw(one("\"F32\"", "[1]", "[8, 4]"), 8),
                           "data_offsets [8, 4] lie outside the 8 data bytes");
  expect_safetensors_error(raw(one("\"F32\"", "[4]", "[0, 16]"), 8),
                           "lie outside the 8 data bytes");
  expect_safetensors_error(raw(one("\"F32\"", "[3]", "[0, 16]"), 16),
                           "'t' of shape [3] and dtype F32 needs 12 bytes, data_offsets give 16");
  expect_safetensors_error(raw(one("\"BF16\"", "[3]", "[2, 4]"), 16),
                           "needs 6 bytes, data_offsets give 2");
  // Valid: offsets anywhere inside the data, overlapping, unaligned.
  const std::string two =
      R"({"a": {"dtype": "F16", "shape": [2], "data_offsets": [1, 5]},
          "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})";
  auto s = SafetensorsSource::parse(in_memory(raw(two, 5), kBadSafetensors));
  EXPECT_EQ(s->find("a")->data - s->find("b")->data, 1);
}

}  // namespace
}  // namespace smoe
