// The one interface the model calls for heavy math. The scalar reference (ref/) is the
// specification; fast implementations (cpu/) sit beside it and may decline a case by returning
// false, in which case the reference runs. Small element-wise ops are plain functions in ops.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "quant/blocks.h"

namespace smoe {

class ThreadPool;

// How a matrix's bytes are laid out. Rows: as in model files, each row's blocks one after the
// other. Rows8 (Q4_0 only; kernels/layout.h): rows interleaved by eight, as the AVX2 kernels read
// them, in the same bytes (each group of eight rows keeps its 8·row_bytes).
enum class MatrixLayout : uint8_t { Rows, Rows8 };

// A weight matrix W (rows = out features, cols = in features), row-major, any dtype; rows are
// `row_bytes` apart. y = W x.
struct Matrix {
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const std::byte* data = nullptr;
  size_t row_bytes = 0;
  MatrixLayout layout = MatrixLayout::Rows;
  // Row r's bytes; with layout Rows8 only the bytes of its group (kernels/layout.h reads a row).
  const std::byte* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
};

// Converts one row of `cols` elements of any supported dtype to f32 (reference).
void row_to_f32(DType t, const std::byte* src, float* dst, int64_t n);
// True when row_to_f32 and the matmul kernels support the dtype.
bool dtype_supported(DType t);

// Vector operations of the transformer that a backend may run faster than the scalar
// references in ops.h (attention's products over a group of query heads, over key/value rows
// stored in f32, f16 or Q8_0, and its softmax; the conversion of a row into the cache's f16 or
// Q8_0; SiLU·mul). Filled with designated initialisers, so that a new field cannot shift others.
struct VecOps {
  void (*scores_group)(const float* q, int g, const float* const* keys, int64_t n, int64_t hd,
                       float scale, float* scores, int64_t s_stride);
  void (*wsum_group)(const float* p, int64_t p_stride, int g, const float* const* vals, int64_t n,
                     int64_t hd, float* out);
  void (*silu_mul)(float* a, const float* b, int64_t n);
  void (*softmax)(float* x, int64_t n);
  void (*scores_group_f16)(const float* q, int g, const uint16_t* const* keys, int64_t n,
                           int64_t hd, float scale, float* scores, int64_t s_stride);
  void (*wsum_group_f16)(const float* p, int64_t p_stride, int g, const uint16_t* const* vals,
                         int64_t n, int64_t hd, float* out);
  void (*scores_group_q8_0)(const float* q, int g, const quant::BlockQ8_0* const* keys, int64_t n,
                            int64_t hd, float scale, float* scores, int64_t s_stride);
  void (*wsum_group_q8_0)(const float* p, int64_t p_stride, int g,
                          const quant::BlockQ8_0* const* vals, int64_t n, int64_t hd, float* out);
  void (*to_f16)(const float* x, uint16_t* y, int64_t n);
  void (*to_q8_0)(const float* x, quant::BlockQ8_0* y, int64_t n);
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // y (n, w.rows) = x (n, w.cols) · Wᵀ, split over the pool's threads by rows of W.
  virtual void matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool) = 0;
  // ys[i] = x · ws[i]ᵀ for `count` matrices with the same number of columns and one input (q, k
  // and v; an expert's gate and up). A backend may prepare x once and split the rows of all the
  // matrices as one job; this default runs them one after the other.
  virtual void matmul_multi(const Matrix* const* ws, float* const* ys, int count, const float* x,
                            int64_t n, ThreadPool& pool) {
    for (int i = 0; i < count; ++i) matmul(*ws[i], x, n, ys[i], pool);
  }
  // An expert's SwiGLU before its down projection: h (n, gate.rows) = SiLU(x · gateᵀ) ⊙ (x · upᵀ),
  // with u (n, up.rows) as scratch for the up product. This default runs both products
  // (matmul_multi), then SiLU·mul over the whole of h; a backend may instead finish each block of
  // rows as soon as both products have it (fused), with the same result.
  virtual void matmul_swiglu(const Matrix& gate, const Matrix& up, const float* x, int64_t n,
                             float* h, float* u, ThreadPool& pool);
  // Defaults to the scalar reference (kernels/ops.h).
  virtual VecOps vec_ops() const;
};

// Instruction sets a backend can be built for (the first three in cpu::Isa's order; Amx is
// AVX-512 VNNI with AMX int8 tiles for small batches). Auto: the best this CPU runs. Tests force
// each one the machine supports.
enum class BackendIsa { Scalar, Avx2, Avx512, Amx, Auto };

// Whether this CPU (and, for AMX, the operating system) runs a backend of that instruction set.
bool backend_isa_supported(BackendIsa isa);

struct BackendOptions {
  int64_t max_cols = 0;  // longest row any matmul will see (sizes per-thread scratch)
  int64_t max_rows = 1;  // most activation rows (tokens) in one matmul
  int n_threads = 1;
  bool reference = false;  // force the scalar reference kernels
  BackendIsa isa = BackendIsa::Auto;
};

// The layout the best backend this CPU supports reads w fastest in: Rows8 for Q4_0 on AVX2
// without AVX-512 (gemv_avx2.cpp's rows8_tile), else Rows. AVX-512 and AMX read the file's
// layout at memory speed already.
MatrixLayout preferred_layout(const Matrix& w);

// The best backend this CPU supports (or the reference when asked).
std::unique_ptr<Backend> make_backend(const BackendOptions& opts);

}  // namespace smoe
