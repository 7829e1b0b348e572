// A forward batch: tokens of one or more sequences, each at its position.
#pragma once

#include <cstdint>

namespace smoe {

struct BatchEntry {
  int32_t token = 0;
  int64_t pos = 0;      // position in its sequence
  int32_t seq = 0;      // sequence id (a KV-cache row)
  bool logits = false;  // compute this token's next-token logits
};

// Observes the forward pass without changing it (routing analysis, activation dumps).
class ForwardObserver {
 public:
  virtual ~ForwardObserver() = default;
  // The experts chosen for batch entry `i` in `layer` and their weights (after the softmax).
  virtual void on_routing(int layer, int64_t i, const int32_t* experts, const float* weights,
                          int k) = 0;
};

}  // namespace smoe
