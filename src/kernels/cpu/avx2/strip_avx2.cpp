// AVX2 strip GEMM (see strip.h) for CPUs without VNNI. A ymm register holds four weights of
// each of 8 rows (half of one group of a strip block). vpmaddubsw multiplies these unsigned
// weight bytes with four broadcast activation bytes and sums the pairs into int16 lanes; several
// groups add up in int16 while the weight range leaves no room for overflow, then one vpmaddwd
// widens them to one int32 sum per row. The per-block float scaling then covers 8 rows at once,
// as in the AVX-512 kernel.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/avx2/half_lanes.h"
#include "kernels/cpu/avx2/k4_scales.h"
#include "kernels/cpu/strip.h"
#include "kernels/cpu/strip_decode.h"
#include "kernels/cpu/strip_tiles.h"

namespace smoe::cpu {
namespace {

inline int32_t hsum(__m256i v) {
  const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i t = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1)));
}

inline float hmax(__m256 v) {
  const __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// Bit for bit the scalar quantizer: d = amax/127, q = round-half-even(x·127/amax).
void quantize_act(const float* x, ActQ8* out, int64_t n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
    }
    const float amax = hmax(m);
    const float d = amax / 127.0f, id = d > 0 ? 127.0f / amax : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], vid));
    // Packing works per 128-bit lane; the dword permutation puts the bytes back in order.
    const __m256i p =
        _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[i].qs),
                        _mm256_permutevar8x32_epi32(p, order));
    const int32_t s0 = hsum(_mm256_add_epi32(q[0], q[1]));
    const int32_t s1 = hsum(_mm256_add_epi32(q[2], q[3]));
    set_act_sums(out[i], d, s0, s1);
  }
}

// One storage block of 16 full rows. Lane r of a strip register holds 4 bytes of row r, so the
// bytes come from row loads and a 4 × 4 dword transpose per 128-bit lane.
struct Rows16 {
  const std::byte* base;  // the storage block of row r0
  size_t stride;          // bytes from one row to the next

  __m128i load16(int r, int at) const {
    return _mm_loadu_si128(
        reinterpret_cast<const __m128i*>(base + static_cast<size_t>(r) * stride + at));
  }
  // Bytes at .. at+15 of every row: out[g][k] holds bytes at+4g .. at+4g+3 of rows 8k .. 8k+7.
  void dwords16(int at, __m256i (*out)[2]) const {
    for (int k = 0; k < 2; ++k) {
      __m256i y[4];  // rows 8k+i (low lane) and 8k+i+4 (high lane)
      for (int i = 0; i < 4; ++i)
        y[i] = _mm256_inserti128_si256(_mm256_castsi128_si256(load16(8 * k + i, at)),
                                       load16(8 * k + i + 4, at), 1);
      const __m256i t0 = _mm256_unpacklo_epi32(y[0], y[1]), t1 = _mm256_unpackhi_epi32(y[0], y[1]);
      const __m256i t2 = _mm256_unpacklo_epi32(y[2], y[3]), t3 = _mm256_unpackhi_epi32(y[2], y[3]);
      out[0][k] = _mm256_unpacklo_epi64(t0, t2);
      out[1][k] = _mm256_unpackhi_epi64(t0, t2);
      out[2][k] = _mm256_unpacklo_epi64(t1, t3);
      out[3][k] = _mm256_unpackhi_epi64(t1, t3);
    }
  }
  // The f16 at byte `at` of rows 8k .. 8k+7 as floats.
  __m256 half8(int k, int at) const {
    return halves8(base + static_cast<size_t>(8 * k) * stride + at, stride);
  }
};

// f16 in the low 16 bits of each lane → f32.
inline __m256 half_lo(__m256i v) {
  const __m256i lo = _mm256_and_si256(v, _mm256_set1_epi32(0xFFFF));
  return _mm256_cvtph_ps(
      _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(lo, lo), 0x08)));
}

inline void store_q(StripBlock& o, int g, const __m256i* v) {  // v[k]: rows 8k .. 8k+7
  for (int k = 0; k < 2; ++k) _mm256_store_si256(reinterpret_cast<__m256i*>(o.q[g][8 * k]), v[k]);
}
inline void store_scale(StripBlock& o, int h, int k, __m256 scale, __m256 offset) {
  _mm256_store_ps(o.scale[h] + 8 * k, scale);
  _mm256_store_ps(o.offset[h] + 8 * k, offset);
}
// Types whose weights are d·(q − c) with an f16 d at the start of the block.
inline void store_code_offset_scales(const Rows16& rs, StripBlock& o, float c) {
  for (int k = 0; k < 2; ++k) {
    const __m256 d = rs.half8(k, 0), off = _mm256_mul_ps(d, _mm256_set1_ps(-c));
    for (int h = 0; h < 2; ++h) store_scale(o, h, k, d, off);
  }
}
inline void and_shift(const __m256i* v, int shift, uint8_t mask, __m256i* out) {
  const __m256i m = _mm256_set1_epi8(static_cast<char>(mask));
  for (int k = 0; k < 2; ++k) out[k] = _mm256_and_si256(_mm256_srli_epi16(v[k], shift), m);
}

// Vector decoders of the common types, one storage block of 16 full rows at once; the bytes
// and scales they store equal the scalar repack's. Other types decode row by row.
template <DType T>
struct Vec16 {
  static constexpr bool kHave = false;
};

template <>
struct Vec16<DType::Q4_0> {  // d at 0, qs at 2
  static constexpr bool kHave = true;
  static constexpr int kSub = 1;
  static void run(const Rows16& rs, StripBlock* o) {
    __m256i v[4][2], q[2];
    rs.dwords16(2, v);
    for (int g = 0; g < 4; ++g) {
      and_shift(v[g], 0, 0xF, q);
      store_q(o[0], g, q);
      and_shift(v[g], 4, 0xF, q);
      store_q(o[0], g + 4, q);
    }
    store_code_offset_scales(rs, o[0], 8.0f);
  }
};

template <>
struct Vec16<DType::Q8_0> {  // d at 0, qs at 2; stored as q + 128
  static constexpr bool kHave = true;
  static constexpr int kSub = 1;
  static void run(const Rows16& rs, StripBlock* o) {
    __m256i v[8][2];
    rs.dwords16(2, v);
    rs.dwords16(18, v + 4);
    const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int g = 0; g < 8; ++g) {
      for (int k = 0; k < 2; ++k) v[g][k] = _mm256_xor_si256(v[g][k], bias);
      store_q(o[0], g, v[g]);
    }
    store_code_offset_scales(rs, o[0], 128.0f);
  }
};

template <>
struct Vec16<DType::Q4_K> {  // d, dmin at 0; 12 scale bytes at 4; qs at 16
  static constexpr bool kHave = true;
  static constexpr int kSub = 8;
  static void run(const Rows16& rs, StripBlock* o) {
    for (int j = 0; j < 4; ++j) {  // 32 bytes: sub-block 2j in low nibbles, 2j + 1 in high
      __m256i v[8][2], q[2];
      rs.dwords16(16 + 32 * j, v);
      rs.dwords16(32 + 32 * j, v + 4);
      for (int g = 0; g < 8; ++g) {
        and_shift(v[g], 0, 0xF, q);
        store_q(o[2 * j], g, q);
        and_shift(v[g], 4, 0xF, q);
        store_q(o[2 * j + 1], g, q);
      }
    }
    // Header dwords of every row: d | dmin, then the 12 bytes of packed 6-bit scales and mins.
    __m256i hdr[4][2];
    rs.dwords16(0, hdr);
    for (int k = 0; k < 2; ++k) {
      const __m256i dd = hdr[0][k];
      const __m256 d = half_lo(dd), dmin = half_lo(_mm256_srli_epi32(dd, 16));
      for (int j = 0; j < 8; ++j) {
        const auto [sc, mn] = k4_scale_min8(hdr[1][k], hdr[2][k], hdr[3][k], j);
        const __m256 scale = _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc));
        const __m256 neg_min =
            _mm256_xor_ps(_mm256_mul_ps(dmin, _mm256_cvtepi32_ps(mn)), _mm256_set1_ps(-0.0f));
        for (int h = 0; h < 2; ++h) store_scale(o[j], h, k, scale, neg_min);
      }
    }
  }
};

template <>
struct Vec16<DType::Q6_K> {  // ql at 0, qh at 128, int8 scales at 192, d at 208
  static constexpr bool kHave = true;
  static constexpr int kSub = 8;
  static void run(const Rows16& rs, StripBlock* o) {
    const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(0x30);
    const auto lo_hi = [&](__m256i l, __m256i h) {
      return _mm256_or_si256(_mm256_and_si256(l, m4), _mm256_and_si256(h, m2));
    };
    for (int n = 0; n < 2; ++n) {  // 128 columns: sub-blocks 4n .. 4n+3 of 32
      __m256i l0[8][2], l1[8][2], hi[8][2];
      for (int k = 0; k < 2; ++k) {
        rs.dwords16(64 * n + 16 * k, l0 + 4 * k);
        rs.dwords16(64 * n + 32 + 16 * k, l1 + 4 * k);
        rs.dwords16(128 + 32 * n + 16 * k, hi + 4 * k);
      }
      StripBlock* oo = o + 4 * n;  // high bits 2k, 2k+1 of qh go to bits 4, 5
      for (int g = 0; g < 8; ++g) {
        __m256i q[4][2];
        for (int k = 0; k < 2; ++k) {
          const __m256i a = l0[g][k], b = l1[g][k], h = hi[g][k];
          q[0][k] = lo_hi(a, _mm256_slli_epi16(h, 4));
          q[1][k] = lo_hi(b, _mm256_slli_epi16(h, 2));
          q[2][k] = lo_hi(_mm256_srli_epi16(a, 4), h);
          q[3][k] = lo_hi(_mm256_srli_epi16(b, 4), _mm256_srli_epi16(h, 2));
        }
        for (int i = 0; i < 4; ++i) store_q(oo[i], g, q[i]);
      }
    }
    __m256i sc4[4][2];  // the 16 int8 scales of every row, four to a dword
    rs.dwords16(192, sc4);
    for (int k = 0; k < 2; ++k) {
      const __m256 d = rs.half8(k, 208);
      for (int i = 0; i < 4; ++i)
        for (int e = 0; e < 4; ++e) {
          const int j = 4 * i + e;  // sign-extend byte e
          const __m256i sc = _mm256_srai_epi32(_mm256_slli_epi32(sc4[i][k], 24 - 8 * e), 24);
          const __m256 dl = _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc));
          store_scale(o[j / 2], j % 2, k, dl, _mm256_mul_ps(dl, _mm256_set1_ps(-32.0f)));
        }
    }
  }
};

// Q4_0 interleaved by eight (layout.h): each 32 bytes of a group already hold four columns of
// its eight rows, as a strip register does; only the nibbles are split. Rows past nr are zero.
void repack_rows8(const Matrix& w, int64_t r0, int nr, StripBlock* out) {
  const int64_t nb = w.cols / 32;
  const std::byte* g[2] = {w.row(r0), nr > 8 ? w.row(r0 + 8) : nullptr};
  const __m256i m4 = _mm256_set1_epi8(0xF);
  for (int64_t b = 0; b < nb; ++b) {
    StripBlock& o = out[b];
    for (int k = 0; k < 2; ++k) {
      if (!g[k]) {
        for (int q = 0; q < 8; ++q)
          _mm256_store_si256(reinterpret_cast<__m256i*>(o.q[q][8 * k]), _mm256_setzero_si256());
        for (int h = 0; h < 2; ++h) store_scale(o, h, k, _mm256_setzero_ps(), _mm256_setzero_ps());
        continue;
      }
      const std::byte* quads = g[k] + 128 * b;
      _mm_prefetch(reinterpret_cast<const char*>(quads + 1024), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(quads + 1024 + 64), _MM_HINT_T0);
      for (int q = 0; q < 4; ++q) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(quads + 32 * q));
        _mm256_store_si256(reinterpret_cast<__m256i*>(o.q[q][8 * k]), _mm256_and_si256(v, m4));
        _mm256_store_si256(reinterpret_cast<__m256i*>(o.q[q + 4][8 * k]),
                           _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
      }
      const __m256 d = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(g[k] + 128 * nb + 16 * b)));
      const __m256 off = _mm256_mul_ps(d, _mm256_set1_ps(-8.0f));
      for (int h = 0; h < 2; ++h) store_scale(o, h, k, d, off);
    }
  }
}

template <DType T>
void repack_t(const Matrix& w, int64_t r0, int nr, StripBlock* out) {
  if constexpr (T == DType::Q4_0)
    if (w.layout == MatrixLayout::Rows8) return repack_rows8(w, r0, nr, out);
  if constexpr (Vec16<T>::kHave) {
    if (nr == kStripRows) {  // a matrix's last, partial strip takes the row-by-row path
      const size_t bytes = static_cast<size_t>(dtype_info(T).block_bytes);
      constexpr int kSub = Vec16<T>::kSub;
      for_blocks_reading_ahead(w, r0, nr, bytes, w.cols / (32 * kSub), [&](int64_t sb) {
        Vec16<T>::run(Rows16{w.row(r0) + sb * bytes, w.row_bytes}, out + sb * kSub);
      });
      return;
    }
  }
  repack_by_rows<T>(w, r0, nr, out, [](const uint8_t* const* rows, StripBlock& o) {
    for (int r = 0; r < kStripRows; ++r)
      for (int g = 0; g < 8; ++g) std::memcpy(o.q[g][r], rows[r] + 4 * g, 4);
  });
}

void repack(const Matrix& w, int64_t r0, int nr, StripBlock* out) {
  with_decoder(w.dtype, [&]<DType T>() { repack_t<T>(w, r0, nr, out); });
}

// How a weight type's bytes multiply without overflowing int16. Each vpmaddubsw lane is at most
// 2·qmax·127; kGroups such products (of 4 columns each) add up in int16 before widening:
// q ≤ 15: 8 groups (30480); q ≤ 31: 4 (31496); q ≤ 63: 2 (32004). Q8_0's bytes (q + 128) would
// overflow even one product, so they multiply as signed q: |q| times the activation with q's
// sign, 2·128·127 = 32512, and the −128·d offset is then left out. Other types whose offsets are
// a power-of-two code (Q4_0, Q5_0, Q3_K, Q6_K: strip_code_shift) start their integer sums at the
// activations' −Σq·2^k instead of adding offsets × sums in float (`shift` ≥ 0).
struct Form {
  int groups;
  bool split;
  bool signed_q;
  int shift;
};

constexpr Form form_of(DType t) {
  const int k = strip_code_shift(t);
  switch (t) {
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q4_K:
      return {8, false, false, k};
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q5_K:
      return {4, false, false, k};
    case DType::Q2_K:
    case DType::Q3_K:
      return {4, true, false, k};
    case DType::Q6_K:
      return {2, true, false, k};
    default:  // Q8_0
      return {1, false, true, -1};
  }
}

// Keeps v in a register at this point: without it the compiler regroups the integer sums of a
// whole block into a tree of additions whose operands no longer fit the 16 registers (and
// spills them).
inline void in_register(__m256i& v) {
  asm("" : "+x"(v));
}

// The int16 products of one group of 4 columns (kH row octets of weights w) with kT tokens,
// added into p: each token's four activation bytes are broadcast once for all the rows.
template <int kT, int kH, bool kSigned>
inline void group_products(const __m256i* w, const ActQ8* a, int64_t a_stride, int col,
                           __m256i (*p)[kT]) {
  __m256i aw[kH], ws[kH];
  for (int k = 0; k < kH; ++k) {
    aw[k] = ws[k] = w[k];
    if constexpr (kSigned) {
      ws[k] = _mm256_xor_si256(w[k], _mm256_set1_epi8(static_cast<char>(0x80)));
      aw[k] = _mm256_abs_epi8(ws[k]);
    }
  }
  for (int t = 0; t < kT; ++t) {
    int32_t x4;
    std::memcpy(&x4, a[t * a_stride].qs + col, 4);
    const __m256i x = _mm256_set1_epi32(x4);
    for (int k = 0; k < kH; ++k) {
      const __m256i xs = kSigned ? _mm256_sign_epi8(x, ws[k]) : x;
      p[k][t] = _mm256_add_epi16(p[k][t], _mm256_maddubs_epi16(aw[k], xs));
      in_register(p[k][t]);
    }
  }
}

// acc += the integer sums of half h of one block (the whole block for types whose scales cover
// 32 columns) scaled by weight × activation scales, plus the offsets times the activation sums
// (none for signed Q8_0), for kT tokens × 8·kH rows.
template <int kT, int kH, Form F>
inline void add_scaled(const StripBlock& sb, const ActQ8* ab, int64_t a_stride, int h,
                       const __m256i (*isum)[kT], __m256 (*acc)[kT]) {
  constexpr bool kOffsets = F.shift < 0 && !F.signed_q;  // neither folded into the sums nor none
  for (int t = 0; t < kT; ++t) {
    const ActQ8& x = ab[t * a_stride];
    const __m256 d = _mm256_set1_ps(x.d);
    for (int k = 0; k < kH; ++k) {
      const int r = 8 * k;
      const __m256 sd = _mm256_mul_ps(_mm256_load_ps(sb.scale[h] + r), d);
      __m256 v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[k][t]), sd, acc[k][t]);
      if constexpr (kOffsets && F.split)
        v = _mm256_fmadd_ps(_mm256_load_ps(sb.offset[h] + r), _mm256_set1_ps(x.s[h]), v);
      else if constexpr (kOffsets)
        v = _mm256_fmadd_ps(_mm256_load_ps(sb.offset[0] + r), _mm256_set1_ps(x.sum), v);
      acc[k][t] = v;
    }
  }
}

// Where an integer sum of a block (or half) starts: at 0, or at the code offset's share.
template <int kShift>
inline __m256i sum_start(int32_t neg_qsum) {
  if constexpr (kShift < 0)
    return _mm256_setzero_si256();
  else
    return _mm256_slli_epi32(_mm256_set1_epi32(neg_qsum), kShift);
}

// The `left` (of 8) rows of y a row octet holds: the lanes below `left`.
inline __m256i rows_mask(int left) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// kT tokens × the first 8·kH rows of a strip over all nb blocks; nr of them are stored. Each
// half of a split type's block is scaled as soon as its groups are summed, so that only one set
// of integer sums is live. With `accumulate` the sums continue those already in y (the previous
// columns' share), in the same order of additions as one pass over all the blocks.
template <int kT, int kH, Form F>
void tile_rows(const StripBlock* s, int64_t nb, const ActQ8* a, int64_t a_stride, float* y,
               int64_t ldy, int nr, const LineRange& pf, bool accumulate) {
  const __m256i ones = _mm256_set1_epi16(1);
  constexpr int kGroupsPerScale = F.split ? 4 : 8;
  __m256 acc[kH][kT];
  for (int k = 0; k < kH; ++k) {
    const int left = nr - 8 * k;
    const __m256i mask = rows_mask(left);
    for (int t = 0; t < kT; ++t) {
      const float* in = y + t * ldy + 8 * k;
      acc[k][t] = !accumulate || left <= 0 ? _mm256_setzero_ps()
                  : left >= 8              ? _mm256_loadu_ps(in)
                                           : _mm256_maskload_ps(in, mask);
    }
  }
  for (int64_t b = 0; b < nb; ++b) {
    pf.issue(b, nb);
    const StripBlock& sb = s[b];
    __m256i isum[kH][kT], p[kH][kT];
    // Unrolled, so that the sums stay in registers.
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      if (g % kGroupsPerScale == 0)
        for (int t = 0; t < kT; ++t) {
          const ActQ8& x = a[b + t * a_stride];
          const __m256i start = sum_start<F.shift>(F.split ? x.ns[g / 4] : x.nsum);
          for (int k = 0; k < kH; ++k) {
            isum[k][t] = start;
            p[k][t] = _mm256_setzero_si256();
          }
        }
      __m256i w[kH];
      for (int k = 0; k < kH; ++k)
        w[k] = _mm256_load_si256(reinterpret_cast<const __m256i*>(sb.q[g][8 * k]));
      group_products<kT, kH, F.signed_q>(w, a + b, a_stride, 4 * g, p);
      if ((g + 1) % F.groups == 0) {  // widen to int32 per row
        for (int k = 0; k < kH; ++k)
          for (int t = 0; t < kT; ++t) {
            isum[k][t] = _mm256_add_epi32(isum[k][t], _mm256_madd_epi16(p[k][t], ones));
            in_register(isum[k][t]);
            p[k][t] = _mm256_setzero_si256();
          }
      }
      if ((g + 1) % kGroupsPerScale == 0)
        add_scaled<kT, kH, F>(sb, a + b, a_stride, F.split ? g / 4 : 0, isum, acc);
    }
  }
  for (int k = 0; k < kH; ++k) {
    const int left = nr - 8 * k;
    const __m256i mask = rows_mask(left);
    for (int t = 0; t < kT; ++t) {
      float* out = y + t * ldy + 8 * k;
      if (left >= 8)
        _mm256_storeu_ps(out, acc[k][t]);
      else if (left > 0)
        _mm256_maskstore_ps(out, mask, acc[k][t]);
    }
  }
}

// kT tokens × the (up to 16) rows of one strip: both row octets in one pass where they exist.
template <int kT, Form F>
void tile(const StripBlock* s, int64_t nb, const ActQ8* a, int64_t a_stride, float* y, int64_t ldy,
          int nr, const LineRange& pf, bool accumulate) {
  if (nr > 8)
    tile_rows<kT, 2, F>(s, nb, a, a_stride, y, ldy, nr, pf, accumulate);
  else
    tile_rows<kT, 1, F>(s, nb, a, a_stride, y, ldy, nr, pf, accumulate);
}

// Tokens per tile: four share each load of the weights. Their accumulators then live on the stack,
// touched once per block, which costs less than reading the strip twice as often (+15% on a
// 4096 × 4096 Q4_0, Q4_K or Q6_K matrix × 128 tokens).
inline constexpr int kMaxTile = 4;
// Blocks of a strip multiplied with every token before the next ones (4096 columns, 96 KiB of
// strip): a tile re-reads its strip for every few tokens, and a long strip (ffn_down's 14336
// columns, 336 KiB) would no longer stay in the core's L2 with the activations streaming past.
inline constexpr int64_t kChunk = 128;
using Tiles = TileTable<kMaxTile>;

template <Form F, size_t... I>
constexpr Tiles tile_table(std::index_sequence<I...>) {
  return {&tile<static_cast<int>(I) + 1, F>...};
}

template <DType T>
constexpr Tiles kTiles = tile_table<form_of(T)>(std::make_index_sequence<kMaxTile>());

const Tiles& tiles_for(DType t) {
  const Tiles* tiles = &kTiles<DType::Q8_0>;
  with_decoder(t, [&]<DType T>() { tiles = &kTiles<T>; });
  return *tiles;
}

// Chunk by chunk of columns, the two strips one after the other; the last strip of each chunk
// prefetches its share of the next call's rows.
void gemm(const StripBlock* s, int64_t nb, DType type, const ActQ8* a, int64_t a_stride, int64_t n,
          float* y, int64_t ldy, int nr, const StripPrefetch* pf) {
  const Tiles& tiles = tiles_for(type);
  for_column_chunks(nb, kChunk, pf,
                    [&](int64_t c0, int64_t cn, const StripPrefetch* mine, bool acc) {
                      run_strips(tiles, s + c0, nb, cn, a + c0, a_stride, n, y, ldy, nr, mine, acc);
                    });
}

}  // namespace

const StripKernels& strip_kernels_avx2() {
  static const StripKernels k{"avx2", quantize_act, repack, gemm};
  return k;
}

}  // namespace smoe::cpu
