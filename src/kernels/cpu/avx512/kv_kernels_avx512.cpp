// AVX-512 (F, BW, VL) attention over key/value rows stored in f16 or Q8_0, and the conversions of
// a row into those types (this file is compiled with those flags only). Shaped like the f32
// kernels of float_kernels_avx512.cpp: each key (value) load is converted once and shared by
// four query heads.
#include <immintrin.h>

#include <algorithm>

#include "core/fp16.h"
#include "kernels/attention_group.h"
#include "kernels/cpu/avx512/attention_lanes.h"
#include "kernels/cpu/float_kernels.h"
#include "kernels/cpu/prefetch_row.h"
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

// How the kernels read a stored row: 16 values from element d on as floats, the lanes of mask m
// only (load16: f16 rows may end anywhere), given the scale of the block that holds them (scale,
// the same for kStep values from a multiple of kStep: f16 rows have none). bytes: the size of a
// row of hd values.
struct F16Rows {
  using Row = uint16_t;
  static constexpr int64_t kStep = 16;
  static int64_t bytes(int64_t hd) { return hd * 2; }
  static __m512 scale(const uint16_t*, int64_t) { return _mm512_setzero_ps(); }
  static __m512 load16(const uint16_t* r, int64_t d, __m512, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, r + d));
  }
};

struct Q8Rows {  // hd a multiple of 32: whole blocks, masks all ones
  using Row = BlockQ8_0;
  static constexpr int64_t kStep = kQK;
  static int64_t bytes(int64_t hd) { return hd / kQK * static_cast<int64_t>(sizeof(BlockQ8_0)); }
  static __m512 scale(const BlockQ8_0* r, int64_t d) {
    return _mm512_set1_ps(_cvtsh_ss(r[d / kQK].d));
  }
  static __m512 load16(const BlockQ8_0* r, int64_t d, __m512 s, __mmask16) {  // levels times s
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r[d / kQK].qs + d % kQK));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), s);
  }
};

// kR keys rows[0 .. kR) against kG heads (1 or 4): each 16 values of a key are converted once for
// all heads, each 16 query values loaded once for all kR keys.
template <int kG, int kR, typename Rows>
void score_keys(const float* q, const typename Rows::Row* const* rows, int64_t hd, float scale,
                float* scores, int64_t s_stride) {
  __m512 acc[kR][4];
  for (int r = 0; r < kR; ++r)
    for (int h = 0; h < kG; ++h) acc[r][h] = _mm512_setzero_ps();
  for (int64_t d = 0; d < hd; d += Rows::kStep) {
    __m512 s[kR];
    for (int r = 0; r < kR; ++r) s[r] = Rows::scale(rows[r], d);
    for (int64_t e = d; e < d + Rows::kStep; e += 16) {
      const __mmask16 m = tail_mask(hd - e);  // all ones but at the end of an f16 row
      __m512 k[kR];
      for (int r = 0; r < kR; ++r) k[r] = Rows::load16(rows[r], e, s[r], m);
      for (int h = 0; h < kG; ++h) {
        const __m512 qh = _mm512_maskz_loadu_ps(m, q + h * hd + e);
        for (int r = 0; r < kR; ++r) acc[r][h] = _mm512_fmadd_ps(qh, k[r], acc[r][h]);
      }
    }
  }
  for (int r = 0; r < kR; ++r) {
    if constexpr (kG == 4) {
      alignas(16) float t[4];
      _mm_store_ps(t, _mm_mul_ps(reduce4(acc[r]), _mm_set1_ps(scale)));
      for (int h = 0; h < 4; ++h) scores[h * s_stride + r] = t[h];
    } else {
      scores[r] = scale * _mm512_reduce_add_ps(acc[r][0]);
    }
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

// kG heads (1 or 4) × 64 output values held in registers over rows [j0, j1), added to out; the
// column passes prefetch the next rows [j1, 2·j1 − j0) of the n between them.
template <int kG, typename Rows>
void wsum_rows(const float* p, int64_t p_stride, const typename Rows::Row* const* vals, int64_t j0,
               int64_t j1, int64_t n, int64_t hd, float* out) {
  const int64_t bytes = Rows::bytes(hd), ahead = j1 - j0, passes = (hd + 63) / 64;
  for (int64_t d0 = 0; d0 < hd; d0 += 64) {
    const int nc = static_cast<int>(std::min<int64_t>(4, (hd - d0 + 15) / 16));
    __mmask16 m[4];
    for (int c = 0; c < 4; ++c) m[c] = c < nc ? tail_mask(hd - d0 - 16 * c) : 0;
    __m512 acc[kG][4];
    for (int h = 0; h < kG; ++h)
      for (int c = 0; c < 4; ++c)
        acc[h][c] = _mm512_maskz_loadu_ps(m[c], out + h * hd + d0 + 16 * c);
    for (int64_t j = j0; j < j1; ++j) {
      if (j % passes == d0 / 64 && j + ahead < n) prefetch_row(vals[j + ahead], bytes);
      __m512 v[4];
      for (int c = 0; c < 4; ++c) {
        const int64_t d = d0 + 16 * c;
        v[c] =
            c < nc ? Rows::load16(vals[j], d, Rows::scale(vals[j], d), m[c]) : _mm512_setzero_ps();
      }
      for (int h = 0; h < kG; ++h) {
        const __m512 w = _mm512_set1_ps(p[h * p_stride + j]);
        for (int c = 0; c < 4; ++c) acc[h][c] = _mm512_fmadd_ps(w, v[c], acc[h][c]);
      }
    }
    for (int h = 0; h < kG; ++h)
      for (int c = 0; c < 4; ++c)
        _mm512_mask_storeu_ps(out + h * hd + d0 + 16 * c, m[c], acc[h][c]);
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

// Floats as halves exactly as f32_to_f16 rounds them: the instruction rounds to nearest even and
// overflows to inf as it does, but keeps the top of a NaN's payload where f32_to_f16 gives the
// quiet NaN 0x7e00 of the sign, so NaN lanes become that NaN first.
inline __m256i halves(__m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i qnan = _mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(INT32_MIN)),
                                       _mm512_set1_epi32(0x7fc00000));
  v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_castsi512_ps(qnan));
  return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
}

void to_f16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm256_mask_storeu_epi16(y + i, m, halves(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

// Round half away from zero (lround), for |v| < 2^23: the truncation plus ±1 where the dropped
// fraction, which the subtraction gives exactly, is at least one half.
inline __m512i round_away(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __mmask16 up =
      _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512i one = _mm512_castps_si512(_mm512_set1_ps(1.0f));
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN));
  const __m512 step = _mm512_castsi512_ps(_mm512_maskz_or_epi32(up, sign, one));
  return _mm512_cvttps_epi32(_mm512_add_ps(t, step));
}

// The reference quantizer's arithmetic (amax, d = amax/127, id = 1/d, lround(x·id)) on vectors.
// A block where some x·id is not below 127.5 in magnitude (only with an inf or NaN in it, or an
// amax so small that 1/d overflows) goes through the reference itself, so that every input
// gives its bits.
void to_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    __m512 v[2];
    __m512 mx = _mm512_setzero_ps();
    for (int c = 0; c < 2; ++c) {  // max(|x|, mx) keeps mx for a NaN x, as std::max(amax, NaN)
      v[c] = _mm512_loadu_ps(x + 16 * c);
      mx = _mm512_max_ps(_mm512_abs_ps(v[c]), mx);
    }
    const float d = _mm512_reduce_max_ps(mx) / 127.0f, id = d ? 1.0f / d : 0.0f;
    __mmask16 in_range = 0xffff;
    for (int c = 0; c < 2; ++c) {
      v[c] = _mm512_mul_ps(v[c], _mm512_set1_ps(id));
      in_range &= _mm512_cmp_ps_mask(_mm512_abs_ps(v[c]), _mm512_set1_ps(127.5f), _CMP_LT_OQ);
    }
    if (in_range != 0xffff) {
      ops::to_q8_0(x, y + i, kQK);
      continue;
    }
    y[i].d = f32_to_f16(d);
    for (int c = 0; c < 2; ++c)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs + 16 * c),
                       _mm512_cvtsepi32_epi8(round_away(v[c])));
  }
}

}  // namespace

void set_kv_kernels_avx512(FloatKernels& k) {
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
