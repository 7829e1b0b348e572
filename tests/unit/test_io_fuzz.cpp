// Random mutations of valid files: every parse either succeeds or throws smoe::Error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/safetensors.h"

namespace smoe {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> read_all(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_all(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::vector<uint8_t> mutate(std::vector<uint8_t> b, std::mt19937_64& rng) {
  const int kind = static_cast<int>(rng() % 5);
  const size_t at = b.empty() ? 0 : rng() % b.size();
  switch (kind) {
    case 0:  // flip bytes
      for (int i = 0; i < 1 + static_cast<int>(rng() % 4) && !b.empty(); ++i)
        b[rng() % b.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
      break;
    case 1:  // truncate
      b.resize(at);
      break;
    case 2:  // insert
      b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), 1 + rng() % 16,
               static_cast<uint8_t>(rng()));
      break;
    case 3:  // overwrite a u64 with something large
      if (at + 8 <= b.size()) {
        const uint64_t v = rng() >> (rng() % 64);
        std::memcpy(b.data() + at, &v, 8);
      }
      break;
    default:  // overwrite a u32 with a small number
      if (at + 4 <= b.size()) {
        const uint32_t v = static_cast<uint32_t>(rng() % 40);
        std::memcpy(b.data() + at, &v, 4);
      }
  }
  return b;
}

template <typename Parse>
void fuzz(const std::string& path, int iterations, uint64_t seed, Parse parse) {
  const auto good = read_all(path);
  std::mt19937_64 rng(seed);
  int ok = 0, rejected = 0;
  for (int i = 0; i < iterations; ++i) {
    write_all(path, mutate(good, rng));
    try {
      parse(path);
      ++ok;
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_EQ(ok + rejected, iterations);
  EXPECT_GT(rejected, 0);
}

TEST(IoFuzz, GgufMutationsNeverCrash) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
  w.set_f32_array("tokenizer.ggml.scores", {0, 0, 0, -1});
  w.set_u32("llama.block_count", 1);
  std::vector<float> t(64, 0.25f);
  w.add_tensor("x", DType::F32, {4, 16}, t.data(), t.size() * 4);
  w.add_tensor("y", DType::Q8_0, {32}, t.data(), 34);
  const std::string p =
      (fs::temp_directory_path() / ("smoe_fuzz_" + std::to_string(::getpid()) + ".gguf")).string();
  w.write(p);
  fuzz(p, 3000, 1, [](const std::string& f) { GgufFile::open(f); });
  fs::remove(p);
}

TEST(IoFuzz, SafetensorsMutationsNeverCrash) {
  const std::string p =
      (fs::temp_directory_path() / ("smoe_fuzz_" + std::to_string(::getpid()) + ".safetensors"))
          .string();
  write_safetensors(p, {{"a", DType::F32, {2, 2}, std::vector<uint8_t>(16, 1)},
                        {"b", DType::F16, {3}, std::vector<uint8_t>(6, 2)}});
  fuzz(p, 3000, 2, [](const std::string& f) { SafetensorsSource::open_file(f); });
  fs::remove(p);
}

}  // namespace
}  // namespace smoe
