// Run-time choice of the quantized dot-product kernels by instruction set. Each level has one
// const table of its own kernels (null where it has none); the table a caller gets fills those
// gaps from the level below, down to the scalar reference, so every entry of vec_dot_kernels()
// is usable. Tests and benchmarks force a level with the explicit `isa` argument.
//
// Typical use, once per matrix (the checks are the caller's; the kernels do none):
//   const auto& k = quant::vec_dot_kernels();
//   const DType act = *quant::vec_dot_act_type(w.dtype);
//   k.quantize_for(w.dtype)(x, qx, n);                  // dtype_bytes(act, n) bytes at qx
//   for (row r) y[r] = k.dot_for(w.dtype)(w.row(r), qx, n);
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "core/dtype.h"

namespace smoe::quant {

enum class Isa : uint8_t { Scalar, Avx2, Avx512 };  // Avx512: F, BW, DQ, VL and VNNI

// Σ w·x over one row of n weights (a whole number of blocks) and n quantized activations.
using DotFn = float (*)(const void* w, const void* act, int64_t n);
// n floats → activation blocks.
using QuantizeFn = void (*)(const float* x, void* dst, int64_t n);

inline constexpr size_t kNumDTypes = static_cast<size_t>(DType::F64) + 1;

struct VecDotKernels {
  Isa isa = Isa::Scalar;
  std::array<DotFn, kNumDTypes> dot{};            // by weight type
  std::array<QuantizeFn, kNumDTypes> quantize{};  // by activation type (Q8_0, Q8_1, Q8_K)

  DotFn dot_for(DType w) const { return dot[static_cast<size_t>(w)]; }
  // The quantizer of the activations that weight type `w` is multiplied with (null if none).
  QuantizeFn quantize_for(DType w) const;
};

const char* isa_name(Isa isa);
// Whether this CPU can run `isa` (and this build has it).
bool isa_supported(Isa isa);
// The widest level this CPU supports.
Isa best_isa();

// The kernels of `isa` (default best_isa()) with gaps filled from lower levels.
// smoe::Error if this CPU cannot run `isa`.
const VecDotKernels& vec_dot_kernels(std::optional<Isa> isa = std::nullopt);

// One level's own table, gaps left null: for tests and benchmarks. Calling its kernels on a CPU
// without `isa` is undefined; check isa_supported first.
const VecDotKernels& vec_dot_kernels_own(Isa isa);

// The per-level tables (defined in src/quant/avx2, src/quant/avx512 and vec_dot's reference).
const VecDotKernels& vec_dot_table_scalar();
const VecDotKernels& vec_dot_table_avx2();
const VecDotKernels& vec_dot_table_avx512();

}  // namespace smoe::quant
