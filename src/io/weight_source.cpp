#include "io/weight_source.h"

#include "core/error.h"
#include "io/mapped_file.h"

namespace smoe {

const TensorView* WeightSource::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void WeightSource::release_pages(const std::byte* data, size_t n) const {
  for (const MappedFile* f : mapped_)
    if (f->contains(data)) f->release_pages(data, n);
}

void WeightSource::add_tensor(TensorView t) {
  if (index_.count(t.name)) fail("{}: tensor '{}' appears twice", t.file, t.name);
  index_.emplace(t.name, tensors_.size());
  tensors_.push_back(std::move(t));
}

const TensorView* WeightSource::containing(const std::byte* p, size_t n) const {
  for (const TensorView& t : tensors_)
    if (p >= t.data && p + n <= t.data + t.nbytes && t.data) return &t;
  return nullptr;
}

}  // namespace smoe
