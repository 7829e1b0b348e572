// Measurements for `smoe bench`.
#pragma once

#include <cstddef>

namespace smoe {

// Read bandwidth of this machine's memory in GB/s (1e9 bytes/s): `threads` threads stream
// through `bytes` of freshly touched memory several times, prefetching ahead into L2 or into L1;
// the best pass counts.
double measure_read_bandwidth(int threads, size_t bytes = size_t{1} << 30);

}  // namespace smoe
