// Hugging Face safetensors: one file (`model.safetensors`, `consolidated.safetensors`) or a sharded
// set listed in `model.safetensors.index.json`. The header JSON is validated (dtype, shape, offsets
// inside the data section, no overlap beyond the file); tensors are views into the mmap'd files.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "io/weight_source.h"

namespace smoe {

class SafetensorsSource : public WeightSource {
 public:
  // One file.
  static std::unique_ptr<SafetensorsSource> open_file(const std::string& path,
                                                      const LoadOptions& opts = {});
  // Several files (shards); names must not repeat across them.
  static std::unique_ptr<SafetensorsSource> open_files(const std::vector<std::string>& paths,
                                                       const LoadOptions& opts = {});
  // A folder: model.safetensors.index.json (sharded), else model.safetensors, else
  // consolidated.safetensors, else every *.safetensors file. Error if none.
  static std::unique_ptr<SafetensorsSource> open_dir(const std::string& dir,
                                                     const LoadOptions& opts = {});
  // One file whose bytes are already loaded (e.g. MappedFile::from_bytes); for tests and fuzzing.
  static std::unique_ptr<SafetensorsSource> parse(std::shared_ptr<MappedFile> file);
  std::string description() const override;

 private:
  SafetensorsSource() = default;
  void add_file(std::shared_ptr<MappedFile> file);
  std::string desc_;
  std::vector<std::shared_ptr<MappedFile>> files_;
};

// Writes one safetensors file (tests and tools). Tensors are written in the given order; each
// entry's bytes must match its dtype and shape. The header is padded with spaces to a multiple
// of 8.
struct SafetensorsEntry {
  std::string name;
  DType dtype;  // F32, F16 or BF16 (and I32/I64/...)
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
void write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& tensors);

}  // namespace smoe
