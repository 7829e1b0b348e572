// Software prefetch of a whole row for the attention kernels, whose key/value rows lie anywhere
// in memory (a paged cache): the hardware prefetchers cannot guess the next row. Include only
// from files built with SSE (any x86-64).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace smoe::cpu {

// Every cache line of the `bytes` bytes from p towards L1.
inline void prefetch_row(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch(c + o, _MM_HINT_T0);
  _mm_prefetch(c + bytes - 1, _MM_HINT_T0);  // the last line, when p is not at a line's start
}

}  // namespace smoe::cpu
