#include "kernels/backend.h"

#include "kernels/ref/ref_backend.h"

namespace smoe {

std::unique_ptr<Backend> make_backend(const BackendOptions& opts) {
  return std::make_unique<RefBackend>(opts);
}

}  // namespace smoe
