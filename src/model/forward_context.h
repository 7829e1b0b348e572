// What a forward pass runs on: the kernels, the threads, an optional observer.
#pragma once

#include "kernels/backend.h"
#include "model/batch.h"

namespace smoe {

class ThreadPool;

struct ForwardContext {
  Backend& backend;
  ThreadPool& pool;
  ForwardObserver* observer = nullptr;
};

}  // namespace smoe
