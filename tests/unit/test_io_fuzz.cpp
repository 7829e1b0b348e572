// Deterministic mutation fuzzing of small valid GGUF and safetensors files: byte flips,
// truncations, insertions, duplicated chunks and overwritten counts. Every parse either succeeds,
// with every tensor view inside the bytes (each byte is read, so ASan would catch a stray view),
// or throws smoe::Error naming the file. Parsing is in memory, so thousands of cases take little
// time.
#include <gtest/gtest.h>

#include <random>

#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/safetensors.h"
#include "io_test_util.h"

namespace smoe {
namespace {

using namespace smoe::testing;

Bytes mutate(Bytes b, std::mt19937_64& rng) {
  const auto pick = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  const int rounds = 1 + static_cast<int>(rng() % 3);
  for (int r = 0; r < rounds; ++r) {
    const size_t at = pick(b.size());
    switch (rng() % 7) {
      case 0:  // flip a few bytes
        for (int i = 0; i < 1 + static_cast<int>(rng() % 4) && !b.empty(); ++i)
          b[pick(b.size())] ^= static_cast<uint8_t>(1 + rng() % 255);
        break;
      case 1:  // truncate
        b.resize(at);
        break;
      case 2:  // insert random bytes
        for (size_t i = 0, n = 1 + rng() % 16; i < n; ++i)
          b.insert(b.begin() + static_cast<ptrdiff_t>(at), static_cast<uint8_t>(rng()));
        break;
      case 3:  // delete a range
        b.erase(b.begin() + static_cast<ptrdiff_t>(at),
                b.begin() + static_cast<ptrdiff_t>(std::min(b.size(), at + 1 + pick(16))));
        break;
      case 4:  // duplicate a chunk somewhere else
        if (!b.empty()) {
          const Bytes chunk(
              b.begin() + static_cast<ptrdiff_t>(at),
              b.begin() + static_cast<ptrdiff_t>(std::min(b.size(), at + 1 + pick(32))));
          b.insert(b.begin() + static_cast<ptrdiff_t>(pick(b.size())), chunk.begin(), chunk.end());
        }
        break;
      case 5:  // overwrite a u64 with something large (counts, lengths, offsets)
        if (at + 8 <= b.size()) poke<uint64_t>(b, at, rng() >> pick(64));
        break;
      default:  // overwrite a u32 with a small number (types, dimension counts)
        if (at + 4 <= b.size()) poke<uint32_t>(b, at, static_cast<uint32_t>(rng() % 40));
    }
  }
  return b;
}

// Reads every byte of every tensor view.
unsigned touch(const WeightSource& s) {
  unsigned sum = 0;
  for (const TensorView& t : s.tensors())
    for (size_t i = 0; i < t.nbytes; ++i) sum += std::to_integer<unsigned>(t.data[i]);
  return sum;
}

template <typename Parse>
void fuzz(const Bytes& good, int iterations, uint64_t seed, Parse parse) {
  const std::string name = "fuzz.bin";
  std::mt19937_64 rng(seed);
  int ok = 0, rejected = 0;
  unsigned sink = 0;
  for (int i = 0; i < iterations; ++i) {
    const Bytes b = mutate(good, rng);
    try {
      sink += touch(*parse(in_memory(b, name)));
      ++ok;
    } catch (const Error& e) {
      ASSERT_TRUE(contains(e.what(), name)) << "case " << i << ": '" << e.what() << "'";
      ++rejected;
    }
  }
  ::testing::Test::RecordProperty("accepted", ok);
  EXPECT_GT(rejected, iterations / 10);  // the mutations do reach the checks...
  EXPECT_GT(ok, 0);                      // ...and some harmless ones (e.g. in tensor data) pass
  (void)sink;
}

Bytes small_gguf() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
  w.set_f32_array("tokenizer.ggml.scores", {0, 0, 0, -1});
  w.set_u32("llama.block_count", 1);
  w.set_bool("flag", true);
  GgufValue nested;
  nested.type = GgufType::ARRAY;
  nested.elem_type = GgufType::ARRAY;
  GgufValue inner;
  inner.type = GgufType::ARRAY;
  inner.elem_type = GgufType::INT16;
  inner.ints = {1, -2};
  nested.arrays = {inner, inner};
  w.set_value("nested", nested);
  std::vector<float> t(64, 0.25f);
  w.add_tensor("x", DType::F32, {4, 16}, t.data(), t.size() * 4);
  w.add_tensor("y", DType::Q8_0, {32}, t.data(), 34);
  w.add_tensor("z", DType::F16, {2, 2}, t.data(), 8);
  TempDir d;
  w.write(d / "f.gguf");
  return read_all(d / "f.gguf");
}

TEST(IoFuzz, GgufMutationsNeverCrash) {
  const Bytes good = small_gguf();
  ASSERT_GT(good.size(), 300u);
  fuzz(good, 10000, 1, [](std::shared_ptr<MappedFile> f) { return GgufFile::parse(std::move(f)); });
}

TEST(IoFuzz, SafetensorsMutationsNeverCrash) {
  TempDir d;
  write_safetensors(d / "f.safetensors", {{"a", DType::F32, {2, 2}, Bytes(16, 1)},
                                          {"b", DType::F16, {3}, Bytes(6, 2)},
                                          {"c.weight", DType::BF16, {1, 2}, Bytes(4, 3)}});
  const Bytes good = read_all(d / "f.safetensors");
  fuzz(good, 10000, 2,
       [](std::shared_ptr<MappedFile> f) { return SafetensorsSource::parse(std::move(f)); });
}

}  // namespace
}  // namespace smoe
