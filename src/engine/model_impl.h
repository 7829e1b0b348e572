// What a loaded Model holds (private to the engine).
#pragma once

#include <memory>

#include "model/loader.h"
#include "model/weights.h"
#include "smoe/engine.h"

namespace smoe {

struct Model::Impl {
  OpenedModel opened;
  ModelWeights weights;
  ModelInfo info;
  std::shared_ptr<const Tokenizer> tokenizer;
};

// ModelInfo of an opened model (tensor table included when it has weights).
ModelInfo describe(const OpenedModel& m);

}  // namespace smoe
