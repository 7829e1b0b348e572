// The SIMD CPU backend. Float weights (f32, f16, bf16) go through the ISA's float dot products.
// Quantized weights never expand to floats: the activations are quantized to 8 bits and
//   - a few tokens take the small-batch kernels (gemv.h) where the type has them (Q4_0, Q8_0);
//   - otherwise one or two tokens take the integer dot products of src/quant (memory-bound
//     decode);
//   - more tokens take the strip GEMM (strip.h), which unpacks 16 weight rows once per call and
//     multiplies them with every token, or, with AMX, the tile GEMM (tile_gemm.h) for the types
//     it has.
// Types with neither fall back to expanding each weight row to f32 once per call. A matrix in
// another layout than the file's (Matrix::layout, kernels/layout.h) takes the kernels that read
// it (the AVX2 small-batch kernel, every strip repack) or that fallback; never the integer dot
// products or AMX tiles, which read the file's rows.
#pragma once

#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/backend.h"
#include "kernels/cpu/float_kernels.h"
#include "kernels/cpu/gemv.h"
#include "kernels/cpu/strip.h"
#include "kernels/cpu/tile_gemm.h"
#include "quant/dispatch.h"

namespace smoe {

struct SwiGluEpilogue;

class CpuBackend : public Backend {
 public:
  // `strip` and `gemv` may be null (none on this ISA); gemv needs strip's activation quantizer.
  CpuBackend(const cpu::FloatKernels& k, const quant::VecDotKernels& vd,
             const cpu::StripKernels* strip, const cpu::GemvKernels* gemv,
             const BackendOptions& opts, const cpu::TileGemmKernels* tiles = nullptr);
  const char* name() const override { return name_.c_str(); }
  void matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool) override;
  void matmul_multi(const Matrix* const* ws, float* const* ys, int count, const float* x, int64_t n,
                    ThreadPool& pool) override;
  void matmul_swiglu(const Matrix& gate, const Matrix& up, const float* x, int64_t n, float* h,
                     float* u, ThreadPool& pool) override;
  VecOps vec_ops() const override {
    return {.scores_group = k_.scores_group,
            .wsum_group = k_.wsum_group,
            .silu_mul = k_.silu_mul,
            .softmax = k_.softmax,
            .scores_group_f16 = k_.scores_group_f16,
            .wsum_group_f16 = k_.wsum_group_f16,
            .scores_group_q8_0 = k_.scores_group_q8_0,
            .wsum_group_q8_0 = k_.wsum_group_q8_0,
            .to_f16 = k_.to_f16,
            .to_q8_0 = k_.to_q8_0};
  }

  // Which kernels an expert's gate and up products of n tokens take in matmul_swiglu, SiLU·mul
  // fused into them (the paths matmul_multi would give them together) or not.
  enum class SwiGluPath { Gemv, Tiles, Strip, Unfused };
  SwiGluPath swiglu_path(const Matrix& gate, const Matrix& up, int64_t n) const;

  // Fewest tokens that take the strip GEMM.
  static constexpr int64_t kStripMinTokens = 3;
  // Most matrices one matmul_multi takes.
  static constexpr int kMaxMulti = 8;

 private:
  bool strip_ok(const Matrix& w, int64_t n) const;
  bool gemv_ok(const Matrix& w, int64_t n) const;
  bool tiles_ok(const Matrix& w, int64_t n) const;
  bool vec_dot_ok(const Matrix& w) const;
  void matmul_gemv(const Matrix* const* ws, float* const* ys, int count, const float* x, int64_t n,
                   ThreadPool& pool, const SwiGluEpilogue* fuse = nullptr);
  void matmul_float(const Matrix& w, cpu::DotFn dot, const float* x, int64_t n, float* y,
                    ThreadPool& pool);
  void matmul_strip(const Matrix* const* ws, float* const* ys, int count, const float* x, int64_t n,
                    ThreadPool& pool, const SwiGluEpilogue* fuse = nullptr);
  void matmul_tiles(const Matrix* const* ws, float* const* ys, int count, const float* x, int64_t n,
                    ThreadPool& pool, const SwiGluEpilogue* fuse = nullptr);
  void matmul_vec_dot(const Matrix* const* ws, float* const* ys, int count, const float* x,
                      int64_t n, ThreadPool& pool);
  void matmul_dequantized(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool);
  void check_scratch(const Matrix& w, int64_t n, const ThreadPool& pool) const;

  const cpu::FloatKernels& k_;
  const quant::VecDotKernels& vd_;
  const cpu::StripKernels* strip_;
  const cpu::GemvKernels* gemv_;
  const cpu::TileGemmKernels* tiles_;
  int64_t max_cols_, max_rows_;
  std::string name_;
  std::vector<cpu::ActQ8> act_;                       // (max_rows, max_cols / 32)
  std::vector<std::vector<cpu::StripBlock>> strips_;  // two strips per thread
  std::vector<int8_t> gemv_qs_;                       // (kGemvMaxTokens, max_cols)
  std::vector<float> gemv_d_, gemv_sum_;              // (kGemvMaxTokens, max_cols / 32)
  std::vector<int32_t> gemv_sum4_;                    // (kGemvMaxTokens, max_cols / 4)
  std::vector<int8_t> gemv_tq_;                       // the same as AMX tiles (gemv.h)
  std::vector<float> gemv_td_, gemv_ts_;
  std::vector<int8_t> tile_b_;  // the tile GEMM's activations
  std::vector<float> tile_d_, tile_sum_;
  std::vector<std::byte> qact_;              // vec-dot activations, max_rows rows
  std::vector<std::vector<float>> scratch_;  // one f32 row per thread
  ThreadPool solo_{1};                       // runs matmuls too small to share (kMinSharedWork)
};

}  // namespace smoe
