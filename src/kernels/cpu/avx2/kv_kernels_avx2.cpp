// AVX2 + FMA + F16C attention over key/value rows stored in f16 or Q8_0, and the conversions of a
// row into those types (this file is compiled with those flags only). Shaped like the f32
// kernels of float_kernels_avx2.cpp: each key (value) load is converted once and shared by four
// query heads.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/fp16.h"
#include "kernels/attention_group.h"
#include "kernels/cpu/avx2/attention_lanes.h"
#include "kernels/cpu/float_kernels.h"
#include "kernels/cpu/prefetch_row.h"
#include "kernels/cpu/simd_sum.h"
#include "kernels/ops.h"

namespace smoe::cpu {
namespace {

using quant::BlockQ8_0;
using quant::kQK;

// Rows of value sums that wsum_heads runs through every column before the next rows: they stay
// in L1 across its column passes (64 f16 rows of 128 values: 16 KiB).
constexpr int64_t kWsumRows = 64;
// Rows ahead that scores_heads prefetches.
constexpr int64_t kAhead = 16;

// How the kernels read a stored row: 8 values from element d on as floats (load8), given the
// scale of the block that holds them (scale, the same for kStep values from a multiple of kStep:
// f16 rows have none); for f16 rows of any length, the last left < 8 values zero-padded
// (load_tail). bytes: the size of a row of hd values.
struct F16Rows {
  using Row = uint16_t;
  static constexpr int64_t kStep = 8;
  static int64_t bytes(int64_t hd) { return hd * 2; }
  static __m256 scale(const uint16_t*, int64_t) { return _mm256_setzero_ps(); }
  static __m256 load8(const uint16_t* r, int64_t d, __m256) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + d)));
  }
  static __m256 load_tail(const uint16_t* r, int64_t d, int64_t left) {
    uint16_t b[8] = {};
    std::memcpy(b, r + d, static_cast<size_t>(left) * 2);
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
  }
};

struct Q8Rows {  // hd a multiple of 32: no tails
  using Row = BlockQ8_0;
  static constexpr int64_t kStep = kQK;
  static int64_t bytes(int64_t hd) { return hd / kQK * static_cast<int64_t>(sizeof(BlockQ8_0)); }
  static __m256 scale(const BlockQ8_0* r, int64_t d) {
    return _mm256_set1_ps(_cvtsh_ss(r[d / kQK].d));
  }
  static __m256 load8(const BlockQ8_0* r, int64_t d, __m256 s) {  // the levels times s
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r[d / kQK].qs + d % kQK));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), s);
  }
  static __m256 load_tail(const BlockQ8_0*, int64_t, int64_t) { return _mm256_setzero_ps(); }
};

// 16 values of a row from element d on (a multiple of 16) as two vectors, the last left < 16
// zero-padded.
template <typename Rows>
void load16(const typename Rows::Row* r, int64_t d, int64_t left, __m256* v) {
  if (left >= 16) {
    const __m256 s = Rows::scale(r, d);
    v[0] = Rows::load8(r, d, s);
    v[1] = Rows::load8(r, d + 8, s);
  } else {
    v[0] = left >= 8 ? Rows::load8(r, d, Rows::scale(r, d)) : Rows::load_tail(r, d, left);
    v[1] = left > 8 ? Rows::load_tail(r, d + 8, left - 8) : _mm256_setzero_ps();
  }
}

// kR keys rows[0 .. kR) against kG heads (1 or 4): each 8 values of a key are converted once for
// all heads, each 8 query values loaded once for all kR keys.
template <int kG, int kR, typename Rows>
void score_keys(const float* q, const typename Rows::Row* const* rows, int64_t hd, float scale,
                float* scores, int64_t s_stride) {
  __m256 acc[kR][kG];
  for (int r = 0; r < kR; ++r)
    for (int h = 0; h < kG; ++h) acc[r][h] = _mm256_setzero_ps();
  int64_t d = 0;
  for (; d + Rows::kStep <= hd; d += Rows::kStep) {
    __m256 s[kR];
    for (int r = 0; r < kR; ++r) s[r] = Rows::scale(rows[r], d);
    for (int64_t e = d; e < d + Rows::kStep; e += 8) {
      __m256 k[kR];
      for (int r = 0; r < kR; ++r) k[r] = Rows::load8(rows[r], e, s[r]);
      for (int h = 0; h < kG; ++h) {
        const __m256 qh = _mm256_loadu_ps(q + h * hd + e);
        for (int r = 0; r < kR; ++r) acc[r][h] = _mm256_fmadd_ps(qh, k[r], acc[r][h]);
      }
    }
  }
  if (d < hd) {
    const __m256i m = tail_mask(hd - d);
    __m256 k[kR];
    for (int r = 0; r < kR; ++r) k[r] = Rows::load_tail(rows[r], d, hd - d);
    for (int h = 0; h < kG; ++h) {
      const __m256 qh = _mm256_maskload_ps(q + h * hd + d, m);
      for (int r = 0; r < kR; ++r) acc[r][h] = _mm256_fmadd_ps(qh, k[r], acc[r][h]);
    }
  }
  for (int r = 0; r < kR; ++r) {
    if constexpr (kG == 4)
      store_sums4(acc[r], scale, scores + r, s_stride);
    else
      scores[r] = scale * hsum(acc[r][0]);
  }
}

// kG heads (1 or 4) against every key, kR keys at a time (independent sums to overlap), the
// keys kAhead on prefetched.
template <int kG, typename Rows>
void scores_heads(const float* q, const typename Rows::Row* const* keys, int64_t n, int64_t hd,
                  float scale, float* scores, int64_t s_stride) {
  constexpr int kR = kG == 4 ? 2 : 4;
  const int64_t bytes = Rows::bytes(hd);
  int64_t j = 0;
  for (; j + kR <= n; j += kR) {
    for (int r = 0; r < kR; ++r)
      if (j + r + kAhead < n) prefetch_row(keys[j + r + kAhead], bytes);
    score_keys<kG, kR, Rows>(q, keys + j, hd, scale, scores + j, s_stride);
  }
  for (; j < n; ++j) score_keys<kG, 1, Rows>(q, keys + j, hd, scale, scores + j, s_stride);
}

// kG heads (1 or 4) × 16 output values held in registers over rows [j0, j1), added to out; the
// column passes prefetch the next rows [j1, 2·j1 − j0) of the n between them.
template <int kG, typename Rows>
void wsum_rows(const float* p, int64_t p_stride, const typename Rows::Row* const* vals, int64_t j0,
               int64_t j1, int64_t n, int64_t hd, float* out) {
  const int64_t bytes = Rows::bytes(hd), ahead = j1 - j0, passes = (hd + 15) / 16;
  for (int64_t d0 = 0; d0 < hd; d0 += 16) {
    __m256i m[2];
    for (int c = 0; c < 2; ++c) m[c] = tail_mask(hd - d0 - 8 * c);
    __m256 acc[kG][2];
    for (int h = 0; h < kG; ++h)
      for (int c = 0; c < 2; ++c) acc[h][c] = _mm256_maskload_ps(out + h * hd + d0 + 8 * c, m[c]);
    for (int64_t j = j0; j < j1; ++j) {
      if (j % passes == d0 / 16 && j + ahead < n) prefetch_row(vals[j + ahead], bytes);
      __m256 v[2];
      load16<Rows>(vals[j], d0, hd - d0, v);
      for (int h = 0; h < kG; ++h) {
        const __m256 w = _mm256_broadcast_ss(p + h * p_stride + j);
        for (int c = 0; c < 2; ++c) acc[h][c] = _mm256_fmadd_ps(w, v[c], acc[h][c]);
      }
    }
    for (int h = 0; h < kG; ++h)
      for (int c = 0; c < 2; ++c) _mm256_maskstore_ps(out + h * hd + d0 + 8 * c, m[c], acc[h][c]);
  }
}

// kG heads (1 or 4): the rows kWsumRows at a time, each through every column.
template <int kG, typename Rows>
void wsum_heads(const float* p, int64_t p_stride, const typename Rows::Row* const* vals, int64_t n,
                int64_t hd, float* out) {
  std::fill_n(out, kG * hd, 0.0f);
  for (int64_t j0 = 0; j0 < n; j0 += kWsumRows)
    wsum_rows<kG, Rows>(p, p_stride, vals, j0, std::min(n, j0 + kWsumRows), n, hd, out);
}

// Eight floats as halves exactly as f32_to_f16 rounds them: the instruction rounds to nearest
// even and overflows to inf as it does, but keeps the top of a NaN's payload where f32_to_f16
// gives the quiet NaN 0x7e00 of the sign, so NaN lanes become that NaN first.
inline __m128i halves(__m256 v) {
  const __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
  const __m256 qnan = _mm256_or_ps(sign, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fc00000)));
  v = _mm256_blendv_ps(v, qnan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
}

void to_f16(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), halves(_mm256_loadu_ps(x + i)));
  ops::to_f16(x + i, y + i, n - i);
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// Round half away from zero (lround), for |v| < 2^23: the truncation plus ±1 where the dropped
// fraction, which the subtraction gives exactly, is at least one half.
inline __m256i round_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
  const __m256 frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t));
  const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 step = _mm256_and_ps(up, _mm256_or_ps(sign, _mm256_set1_ps(1.0f)));
  return _mm256_cvttps_epi32(_mm256_add_ps(t, step));
}

// The reference quantizer's arithmetic (amax, d = amax/127, id = 1/d, lround(x·id)) on vectors.
// A block where some x·id is not below 127.5 in magnitude (only with an inf or NaN in it, or an
// amax so small that 1/d overflows) goes through the reference itself, so that every input
// gives its bits.
void to_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    __m256 v[4], mx = _mm256_setzero_ps();
    for (int c = 0; c < 4; ++c) {  // max(|x|, mx) keeps mx for a NaN x, as std::max(amax, NaN)
      v[c] = _mm256_loadu_ps(x + 8 * c);
      mx = _mm256_max_ps(_mm256_and_ps(v[c], abs_mask), mx);
    }
    const float d = hmax(mx) / 127.0f, id = d ? 1.0f / d : 0.0f;
    __m256 in_range = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    for (int c = 0; c < 4; ++c) {
      v[c] = _mm256_mul_ps(v[c], _mm256_set1_ps(id));
      in_range = _mm256_and_ps(in_range, _mm256_cmp_ps(_mm256_and_ps(v[c], abs_mask),
                                                       _mm256_set1_ps(127.5f), _CMP_LT_OQ));
    }
    if (_mm256_movemask_ps(in_range) != 0xff) {
      ops::to_q8_0(x, y + i, kQK);
      continue;
    }
    y[i].d = f32_to_f16(d);
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(round_away(v[0]), round_away(v[1])),
                                         _mm256_packs_epi32(round_away(v[2]), round_away(v[3])));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs),
                        _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
}

}  // namespace

void set_kv_kernels_avx2(FloatKernels& k) {
  k.scores_group_f16 =
      kernels::scores_group_by_four<scores_heads<4, F16Rows>, scores_heads<1, F16Rows>>;
  k.wsum_group_f16 = kernels::wsum_group_by_four<wsum_heads<4, F16Rows>, wsum_heads<1, F16Rows>>;
  k.scores_group_q8_0 =
      kernels::scores_group_by_four<scores_heads<4, Q8Rows>, scores_heads<1, Q8Rows>>;
  k.wsum_group_q8_0 = kernels::wsum_group_by_four<wsum_heads<4, Q8Rows>, wsum_heads<1, Q8Rows>>;
  k.to_f16 = to_f16;
  k.to_q8_0 = to_q8_0;
}

}  // namespace smoe::cpu
