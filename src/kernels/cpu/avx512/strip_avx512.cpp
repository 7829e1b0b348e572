// AVX-512 VNNI strip GEMM (see strip.h). One zmm register of a strip block holds four weights
// of each of 16 rows; vpdpbusd with four broadcast activation bytes adds them into 16 per-row
// int32 sums. Each block then costs one scale multiply and one or two fused multiply-adds per
// token for all 16 rows. Tiles of up to 8 tokens share every weight load.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "kernels/cpu/avx2/half_lanes.h"
#include "kernels/cpu/strip.h"
#include "kernels/cpu/strip_decode.h"
#include "kernels/cpu/strip_tiles.h"

namespace smoe::cpu {
namespace {

void quantize_act(const float* x, ActQ8* out, int64_t n) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  for (int64_t i = 0; i < n / 32; ++i, x += 32) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax =
        _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
    const float d = amax / 127.0f, id = d > 0 ? 127.0f / amax : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid));  // round half to even
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[i].qs), _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out[i].qs + 16), _mm512_cvtsepi32_epi8(q1));
    const int32_t s0 = _mm512_reduce_add_epi32(q0), s1 = _mm512_reduce_add_epi32(q1);
    set_act_sums(out[i], d, s0, s1);
  }
}

// Permutation indices of the 16×8 dword transpose (rows of decoded bytes → groups of 4 columns
// by row), in three rounds of two-source permutes; see transpose_16x8.
struct TransposeIdx {
  __m512i s1[2], s2[2], s3[2];
};

TransposeIdx make_transpose_idx() {
  alignas(64) int32_t v[6][16];
  for (int e = 0; e < 16; ++e) {
    for (int h = 0; h < 2; ++h) {  // round 1: 4 rows × 4 columns (4h ..) from two row pairs
      const int lr = e / 4;
      v[h][e] = (lr >= 2 ? 16 : 0) + (lr % 2) * 8 + 4 * h + e % 4;
    }
    for (int q = 0; q < 2; ++q) {  // round 2: 8 rows × 2 columns (2q ..) from two 4-row sets
      const int lr = e / 2;
      v[2 + q][e] = (lr >= 4 ? 16 : 0) + (lr % 4) * 4 + 2 * q + e % 2;
    }
    for (int c = 0; c < 2; ++c)  // round 3: 16 rows × 1 column from two 8-row sets
      v[4 + c][e] = (e >= 8 ? 16 : 0) + (e % 8) * 2 + c;
  }
  TransposeIdx t;
  for (int i = 0; i < 2; ++i) {
    t.s1[i] = _mm512_load_si512(v[i]);
    t.s2[i] = _mm512_load_si512(v[2 + i]);
    t.s3[i] = _mm512_load_si512(v[4 + i]);
  }
  return t;
}

// rows[r] = the 32 decoded bytes of row r; out.q[g][r] = bytes 4g .. 4g+3 of row r.
void transpose_16x8(const TransposeIdx& ix, const __m256i* rows, StripBlock& out) {
  __m512i in[8], a[8], b[8];
  for (int k = 0; k < 8; ++k)
    in[k] = _mm512_inserti64x4(_mm512_castsi256_si512(rows[2 * k]), rows[2 * k + 1], 1);
  for (int m = 0; m < 4; ++m)  // a[2m + h]: rows 4m .. 4m+3, columns 4h .. 4h+3
    for (int h = 0; h < 2; ++h)
      a[2 * m + h] = _mm512_permutex2var_epi32(in[2 * m], ix.s1[h], in[2 * m + 1]);
  for (int p = 0; p < 2; ++p)  // b[4p + 2h + q]: rows 8p .. 8p+7, columns 4h + 2q, +1
    for (int h = 0; h < 2; ++h)
      for (int q = 0; q < 2; ++q)
        b[4 * p + 2 * h + q] = _mm512_permutex2var_epi32(a[4 * p + h], ix.s2[q], a[4 * p + 2 + h]);
  for (int hq = 0; hq < 4; ++hq)  // column 2·hq + c of all 16 rows
    for (int c = 0; c < 2; ++c)
      _mm512_store_si512(out.q[2 * hq + c], _mm512_permutex2var_epi32(b[hq], ix.s3[c], b[4 + hq]));
}

const TransposeIdx& transpose_idx() {
  static const TransposeIdx ix = make_transpose_idx();
  return ix;
}

// Vector decoders of the common types (Vec16<T>) take one storage block of 16 rows at once. Lane
// r of a register holds 4 bytes of row r, which is exactly the strip layout; the bytes come from
// row loads and a dword transpose (dwords16), a gather only for a lone f16 scale. The scales are
// computed for all 16 rows in vector registers; rows past nr read as zero. Other types decode
// row by row (Decoder<T>).
// kFull: all 16 rows exist (every strip but a matrix's last), so no load needs a mask.
template <bool kFull>
struct Rows16 {
  const std::byte* base;  // storage block sb of row r0
  __m512i offs;           // byte offset of each row from base
  __mmask16 mask;         // rows < nr
  size_t stride;          // bytes from one row to the next

  // The f16 at byte `at` of every row (+0 for rows ≥ nr), as floats. All 16 rows come by word
  // inserts (a gather is slower on some cores); the masked gather serves a matrix's last strip.
  __m512 half16(int at) const {
    if constexpr (kFull)
      return _mm512_insertf32x8(_mm512_castps256_ps512(halves8(base + at, stride)),
                                halves8(base + at + 8 * stride, stride), 1);
    return half_lo(_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mask, offs, base + at, 1));
  }
  // 16 bytes of row r at byte `at` of its block; zero for rows ≥ nr.
  __m128i load16(int r, int at) const {
    if constexpr (kFull)
      return _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + at + r * stride));
    const bool here = (mask >> r) & 1;
    return _mm_maskz_loadu_epi32(here ? 0xF : 0, base + at + (here ? r * stride : 0));
  }
  // The 16 bytes at `at` of every row as 4 dword vectors: lane r of out[g] holds bytes
  // at + 4g .. at + 4g + 3 of row r (row loads and a dword transpose; cheaper than gathers).
  void dwords16(int at, __m512i* out) const {
    const TransposeIdx& ix = transpose_idx();
    __m512i z[4], p[4];
    for (int k = 0; k < 4; ++k) {                        // z[k]: rows 4k .. 4k+3, 16 bytes each
      z[k] = _mm512_castsi128_si512(load16(4 * k, at));  // lane index must be a constant
      z[k] = _mm512_inserti32x4(z[k], load16(4 * k + 1, at), 1);
      z[k] = _mm512_inserti32x4(z[k], load16(4 * k + 2, at), 2);
      z[k] = _mm512_inserti32x4(z[k], load16(4 * k + 3, at), 3);
    }
    for (int h = 0; h < 2; ++h)  // p[2h + c2]: rows 8h .. 8h+7, dwords 2·c2, +1
      for (int c2 = 0; c2 < 2; ++c2)
        p[2 * h + c2] = _mm512_permutex2var_epi32(z[2 * h], ix.s2[c2], z[2 * h + 1]);
    for (int c2 = 0; c2 < 2; ++c2)
      for (int c = 0; c < 2; ++c)
        out[2 * c2 + c] = _mm512_permutex2var_epi32(p[c2], ix.s3[c], p[2 + c2]);
  }
  static __m512 half_lo(__m512i v) {  // f16 in the low 16 bits of each lane → f32
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v));
  }
  static __m512 half_hi(__m512i v) { return half_lo(_mm512_srli_epi32(v, 16)); }
  // v on rows < nr, +0 elsewhere (as the scalar repack leaves missing rows).
  __m512 rows_only(__m512 v) const {
    if constexpr (kFull) return v;
    return _mm512_maskz_mov_ps(mask, v);
  }
  __m512i rows_only(__m512i v) const {
    if constexpr (kFull) return v;
    return _mm512_maskz_mov_epi32(mask, v);
  }
};

inline void store_q(StripBlock& o, int g, __m512i v) {
  _mm512_store_si512(o.q[g], v);
}
inline void store_scales(StripBlock& o, int h, __m512 scale, __m512 offset) {
  _mm512_store_ps(o.scale[h], scale);
  _mm512_store_ps(o.offset[h], offset);
}
inline void store_scales(StripBlock& o, __m512 scale, __m512 offset) {
  store_scales(o, 0, scale, offset);
  store_scales(o, 1, scale, offset);
}

// Scales of a type whose weights are d·(q − c) with an f16 d at the start of the block: scale d,
// offset −c·d for every row.
template <class Rows>
inline void store_code_offset_scales(const Rows& rs, StripBlock& o, float c) {
  const __m512 d = rs.half16(0);
  store_scales(o, d, rs.rows_only(_mm512_mul_ps(d, _mm512_set1_ps(-c))));
}

template <DType T>
struct Vec16 {
  static constexpr bool kHave = false;
};

template <>
struct Vec16<DType::Q4_0> {  // d at 0, qs at 2
  static constexpr bool kHave = true;
  static constexpr int kSub = 1;
  template <class Rows>
  static void run(const Rows& rs, StripBlock* o) {
    __m512i v[4];
    rs.dwords16(2, v);
    const __m512i m = _mm512_set1_epi8(0xF);
    for (int g = 0; g < 4; ++g) {
      store_q(o[0], g, _mm512_and_si512(v[g], m));
      store_q(o[0], g + 4, _mm512_and_si512(_mm512_srli_epi32(v[g], 4), m));
    }
    store_code_offset_scales(rs, o[0], 8.0f);
  }
};

template <>
struct Vec16<DType::Q8_0> {  // d at 0, qs at 2
  static constexpr bool kHave = true;
  static constexpr int kSub = 1;
  template <class Rows>
  static void run(const Rows& rs, StripBlock* o) {
    __m512i v[8];
    rs.dwords16(2, v);
    rs.dwords16(18, v + 4);
    const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
    for (int g = 0; g < 8; ++g) store_q(o[0], g, rs.rows_only(_mm512_xor_si512(v[g], bias)));
    store_code_offset_scales(rs, o[0], 128.0f);
  }
};

template <>
struct Vec16<DType::Q4_K> {  // d, dmin at 0; 12 scale bytes at 4; qs at 16
  static constexpr bool kHave = true;
  static constexpr int kSub = 8;
  template <class Rows>
  static void run(const Rows& rs, StripBlock* o) {
    const __m512i m = _mm512_set1_epi8(0xF);
    for (int j = 0; j < 4; ++j) {
      __m512i v[8];
      rs.dwords16(16 + 32 * j, v);
      rs.dwords16(32 + 32 * j, v + 4);
      for (int g = 0; g < 8; ++g) {
        store_q(o[2 * j], g, _mm512_and_si512(v[g], m));
        store_q(o[2 * j + 1], g, _mm512_and_si512(_mm512_srli_epi32(v[g], 4), m));
      }
    }
    __m512i hdr[4];
    rs.dwords16(0, hdr);
    const __m512i dd = hdr[0], a = hdr[1], b = hdr[2], c = hdr[3];
    const __m512 d = Rows::half_lo(dd), dmin = Rows::half_hi(dd);
    const __m512i m6 = _mm512_set1_epi32(63), m4 = _mm512_set1_epi32(0xF),
                  m2 = _mm512_set1_epi32(0x30);
    for (int j = 0; j < 8; ++j) {
      __m512i sc, mn;
      if (j < 4) {
        sc = _mm512_and_si512(_mm512_srli_epi32(a, 8 * j), m6);
        mn = _mm512_and_si512(_mm512_srli_epi32(b, 8 * j), m6);
      } else {
        const unsigned k = 8 * (j - 4);
        sc = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(c, k), m4),
                             _mm512_and_si512(_mm512_srli_epi32(a, k + 2), m2));
        mn = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(c, k + 4), m4),
                             _mm512_and_si512(_mm512_srli_epi32(b, k + 2), m2));
      }
      const __m512 neg_min =
          _mm512_xor_ps(_mm512_mul_ps(dmin, _mm512_cvtepi32_ps(mn)), _mm512_set1_ps(-0.0f));
      store_scales(o[j], _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc)), rs.rows_only(neg_min));
    }
  }
};

template <>
struct Vec16<DType::Q6_K> {  // ql at 0, qh at 128, int8 scales at 192, d at 208
  static constexpr bool kHave = true;
  static constexpr int kSub = 8;
  template <class Rows>
  static void run(const Rows& rs, StripBlock* o) {
    const __m512i m4 = _mm512_set1_epi8(0xF), m2 = _mm512_set1_epi8(0x30);
    for (int n = 0; n < 2; ++n) {
      __m512i lo0[8], lo1[8], hi[8];
      for (int k = 0; k < 2; ++k) {
        rs.dwords16(64 * n + 16 * k, lo0 + 4 * k);
        rs.dwords16(64 * n + 32 + 16 * k, lo1 + 4 * k);
        rs.dwords16(128 + 32 * n + 16 * k, hi + 4 * k);
      }
      for (int g = 0; g < 8; ++g) {
        const __m512i l0 = lo0[g], l1 = lo1[g], h = hi[g];
        StripBlock* oo = o + 4 * n;  // high bits 2k, 2k+1 of qh go to bits 4, 5
        store_q(oo[0], g,
                _mm512_or_si512(_mm512_and_si512(l0, m4),
                                _mm512_and_si512(_mm512_slli_epi32(h, 4), m2)));
        store_q(oo[1], g,
                _mm512_or_si512(_mm512_and_si512(l1, m4),
                                _mm512_and_si512(_mm512_slli_epi32(h, 2), m2)));
        store_q(oo[2], g,
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(l0, 4), m4),
                                _mm512_and_si512(h, m2)));
        store_q(oo[3], g,
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(l1, 4), m4),
                                _mm512_and_si512(_mm512_srli_epi32(h, 2), m2)));
      }
    }
    const __m512 d = rs.half16(208);
    __m512i scales[4];
    rs.dwords16(192, scales);
    for (int i = 0; i < 4; ++i) {
      const __m512i sc4 = scales[i];
      for (int k = 0; k < 4; ++k) {
        const int j = 4 * i + k;  // sign-extend byte k
        const __m512i sc = _mm512_srai_epi32(_mm512_slli_epi32(sc4, 24 - 8 * k), 24);
        const __m512 dl = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
        store_scales(o[j / 2], j % 2, dl, rs.rows_only(_mm512_mul_ps(dl, _mm512_set1_ps(-32.0f))));
      }
    }
  }
};

template <DType T, bool kFull>
void repack_vec16_rows(const Matrix& w, int64_t r0, int nr, StripBlock* out) {
  using D = Vec16<T>;
  const size_t bytes = static_cast<size_t>(dtype_info(T).block_bytes);
  const __mmask16 mask = static_cast<__mmask16>((1u << nr) - 1);
  const __m512i offs = _mm512_maskz_mullo_epi32(
      mask, _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
      _mm512_set1_epi32(static_cast<int32_t>(w.row_bytes)));
  for_blocks_reading_ahead(w, r0, nr, bytes, w.cols / (32 * D::kSub), [&](int64_t sb) {
    D::run(Rows16<kFull>{w.row(r0) + sb * bytes, offs, mask, w.row_bytes}, out + sb * D::kSub);
  });
}

template <DType T>
void repack_vec16(const Matrix& w, int64_t r0, int nr, StripBlock* out) {
  if (nr == kStripRows)
    repack_vec16_rows<T, true>(w, r0, nr, out);
  else
    repack_vec16_rows<T, false>(w, r0, nr, out);
}

template <DType T>
void repack_t(const Matrix& w, int64_t r0, int nr, StripBlock* out) {
  if constexpr (Vec16<T>::kHave)
    if (w.layout == MatrixLayout::Rows) return repack_vec16<T>(w, r0, nr, out);
  repack_by_rows<T>(w, r0, nr, out, [](const uint8_t* const* rows, StripBlock& o) {
    __m256i v[kStripRows];
    for (int r = 0; r < kStripRows; ++r)
      v[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[r]));
    transpose_16x8(transpose_idx(), v, o);
  });
}

void repack(const Matrix& w, int64_t r0, int nr, StripBlock* out) {
  with_decoder(w.dtype, [&]<DType T>() { repack_t<T>(w, r0, nr, out); });
}

// Half h (groups 4h .. 4h+3) of one block of kS strips into the integer sums of kT tokens
// (sum[j][t] for strip j): each token's four activation bytes of a group come broadcast from
// memory into all 16 lanes and feed all kS strips. Unlike a token's 16 bytes held in a register
// for in-lane shuffles, this keeps no register per token, so 2 strips × 8 tokens of sums fit.
template <int kT, int kS>
inline void half_dots(const StripBlock* const* sb, int h, const ActQ8* a, int64_t a_stride,
                      __m512i (*sum)[kT]) {
  for (int g = 4 * h; g < 4 * h + 4; ++g) {
    __m512i w[kS];
    for (int j = 0; j < kS; ++j) w[j] = _mm512_load_si512(sb[j]->q[g]);
    for (int t = 0; t < kT; ++t) {
      int32_t x4;
      std::memcpy(&x4, a[t * a_stride].qs + 4 * g, 4);
      const __m512i x = _mm512_set1_epi32(x4);
      for (int j = 0; j < kS; ++j) sum[j][t] = _mm512_dpbusd_epi32(sum[j][t], w[j], x);
    }
  }
}

// Where an integer sum of a block starts: at 0, or, for types with a power-of-two code offset
// (kShift ≥ 0, see strip_code_shift), at the offset's share, −Σq·2^k of the activations.
template <int kShift>
inline __m512i sum_start(int32_t neg_qsum) {
  if constexpr (kShift < 0)
    return _mm512_setzero_si512();
  else
    return _mm512_slli_epi32(_mm512_set1_epi32(neg_qsum), kShift);
}

// How a type's blocks are summed: whether its halves have their own scales, and its code
// offset's shift (−1: offsets of its own, multiplied with the activation sums).
struct Form {
  bool split;
  int shift;
};

// Where integer sum h of a block starts for token x: the whole block's (h = 0) or, for split
// types, each half's own.
template <Form F>
inline __m512i block_start(const ActQ8& x, int h) {
  return sum_start<F.shift>(F.split ? x.ns[h] : x.nsum);
}

// acc += one block's integer sums of 16 rows (i1: a split type's second half) times weight ×
// activation scale, plus the offsets times the activation sums for types that keep offsets.
template <Form F>
inline void add_block(__m512i i0, __m512i i1, const StripBlock& sb, const ActQ8& x, __m512& acc) {
  const __m512 d = _mm512_set1_ps(x.d), sc0 = _mm512_load_ps(sb.scale[0]);
  if constexpr (F.split) {  // d·(i0·sc0 + i1·sc1): one multiply less than scaling each half
    const __m512 both = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1), _mm512_load_ps(sb.scale[1]),
                                        _mm512_mul_ps(_mm512_cvtepi32_ps(i0), sc0));
    acc = _mm512_fmadd_ps(both, d, acc);
  } else {
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0), _mm512_mul_ps(sc0, d), acc);
  }
  if constexpr (F.shift < 0 && F.split) {
    acc = _mm512_fmadd_ps(_mm512_load_ps(sb.offset[0]), _mm512_set1_ps(x.s[0]), acc);
    acc = _mm512_fmadd_ps(_mm512_load_ps(sb.offset[1]), _mm512_set1_ps(x.s[1]), acc);
  } else if constexpr (F.shift < 0) {
    acc = _mm512_fmadd_ps(_mm512_load_ps(sb.offset[0]), _mm512_set1_ps(x.sum), acc);
  }
}

// kT tokens × 16 rows over all nb blocks. One integer chain per token and half-scale: the kT
// chains are independent, so their latency hides behind one another.
template <int kT, Form F>
void gemm_tile(const StripBlock* s, int64_t nb, const ActQ8* a, int64_t a_stride, float* y,
               int64_t ldy, int nr, const LineRange& pf, bool accumulate) {
  const __mmask16 m = static_cast<__mmask16>((1u << nr) - 1);
  __m512 acc[kT];
  for (int t = 0; t < kT; ++t)
    acc[t] = accumulate ? _mm512_maskz_loadu_ps(m, y + t * ldy) : _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    pf.issue(b, nb);
    const StripBlock& sb = s[b];
    const ActQ8* ab = a + b;
    __m512i i0[kT], i1[kT];
    for (int t = 0; t < kT; ++t) {
      i0[t] = block_start<F>(ab[t * a_stride], 0);
      i1[t] = F.split ? block_start<F>(ab[t * a_stride], 1) : _mm512_setzero_si512();
    }
    const StripBlock* one[1] = {&sb};
    half_dots<kT, 1>(one, 0, ab, a_stride, &i0);
    half_dots<kT, 1>(one, 1, ab, a_stride, F.split ? &i1 : &i0);
    for (int t = 0; t < kT; ++t) add_block<F>(i0[t], i1[t], sb, ab[t * a_stride], acc[t]);
  }
  for (int t = 0; t < kT; ++t) _mm512_mask_storeu_ps(y + t * ldy, m, acc[t]);
}

// kT tokens × 32 rows (strips s and s + stride; 16 < nr ≤ 32): each activation load feeds both
// strips. Same arithmetic per row as gemm_tile.
template <int kT, Form F>
void pair_tile(const StripBlock* s, int64_t nb, const ActQ8* a, int64_t a_stride, float* y,
               int64_t ldy, int nr, const LineRange& pf, bool accumulate, int64_t stride) {
  const __mmask16 m = static_cast<__mmask16>((1u << (nr - kStripRows)) - 1);
  __m512 acc[2][kT];
  for (int t = 0; t < kT; ++t) {
    acc[0][t] = accumulate ? _mm512_loadu_ps(y + t * ldy) : _mm512_setzero_ps();
    acc[1][t] =
        accumulate ? _mm512_maskz_loadu_ps(m, y + t * ldy + kStripRows) : _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    pf.issue(b, nb);
    const StripBlock* sb[2] = {s + b, s + stride + b};
    const ActQ8* ab = a + b;
    __m512i isum[2][kT], isum1[2][kT];  // isum1: a split type's second half
    for (int t = 0; t < kT; ++t) {
      isum[0][t] = isum[1][t] = block_start<F>(ab[t * a_stride], 0);
      isum1[0][t] = isum1[1][t] =
          F.split ? block_start<F>(ab[t * a_stride], 1) : _mm512_setzero_si512();
    }
    half_dots<kT, 2>(sb, 0, ab, a_stride, isum);
    half_dots<kT, 2>(sb, 1, ab, a_stride, F.split ? isum1 : isum);
    for (int t = 0; t < kT; ++t)
      for (int j = 0; j < 2; ++j)
        add_block<F>(isum[j][t], isum1[j][t], *sb[j], ab[t * a_stride], acc[j][t]);
  }
  for (int t = 0; t < kT; ++t) {
    _mm512_storeu_ps(y + t * ldy, acc[0][t]);
    _mm512_mask_storeu_ps(y + t * ldy + kStripRows, m, acc[1][t]);
  }
}

// Tokens per tile: all of a tile's tokens share each load of the weights. Eight for types whose
// offsets fold into the integer sums (with the activations broadcast from memory two strips × 8
// tokens of sums fit the registers); six for the others, whose offsets cost a multiply-add more
// and whose accumulators would no longer fit.
constexpr int max_tile(Form f) {
  return f.shift >= 0 && !f.split ? 8 : 6;
}
// Two strips of a split type hold twice the integer sums: 4 tokens.
constexpr int max_pair_tile(Form f) {
  return f.split ? 4 : max_tile(f);
}

template <Form F, size_t... I>
constexpr auto tile_table(std::index_sequence<I...>) {
  return TileTable<sizeof...(I)>{&gemm_tile<static_cast<int>(I) + 1, F>...};
}
using PairFn = void (*)(const StripBlock*, int64_t, const ActQ8*, int64_t, float*, int64_t, int,
                        const LineRange&, bool, int64_t);
template <Form F, size_t... I>
constexpr auto pair_table(std::index_sequence<I...>) {
  return std::array<PairFn, sizeof...(I)>{&pair_tile<static_cast<int>(I) + 1, F>...};
}

// Blocks of a strip multiplied with every token before the next ones: a tile re-reads its strips
// for every few tokens, and a pair of long strips (ffn_down's 14336 columns, 672 KiB) would not
// stay in the core's L2 with the activations streaming past (128 blocks: 192 KiB).
inline constexpr int64_t kChunk = 128;

// Chunk by chunk of columns: two strips of one-scale types through the pair tiles, split types'
// one by one (their twice as many integer sums would not fit the registers). Each chunk carries
// out its share of the prefetch plan.
template <DType T>
void gemm_t(const StripBlock* s, int64_t nb, const ActQ8* a, int64_t a_stride, int64_t n, float* y,
            int64_t ldy, int nr, const StripPrefetch* pf) {
  constexpr Form F{strip_split(T), strip_code_shift(T)};
  constexpr auto seq = std::make_index_sequence<max_tile(F)>();
  static constexpr auto kOne = tile_table<F>(seq);
  static constexpr auto kPair = pair_table<F>(std::make_index_sequence<max_pair_tile(F)>());
  for_column_chunks(
      nb, kChunk, pf, [&](int64_t c0, int64_t cn, const StripPrefetch* mine, bool acc) {
        if (nr > kStripRows)
          return run_tiles(kPair, s + c0, cn, a + c0, a_stride, n, y, ldy, nr, mine, acc, nb);
        run_strips(kOne, s + c0, nb, cn, a + c0, a_stride, n, y, ldy, nr, mine, acc);
      });
}

void gemm(const StripBlock* s, int64_t nb, DType type, const ActQ8* a, int64_t a_stride, int64_t n,
          float* y, int64_t ldy, int nr, const StripPrefetch* pf) {
  with_decoder(type, [&]<DType T>() { gemm_t<T>(s, nb, a, a_stride, n, y, ldy, nr, pf); });
}

}  // namespace

const StripKernels& strip_kernels_avx512() {
  static const StripKernels k{"avx512", quantize_act, repack, gemm};
  return k;
}

}  // namespace smoe::cpu
