// What every model-file reader yields: named tensor views over file bytes. The readers (GGUF,
// safetensors, llama2.c) know formats; model/ knows names and shapes. A source keeps its files
// alive as long as it lives.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"

namespace smoe {

class MappedFile;

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // "GGUF v3 file model.gguf", "safetensors folder /x (3 shards)", ...
  virtual std::string description() const = 0;
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // nullptr when absent.
  const TensorView* find(std::string_view name) const;
  // The tensor whose bytes hold [p, p + n), or nullptr (e.g. bytes copied out of the file).
  const TensorView* containing(const std::byte* p, size_t n) const;
  // Done with the bytes [data, data + n) of a tensor for now: where they lie in a mapped file,
  // its pages leave the process's resident memory (MappedFile::release_pages). Bytes read into
  // memory, and bytes that are not the source's, stay as they are.
  void release_pages(const std::byte* data, size_t n) const;

 protected:
  void add_tensor(TensorView t);  // rejects a duplicate name with smoe::Error
  // A file the views point into, for release_pages; the subclass keeps it alive.
  void add_mapped_file(const MappedFile* f) { mapped_.push_back(f); }
  std::vector<TensorView> tensors_;
  std::unordered_map<std::string, size_t> index_;

 private:
  std::vector<const MappedFile*> mapped_;
};

}  // namespace smoe
