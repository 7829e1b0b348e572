// Quantized dot products: the scalar reference against the dequantized f32 dot product, every
// SIMD kernel and activation quantizer against the reference, and the dispatcher's choices.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/dequantize.h"
#include "quant/dispatch.h"
#include "quant/vec_dot.h"

namespace smoe::quant {
namespace {

const DType kWeightTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                              DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Offsets of the f16 scale fields in each weight block (the rest is random bits).
std::vector<size_t> f16_fields(DType t) {
  switch (t) {
    case DType::Q4_1:
      return {offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)};
    case DType::Q5_1:
      return {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)};
    case DType::Q2_K:
      return {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)};
    case DType::Q3_K:
      return {offsetof(BlockQ3_K, d)};
    case DType::Q4_K:
      return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
    case DType::Q5_K:
      return {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
    case DType::Q6_K:
      return {offsetof(BlockQ6_K, d)};
    default:  // Q4_0, Q5_0, Q8_0: d first
      return {0};
  }
}

// n weights of type t as blocks of random bits, every f16 field set to `scale` (or, with
// scale 0, a random value in ±[0.001, 0.01]).
std::vector<uint8_t> random_blocks(DType t, int64_t n, std::mt19937& rng, float scale = 0) {
  std::vector<uint8_t> w(*dtype_bytes(t, n));
  for (uint8_t& v : w) v = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> u(0.001f, 0.01f);
  const auto bb = static_cast<size_t>(dtype_info(t).block_bytes);
  for (size_t b = 0; b < w.size(); b += bb)
    for (size_t off : f16_fields(t)) {
      const float v = scale != 0 ? scale : (rng() & 1 ? u(rng) : -u(rng));
      const uint16_t h = f32_to_f16(v);
      std::memcpy(&w[b + off], &h, 2);
    }
  return w;
}

std::vector<float> random_floats(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = nd(rng);
  return x;
}

// Activation blocks → floats (d·q), written out from the block layouts.
std::vector<float> act_values(DType act, const std::vector<uint8_t>& a, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (act == DType::Q8_K) {
      const auto* b = reinterpret_cast<const BlockQ8_K*>(a.data()) + i / 256;
      y[i] = b->d * b->qs[i % 256];
    } else if (act == DType::Q8_1) {
      const auto* b = reinterpret_cast<const BlockQ8_1*>(a.data()) + i / 32;
      y[i] = f16_to_f32(b->d) * b->qs[i % 32];
    } else {
      const auto* b = reinterpret_cast<const BlockQ8_0*>(a.data()) + i / 32;
      y[i] = f16_to_f32(b->d) * b->qs[i % 32];
    }
  }
  return y;
}

std::vector<uint8_t> quantized_acts(DType w, const std::vector<float>& x) {
  const DType act = *vec_dot_act_type(w);
  const auto n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> a(*dtype_bytes(act, n));
  quantize_activations(act, x.data(), a.data(), n);
  return a;
}

struct Exact {
  double dot = 0, abs = 0;  // Σ w·a and Σ |w·a| in double
};

Exact dequantized_dot(DType t, const std::vector<uint8_t>& w, const std::vector<uint8_t>& a,
                      int64_t n) {
  std::vector<float> wf(static_cast<size_t>(n));
  dequantize_row(t, w.data(), wf.data(), n);
  const auto af = act_values(*vec_dot_act_type(t), a, n);
  Exact e;
  for (int64_t i = 0; i < n; ++i) {
    e.dot += static_cast<double>(wf[i]) * af[i];
    e.abs += std::fabs(static_cast<double>(wf[i]) * af[i]);
  }
  return e;
}

// Q4_1 / Q5_1 add m·s per block, s = d·Σq rounded to f16 as the Q8_1 format stores it: allow
// that rounding (2^-11 relative, doubled) on top of float accumulation (1e-5 of Σ|w·a|).
double ref_tolerance(DType t, const Exact& e, const std::vector<uint8_t>& w,
                     const std::vector<uint8_t>& a, int64_t n) {
  double tol = 1e-5 * e.abs;
  if (t == DType::Q4_1 || t == DType::Q5_1) {
    const auto wb = static_cast<size_t>(dtype_info(t).block_bytes);
    const auto* act = reinterpret_cast<const BlockQ8_1*>(a.data());
    for (int64_t i = 0; i < n / 32; ++i) {
      uint16_t m;
      std::memcpy(&m, &w[i * wb + 2], 2);  // Q4_1 / Q5_1: m after d
      tol += std::fabs(f16_to_f32(m) * f16_to_f32(act[i].s)) / 1024.0;
    }
  }
  return tol;
}

TEST(VecDotReference, EqualsTheDequantizedDotProduct) {
  for (DType t : kWeightTypes)
    for (uint32_t seed : {1u, 2u, 3u}) {
      std::mt19937 rng(seed);
      const int64_t n = dtype_info(t).block_size * (seed == 1 ? 1 : 9);
      const auto w = random_blocks(t, n, rng);
      const auto a = quantized_acts(t, random_floats(n, rng));
      const Exact e = dequantized_dot(t, w, a, n);
      EXPECT_NEAR(vec_dot(t, w.data(), a.data(), n), e.dot, ref_tolerance(t, e, w, a, n))
          << dtype_name(t) << " seed " << seed;
    }
}

TEST(VecDotReference, ActivationQuantizersRoundHalfToEven) {
  // d = 127/127 = 1: x·(1/d) = x, so the ties show the rounding.
  std::vector<float> x(256, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -3.5f;
  x[3] = 0.5f;
  x[4] = -126.49f;
  x[17] = 1.5f;
  const int8_t want[5] = {127, 2, -4, 0, -126};
  BlockQ8_0 q0[8];
  quantize_activations(DType::Q8_0, x.data(), q0, 256);
  EXPECT_EQ(f16_to_f32(q0[0].d), 1.0f);
  for (int j = 0; j < 5; ++j) EXPECT_EQ(q0[0].qs[j], want[j]) << j;
  EXPECT_EQ(q0[0].qs[17], 2);
  EXPECT_EQ(f16_to_f32(q0[1].d), 0.0f);  // all-zero block
  BlockQ8_1 q1[8];
  quantize_activations(DType::Q8_1, x.data(), q1, 256);
  for (int j = 0; j < 5; ++j) EXPECT_EQ(q1[0].qs[j], want[j]) << j;
  EXPECT_EQ(f16_to_f32(q1[0].s), 127.0f + 2 - 4 + 0 - 126 + 2);  // d·Σq
  BlockQ8_K qk;
  quantize_activations(DType::Q8_K, x.data(), &qk, 256);
  EXPECT_EQ(qk.d, 1.0f);
  for (int j = 0; j < 5; ++j) EXPECT_EQ(qk.qs[j], want[j]) << j;
  EXPECT_EQ(qk.bsums[0], 127 + 2 - 4 + 0 - 126);
  EXPECT_EQ(qk.bsums[1], 2);
  for (int g = 2; g < 16; ++g) EXPECT_EQ(qk.bsums[g], 0);
}

TEST(VecDotReference, RejectsBadTypesAndPartialBlocks) {
  std::vector<float> x(512, 1.0f);
  std::vector<uint8_t> buf(4096);
  EXPECT_THROW(vec_dot(DType::F32, buf.data(), buf.data(), 32), Error);
  EXPECT_THROW(vec_dot(DType::Q8_K, buf.data(), buf.data(), 256), Error);
  EXPECT_THROW(vec_dot(DType::Q4_K, buf.data(), buf.data(), 128), Error);
  EXPECT_THROW(vec_dot(DType::Q8_0, buf.data(), buf.data(), 33), Error);
  EXPECT_THROW(quantize_activations(DType::Q4_0, x.data(), buf.data(), 32), Error);
  EXPECT_THROW(quantize_activations(DType::Q8_K, x.data(), buf.data(), 32), Error);
  EXPECT_THROW(quantize_activations(DType::Q8_0, x.data(), buf.data(), 48), Error);
  EXPECT_FALSE(vec_dot_act_type(DType::F16));
  EXPECT_EQ(vec_dot_act_type(DType::Q5_1), DType::Q8_1);
  EXPECT_EQ(vec_dot_act_type(DType::Q3_K), DType::Q8_K);
}

std::vector<Isa> simd_isas() {
  std::vector<Isa> v;
  for (Isa isa : {Isa::Avx2, Isa::Avx512})
    if (isa_supported(isa)) v.push_back(isa);
  return v;
}

TEST(VecDotSimd, ActivationQuantizersAreBitExact) {
  if (simd_isas().empty()) GTEST_SKIP() << "this CPU has no SIMD level smoe uses";
  for (Isa isa : simd_isas())
    for (DType act : {DType::Q8_0, DType::Q8_1, DType::Q8_K}) {
      const QuantizeFn fn = vec_dot_kernels_own(isa).quantize[static_cast<size_t>(act)];
      if (!fn) continue;
      for (uint32_t seed : {1u, 2u, 3u}) {
        std::mt19937 rng(seed);
        const int64_t n = 256 * 5;
        auto x = random_floats(n, rng);
        for (int j = 256; j < 512; ++j) x[j] = 0;            // a zero block
        for (int j = 512; j < 768; ++j) x[j] = (j % 7) - 3;  // ties at d = 3/127
        x[800] = 1e-30f;                                     // tiny scale
        std::vector<uint8_t> want(*dtype_bytes(act, n)), got(want.size(), 0xAB);
        quantize_activations(act, x.data(), want.data(), n);
        fn(x.data(), got.data(), n);
        EXPECT_EQ(want, got) << isa_name(isa) << " " << dtype_name(act) << " seed " << seed;
      }
    }
}

TEST(VecDotSimd, KernelsMatchTheReference) {
  if (simd_isas().empty()) GTEST_SKIP() << "this CPU has no SIMD level smoe uses";
  int checked = 0;
  for (Isa isa : simd_isas())
    for (DType t : kWeightTypes) {
      const DotFn fn = vec_dot_kernels_own(isa).dot_for(t);
      if (!fn) continue;
      const int64_t bs = dtype_info(t).block_size;
      for (int64_t blocks : {int64_t{1}, int64_t{3}, int64_t{17}, 4096 / bs})
        for (uint32_t seed : {1u, 2u, 3u}) {
          std::mt19937 rng(seed * 1000 + static_cast<uint32_t>(blocks));
          const int64_t n = bs * blocks;
          const auto w = random_blocks(t, n, rng);
          const auto a = quantized_acts(t, random_floats(n, rng));
          const Exact e = dequantized_dot(t, w, a, n);
          const float want = vec_dot(t, w.data(), a.data(), n);
          EXPECT_NEAR(fn(w.data(), a.data(), n), want, 1e-5 * e.abs)
              << isa_name(isa) << " " << dtype_name(t) << " blocks " << blocks << " seed " << seed;
          ++checked;
        }
    }
  EXPECT_GE(checked, 2 * 4 * 3);
}

// With every scale 1 and small activations all partial sums are integers below 2^24: the SIMD
// result must equal the reference exactly (no rounding anywhere to hide a wrong level).
TEST(VecDotSimd, KernelsAreExactOnIntegerData) {
  if (simd_isas().empty()) GTEST_SKIP() << "this CPU has no SIMD level smoe uses";
  for (Isa isa : simd_isas())
    for (DType t : kWeightTypes) {
      const DotFn fn = vec_dot_kernels_own(isa).dot_for(t);
      if (!fn) continue;
      for (uint32_t seed : {1u, 2u}) {
        std::mt19937 rng(seed);
        const int64_t n = dtype_info(t).block_size * 2;
        const auto w = random_blocks(t, n, rng, 1.0f);
        std::vector<float> x(static_cast<size_t>(n));
        std::uniform_int_distribution<int> u(-3, 3);
        for (float& v : x) v = static_cast<float>(u(rng));
        for (int64_t j = 0; j < n; j += dtype_info(t).block_size) x[j] = 127;  // d = 1
        const auto a = quantized_acts(t, x);
        const float want = vec_dot(t, w.data(), a.data(), n);
        EXPECT_EQ(fn(w.data(), a.data(), n), want) << isa_name(isa) << " " << dtype_name(t);
        EXPECT_EQ(want, static_cast<float>(dequantized_dot(t, w, a, n).dot)) << dtype_name(t);
      }
    }
}

TEST(VecDotDispatch, EveryTypeHasAKernelAtEveryLevel) {
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
    if (!isa_supported(isa)) {
      EXPECT_THROW(vec_dot_kernels(isa), Error) << isa_name(isa);
      continue;
    }
    const VecDotKernels& k = vec_dot_kernels(isa);
    EXPECT_EQ(k.isa, isa);
    for (DType t : kWeightTypes) {
      EXPECT_NE(k.dot_for(t), nullptr) << isa_name(isa) << " " << dtype_name(t);
      EXPECT_NE(k.quantize_for(t), nullptr) << isa_name(isa) << " " << dtype_name(t);
    }
    EXPECT_EQ(k.dot_for(DType::F32), nullptr);
    EXPECT_EQ(k.quantize_for(DType::F32), nullptr);
  }
  EXPECT_EQ(vec_dot_kernels().isa, best_isa());
  EXPECT_TRUE(isa_supported(best_isa()));
  EXPECT_STREQ(isa_name(Isa::Avx512), "avx512");
}

TEST(VecDotDispatch, SimdLevelsHaveTheirOwnCoreKernels) {
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    const VecDotKernels& k = vec_dot_kernels_own(isa);
    EXPECT_EQ(k.isa, isa);
    for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K})
      EXPECT_NE(k.dot_for(t), nullptr) << isa_name(isa) << " " << dtype_name(t);
    EXPECT_NE(k.quantize[static_cast<size_t>(DType::Q8_K)], nullptr);
    // A gap in a level's own table is filled from below in the table callers get.
    if (isa_supported(isa) && !k.dot_for(DType::Q4_1)) {
      EXPECT_EQ(vec_dot_kernels(isa).dot_for(DType::Q4_1),
                vec_dot_table_scalar().dot_for(DType::Q4_1));
    }
  }
}

}  // namespace
}  // namespace smoe::quant
