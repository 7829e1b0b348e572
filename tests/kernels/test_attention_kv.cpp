// Attention over key/value rows stored in f16 and Q8_0 (ops::scores_group_f16 ... and the SIMD
// kernels behind VecOps), and the row converters that write the cache (to_f16, to_q8_0): every
// instruction set this CPU runs against the scalar reference, and the reference against the f32
// one on the rows it claims to read.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "../support/param_print.h"
#include "core/fp16.h"
#include "kernels/backend.h"
#include "kernels/ops.h"
#include "quant/blocks.h"
#include "quant/dequantize.h"

namespace smoe {
namespace {

using quant::BlockQ8_0;
using quant::kQK;

// The vector operations of a backend of that instruction set; the test skips, saying why, where
// this CPU does not run it.
class KvKernels : public ::testing::TestWithParam<BackendIsa> {
 protected:
  void SetUp() override {
    if (!backend_isa_supported(GetParam()))
      GTEST_SKIP() << "this CPU does not run " << backend_isa_label(GetParam())
                   << " (AVX-512 needs F, BW and VL; AVX2 needs FMA and F16C): its kernels are "
                      "compiled but not tested here";
    backend_ = make_backend({.isa = GetParam()});
    ops_ = backend_->vec_ops();
  }
  std::unique_ptr<Backend> backend_;
  VecOps ops_{};
};

// n rows of `len` elements of T in one pool, each in its own slot of the pool in shuffled order
// and at a random offset inside it (so rows are neither contiguous nor aligned), every element
// outside the rows set to `guard` (a NaN), which reading past a row would bring into a sum.
template <typename T>
struct ScatteredRows {
  std::vector<T> pool;
  std::vector<T*> rows;
  ScatteredRows(int64_t n, int64_t len, T guard, std::mt19937& rng) {
    const int64_t slot = len + 5;
    pool.assign(static_cast<size_t>(n * slot), guard);
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    std::uniform_int_distribution<int64_t> off(0, slot - len);
    for (int64_t j = 0; j < n; ++j) rows.push_back(pool.data() + order[j] * slot + off(rng));
  }
  std::vector<const T*> pointers() const { return {rows.begin(), rows.end()}; }
};

constexpr uint16_t kNanHalf = 0x7e00;
const BlockQ8_0 kNanBlock{kNanHalf, {}};

// Normal values with a few orders of magnitude between rows and elements, as keys and values
// have.
std::vector<float> make_values(int64_t count, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  std::uniform_real_distribution<float> mag(-2.0f, 2.0f);
  std::vector<float> v(count);
  for (float& x : v) x = nd(rng) * std::pow(10.0f, mag(rng));
  return v;
}

ScatteredRows<uint16_t> f16_rows(const std::vector<float>& f, int64_t n, int64_t hd,
                                 std::mt19937& rng) {
  ScatteredRows<uint16_t> r(n, hd, kNanHalf, rng);
  for (int64_t j = 0; j < n; ++j) ops::to_f16(f.data() + j * hd, r.rows[j], hd);
  return r;
}

ScatteredRows<BlockQ8_0> q8_rows(const std::vector<float>& f, int64_t n, int64_t hd,
                                 std::mt19937& rng) {
  ScatteredRows<BlockQ8_0> r(n, hd / kQK, kNanBlock, rng);
  for (int64_t j = 0; j < n; ++j) ops::to_q8_0(f.data() + j * hd, r.rows[j], hd);
  return r;
}

// What a row stands for: the f32 values the kernels must read.
std::vector<float> dequantized(const uint16_t* row, int64_t hd) {
  std::vector<float> f(hd);
  for (int64_t d = 0; d < hd; ++d) f[d] = f16_to_f32(row[d]);
  return f;
}

std::vector<float> dequantized(const BlockQ8_0* row, int64_t hd) {
  std::vector<float> f(hd);
  quant::dequantize_row(DType::Q8_0, row, f.data(), hd);
  return f;
}

// One shape: g query heads, n rows of hd values, scores and probabilities s_stride apart.
struct Shape {
  int g;
  int64_t n, hd;
  int64_t stride() const { return n + 3; }
};

// A kernel's scores and weighted sums against the reference's. A sum of len terms t in any
// order is within len·eps·Σ|t| of another (to first order), so each element's tolerance is that
// bound (times 2) over its own terms, computed from the rows as the reference reads them.
template <typename Row>
void expect_close(const Shape& s, const std::vector<float>& q, const std::vector<float>& p,
                  const std::vector<const Row*>& rows, float scale, const std::vector<float>& got_s,
                  const std::vector<float>& ref_s, const std::vector<float>& got_o,
                  const std::vector<float>& ref_o, const char* what) {
  std::vector<std::vector<float>> f(s.n);
  for (int64_t j = 0; j < s.n; ++j) f[j] = dequantized(rows[j], s.hd);
  const auto bound = [](double mag, int64_t len) {
    return 2.0 * FLT_EPSILON * static_cast<double>(len) * mag + 1e-30;
  };
  for (int h = 0; h < s.g; ++h) {
    for (int64_t j = 0; j < s.n; ++j) {
      double mag = 0;
      for (int64_t d = 0; d < s.hd; ++d) mag += std::fabs(q[h * s.hd + d] * f[j][d]);
      const size_t i = h * s.stride() + j;
      ASSERT_NEAR(got_s[i], ref_s[i], bound(mag * scale, s.hd))
          << what << " scores: g " << s.g << " n " << s.n << " hd " << s.hd << " head " << h
          << " row " << j;
    }
    for (int64_t d = 0; d < s.hd; ++d) {
      double mag = 0;
      for (int64_t j = 0; j < s.n; ++j) mag += std::fabs(p[h * s.stride() + j] * f[j][d]);
      const size_t i = h * s.hd + d;
      ASSERT_NEAR(got_o[i], ref_o[i], bound(mag, s.n))
          << what << " wsum: g " << s.g << " n " << s.n << " hd " << s.hd << " head " << h
          << " value " << d;
    }
  }
  // Entries of the score rows past n are the caller's: left alone.
  for (int h = 0; h < s.g; ++h)
    for (int64_t j = s.n; j < s.stride(); ++j) ASSERT_EQ(got_s[h * s.stride() + j], -7.0f);
}

// Runs `scores` and `wsum` of the kernel and of the reference on one shape.
template <typename Row, typename Scores, typename Wsum>
void check_shape(const Shape& s, const std::vector<const Row*>& rows, Scores scores, Wsum wsum,
                 Scores ref_scores, Wsum ref_wsum, std::mt19937& rng, const char* what) {
  const std::vector<float> q = make_values(s.g * s.hd, rng);
  std::vector<float> p(s.g * s.stride());
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (float& x : p) x = u(rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.hd));
  std::vector<float> ref_s(s.g * s.stride(), -7.0f), got_s = ref_s;
  std::vector<float> ref_o(s.g * s.hd, -7.0f), got_o = ref_o;
  ref_scores(q.data(), s.g, rows.data(), s.n, s.hd, scale, ref_s.data(), s.stride());
  scores(q.data(), s.g, rows.data(), s.n, s.hd, scale, got_s.data(), s.stride());
  ref_wsum(p.data(), s.stride(), s.g, rows.data(), s.n, s.hd, ref_o.data());
  wsum(p.data(), s.stride(), s.g, rows.data(), s.n, s.hd, got_o.data());
  expect_close(s, q, p, rows, scale, got_s, ref_s, got_o, ref_o, what);
}

constexpr int kGroups[] = {1, 2, 3, 4, 5, 8};
constexpr int64_t kRows[] = {1, 2, 7, 16, 33, 300};

// f16 rows of any length: the widths of the SIMD loads, their tails and Mixtral's 128.
TEST_P(KvKernels, F16AttentionMatchesReference) {
  std::mt19937 rng(31);
  for (int64_t hd : {1, 7, 16, 33, 48, 64, 96, 128})
    for (int g : kGroups)
      for (int64_t n : kRows) {
        const Shape s{g, n, hd};
        const auto rows = f16_rows(make_values(n * hd, rng), n, hd, rng);
        check_shape(s, rows.pointers(), ops_.scores_group_f16, ops_.wsum_group_f16,
                    ops::scores_group_f16, ops::wsum_group_f16, rng, backend_isa_label(GetParam()));
        if (HasFatalFailure()) return;
      }
}

// Q8_0 rows are whole blocks of 32.
TEST_P(KvKernels, Q8_0AttentionMatchesReference) {
  std::mt19937 rng(32);
  for (int64_t hd : {32, 64, 96, 128})
    for (int g : kGroups)
      for (int64_t n : kRows) {
        const Shape s{g, n, hd};
        const auto rows = q8_rows(make_values(n * hd, rng), n, hd, rng);
        check_shape(s, rows.pointers(), ops_.scores_group_q8_0, ops_.wsum_group_q8_0,
                    ops::scores_group_q8_0, ops::wsum_group_q8_0, rng,
                    backend_isa_label(GetParam()));
        if (HasFatalFailure()) return;
      }
}

uint32_t bits_of(float f) {
  return std::bit_cast<uint32_t>(f);
}
float from_bits(uint32_t u) {
  return std::bit_cast<float>(u);
}

// Floats where f32 → f16 can go wrong: every tie between two adjacent halves (and the floats on
// either side of it), the ends of the subnormal and normal ranges, overflow, infinities, NaNs
// with and without payloads and of both signs, f32 subnormals, and a sweep through all bit
// patterns.
std::vector<float> half_edge_cases() {
  std::vector<float> v;
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    const float a = f16_to_f32(static_cast<uint16_t>(h));
    const float mid = h == 0x7bff ? 65520.0f : (a + f16_to_f32(static_cast<uint16_t>(h + 1))) / 2;
    for (float x : {a, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
      v.push_back(x);
      v.push_back(-x);
    }
  }
  for (uint32_t u :
       {0x7f800000u, 0x7fc00000u, 0x7f800001u, 0x7fc02000u, 0x7fffffffu, 0x7fa00000u, 0x00000001u,
        0x007fffffu, 0x33000000u, 0x33000001u, 0x477fefffu, 0x477ff000u, 0x7f7fffffu})
    for (uint32_t s : {0u, 0x80000000u}) v.push_back(from_bits(u | s));
  for (uint64_t u = 0; u < (1ull << 32); u += 4099)
    v.push_back(from_bits(static_cast<uint32_t>(u)));
  return v;
}

TEST_P(KvKernels, ToF16IsBitExact) {
  const std::vector<float> x = half_edge_cases();
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint16_t> want(n), got(n + 1, 0xabcd);
  for (int64_t i = 0; i < n; ++i) want[i] = f32_to_f16(x[i]);
  for (int64_t start : {0, 1, 5}) {  // odd starts and lengths: every tail
    std::fill(got.begin(), got.end(), 0xabcd);
    ops_.to_f16(x.data() + start, got.data() + start, n - start);
    for (int64_t i = start; i < n; ++i)
      ASSERT_EQ(got[i], want[i]) << backend_isa_label(GetParam()) << " x " << x[i] << " (bits 0x"
                                 << std::hex << bits_of(x[i]) << ")";
    ASSERT_EQ(got[n], 0xabcd) << "wrote past the row";
  }
  uint16_t one = 0;
  const float tie = f16_to_f32(0x3c00) + std::ldexp(1.0f, -11);  // 1 + half an ulp: to even, 1
  ops_.to_f16(&tie, &one, 1);
  EXPECT_EQ(one, 0x3c00);
}

// Blocks where f32 → Q8_0 can go wrong: levels exactly half way (d = 1 and other scales), zeros,
// one non-zero value, subnormals, an amax so small that 1/d overflows, infinities and NaNs, and
// blocks of random values over many magnitudes.
std::vector<float> q8_edge_blocks(std::mt19937& rng) {
  std::vector<float> v;
  const auto block = [&](auto value) {
    for (int j = 0; j < kQK; ++j) v.push_back(value(j));
  };
  block([](int j) { return j == 0 ? 127.0f : (j % 2 ? 1 : -1) * (0.5f + static_cast<float>(j)); });
  block([](int j) { return j == 0 ? -127.0f : (j % 2 ? -1 : 1) * (2.5f + 3.0f * j); });
  block([](int j) { return j == 0 ? 254.0f : 1.0f + 2.0f * static_cast<float>(j); });
  block([](int j) { return j == 0 ? 12.7f : 0.05f * static_cast<float>(j - 16); });
  block([](int) { return 0.0f; });
  block([](int j) { return j == 9 ? -3.0f : 0.0f; });
  block([](int j) { return from_bits(static_cast<uint32_t>(j + 1) * 0x1000u); });  // subnormal
  block([](int j) { return j == 3 ? 127 * from_bits(1) : from_bits(1); });         // 1/d overflows
  block([](int j) { return j == 4 ? INFINITY : 1.0f * static_cast<float>(j); });
  block([](int j) { return j == 5 ? -NAN : 1.0f * static_cast<float>(j); });
  block([](int j) { return j == 6 ? 1e38f : 1.0f; });
  block([](int j) { return j == 7 ? 3e6f : -1.0f * static_cast<float>(j); });  // d overflows f16
  std::normal_distribution<float> nd;
  std::uniform_real_distribution<float> mag(-30.0f, 30.0f);
  for (int b = 0; b < 2000; ++b) {
    const float m = std::pow(2.0f, mag(rng));
    block([&](int) { return nd(rng) * m; });
  }
  return v;
}

TEST_P(KvKernels, ToQ8_0IsBitExact) {
  std::mt19937 rng(33);
  const std::vector<float> x = q8_edge_blocks(rng);
  const int64_t nb = static_cast<int64_t>(x.size()) / kQK;
  std::vector<BlockQ8_0> want(nb), got(nb + 1);
  ops::to_q8_0(x.data(), want.data(), nb * kQK);
  std::memset(got.data(), 0x5a, got.size() * sizeof(BlockQ8_0));
  ops_.to_q8_0(x.data(), got.data(), nb * kQK);
  for (int64_t b = 0; b < nb; ++b)
    ASSERT_EQ(std::memcmp(&got[b], &want[b], sizeof(BlockQ8_0)), 0)
        << backend_isa_label(GetParam()) << " block " << b << ": d 0x" << std::hex << got[b].d
        << " want 0x" << want[b].d << std::dec << ", first value " << x[b * kQK];
  const auto* tail = reinterpret_cast<const unsigned char*>(&got[nb]);
  for (size_t i = 0; i < sizeof(BlockQ8_0); ++i) ASSERT_EQ(tail[i], 0x5a) << "wrote past the row";
  // The rounding is the reference's: half away from zero (lround), with d = 1 here.
  EXPECT_EQ(got[0].qs[1], 2);    //  1.5 → 2
  EXPECT_EQ(got[0].qs[2], -3);   // -2.5 → -3
  EXPECT_EQ(got[0].qs[0], 127);  //  127
}

INSTANTIATE_TEST_SUITE_P(AllIsas, KvKernels,
                         ::testing::Values(BackendIsa::Avx2, BackendIsa::Avx512),
                         [](const auto& info) {
                           return std::string(backend_isa_label(info.param));
                         });

// The f16 reference is the f32 reference on the rows rounded to f16 and read back, to the bit:
// the same products summed in the same order.
TEST(KvReference, F16IsF32OnRoundedRows) {
  std::mt19937 rng(34);
  for (int64_t hd : {16, 33, 128}) {
    const Shape s{4, 37, hd};
    const auto rows = f16_rows(make_values(s.n * hd, rng), s.n, hd, rng);
    std::vector<std::vector<float>> f(s.n);
    std::vector<const float*> frows(s.n);
    for (int64_t j = 0; j < s.n; ++j) {
      f[j] = dequantized(rows.rows[j], hd);
      frows[j] = f[j].data();
    }
    const std::vector<float> q = make_values(s.g * hd, rng), p = make_values(s.g * s.stride(), rng);
    std::vector<float> s16(s.g * s.stride()), s32(s16.size()), o16(s.g * hd), o32(o16.size());
    const auto keys = rows.pointers();
    ops::scores_group_f16(q.data(), s.g, keys.data(), s.n, hd, 0.125f, s16.data(), s.stride());
    ops::scores_group(q.data(), s.g, frows.data(), s.n, hd, 0.125f, s32.data(), s.stride());
    ops::wsum_group_f16(p.data(), s.stride(), s.g, keys.data(), s.n, hd, o16.data());
    ops::wsum_group(p.data(), s.stride(), s.g, frows.data(), s.n, hd, o32.data());
    EXPECT_EQ(s16, s32) << "hd " << hd;
    EXPECT_EQ(o16, o32) << "hd " << hd;
  }
  // A worked row: 1/3 is stored as the half 0x3555 = 0.333251953125.
  const uint16_t third = f32_to_f16(1.0f / 3.0f);
  EXPECT_EQ(third, 0x3555);
  const uint16_t* row = &third;
  const float q = 3.0f;
  float score = 0;
  ops::scores_group_f16(&q, 1, &row, 1, 1, 1.0f, &score, 1);
  EXPECT_EQ(score, 3.0f * 0.333251953125f);
}

// The same for Q8_0: the f32 reference on the rows dequantize_row gives.
TEST(KvReference, Q8_0IsF32OnDequantizedRows) {
  std::mt19937 rng(35);
  for (int64_t hd : {32, 128}) {
    const Shape s{5, 41, hd};
    const auto rows = q8_rows(make_values(s.n * hd, rng), s.n, hd, rng);
    std::vector<std::vector<float>> f(s.n);
    std::vector<const float*> frows(s.n);
    for (int64_t j = 0; j < s.n; ++j) {
      f[j] = dequantized(rows.rows[j], hd);
      frows[j] = f[j].data();
    }
    const std::vector<float> q = make_values(s.g * hd, rng), p = make_values(s.g * s.stride(), rng);
    std::vector<float> s8(s.g * s.stride()), s32(s8.size()), o8(s.g * hd), o32(o8.size());
    const auto keys = rows.pointers();
    ops::scores_group_q8_0(q.data(), s.g, keys.data(), s.n, hd, 0.125f, s8.data(), s.stride());
    ops::scores_group(q.data(), s.g, frows.data(), s.n, hd, 0.125f, s32.data(), s.stride());
    ops::wsum_group_q8_0(p.data(), s.stride(), s.g, keys.data(), s.n, hd, o8.data());
    ops::wsum_group(p.data(), s.stride(), s.g, frows.data(), s.n, hd, o32.data());
    EXPECT_EQ(s8, s32) << "hd " << hd;
    EXPECT_EQ(o8, o32) << "hd " << hd;
  }
  // A worked block: amax 2.54 gives d = 0.02 (stored as the half nearest, 0.0200042724609375)
  // and 1.0 the level round(1.0 / 0.02) = 50, read back as 50·d.
  std::vector<float> x(kQK, 0.0f);
  x[0] = 2.54f;
  x[1] = 1.0f;
  BlockQ8_0 b;
  ops::to_q8_0(x.data(), &b, kQK);
  EXPECT_EQ(b.d, f32_to_f16(2.54f / 127.0f));
  EXPECT_EQ(f16_to_f32(b.d), 0.0200042724609375f);
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 50);
  const BlockQ8_0* row = &b;
  const float q[kQK] = {0.0f, 1.0f};
  float score = 0;
  ops::scores_group_q8_0(q, 1, &row, 1, kQK, 1.0f, &score, 1);
  EXPECT_EQ(score, 50.0f * 0.0200042724609375f);
}

}  // namespace
}  // namespace smoe
