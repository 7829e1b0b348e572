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

// What Model::load does, with a say in how the weights are bound: a converter leaves HF's q/k
// rows in place (BindOptions::reorder_hf_qk), which attention cannot compute with, so such an
// Impl never becomes a Model.
std::unique_ptr<Model::Impl> load_model_impl(const ModelOptions& opts, const BindOptions& bind);

}  // namespace smoe
