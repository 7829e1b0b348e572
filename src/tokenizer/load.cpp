// Tokenizer::load: finds out what kind of tokenizer file (or folder) the user gave.
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/sp_model.h"
#include "tokenizer/spm_bpe.h"

namespace smoe {
namespace fs = std::filesystem;

std::shared_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail("tokenizer '{}' does not exist", path);
  if (fs::is_directory(path, ec)) {
    for (const char* n :
         {"tokenizer.model", "tokenizer.model.v1", "tokenizer.model.v3", "tokenizer.json"}) {
      const fs::path p = fs::path(path) / n;
      if (fs::exists(p, ec)) return load(p.string());
    }
    fail("'{}' holds no tokenizer.model or tokenizer.json", path);
  }
  std::ifstream in(path, std::ios::binary);
  char head[4] = {};
  in.read(head, 4);
  if (in.gcount() == 4 && std::memcmp(head, "GGUF", 4) == 0)
    return tokenizer_from_gguf(*GgufFile::open(path));
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".json") return std::make_shared<SpmBpeTokenizer>(read_hf_tokenizer_json(path));
  if (ext == ".bin") return std::make_shared<SpmBpeTokenizer>(read_llama2c_tokenizer(path));
  return std::make_shared<SpmBpeTokenizer>(read_sentencepiece_file(path));
}

}  // namespace smoe
