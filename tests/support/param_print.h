// Readable parameters of the kernel tests: gtest prints a value it has no printer for as a byte
// dump ("4-byte object <02-00 00-00>") in test listings and failure messages; these name it.
#pragma once

#include <ostream>

#include "core/dtype.h"
#include "kernels/backend.h"

namespace smoe {

inline const char* backend_isa_label(BackendIsa isa) {
  switch (isa) {
    case BackendIsa::Scalar:
      return "Scalar";
    case BackendIsa::Avx2:
      return "Avx2";
    case BackendIsa::Avx512:
      return "Avx512";
    case BackendIsa::Amx:
      return "Amx";
    case BackendIsa::Auto:
      return "Auto";
  }
  return "?";
}

inline void PrintTo(BackendIsa isa, std::ostream* os) {
  *os << backend_isa_label(isa);
}
inline void PrintTo(DType t, std::ostream* os) {
  *os << dtype_name(t);
}

}  // namespace smoe
