// AVX-512 VNNI small-batch kernels (see gemv.h). A step covers 16 blocks (512 columns) of a row:
// their 16 scales come into one register, and each pair of blocks is unpacked once into 64
// unsigned bytes laid out like the 64 activation bytes of the same columns, so one vpdpbusd per
// token adds them into 16 int32 lanes (lanes 0-7 block 2p, lanes 8-15 block 2p+1), scaled per lane
// by dw·d.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/avx512/gemv_pairs.h"
#include "kernels/cpu/float_kernels.h"
#include "kernels/cpu/gemv.h"

namespace smoe::cpu {
namespace {

// kN tokens (of the acts at a) with one row.
template <class P, int kN, PullTo kTo>
void row_tile(const P& pair, const std::byte* row, int64_t nb, const GemvActs& a, int t0, float* y,
              int64_t ldy) {
  const __m512i two = _mm512_set1_epi32(2);
  const __m512i first = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  __m512 acc[kN][2], off[kN];  // two accumulators per token: even and odd pairs (latency)
  for (int t = 0; t < kN; ++t) acc[t][0] = acc[t][1] = off[t] = _mm512_setzero_ps();
  const int64_t row_bytes = nb / 16 * P::kStep;
  const std::byte* base = row;
  for (int64_t j = 0; j < nb; j += 16, base += P::kStep) {
    pull_step<P, kTo>(base + row_bytes);  // the next row follows this one in memory
    const auto sc = pair.scales(base);
    __m512 s[kN];  // per block: dw·d, or with scales per 16 columns d alone
    for (int t = 0; t < kN; ++t) {
      const int64_t at = (t0 + t) * a.b_stride + j;
      if constexpr (P::kSubScales) {
        s[t] = _mm512_loadu_ps(a.d + at);
      } else {
        s[t] = _mm512_mul_ps(sc.dw, _mm512_loadu_ps(a.d + at));
        off[t] = _mm512_fmadd_ps(sc.mw, _mm512_loadu_ps(a.sum + at), off[t]);
      }
    }
    __m512i lane_idx = first;  // lanes 0-7 → scale 2p, lanes 8-15 → 2p + 1
#pragma GCC unroll 8           // whole, so that p is a constant in pair_at, load and lane_scales
    for (int p = 0; p < 8; ++p, lane_idx = _mm512_add_epi32(lane_idx, two)) {
      const __m512i u = pair.load(base + P::pair_at(p), p);
      __m512 ws = _mm512_setzero_ps();
      if constexpr (P::kSubScales) ws = P::lane_scales(sc, p);
      for (int t = 0; t < kN; ++t) {
        const int64_t col = (j + 2 * p) * 32;
        const int8_t* q = a.qs + (t0 + t) * a.q_stride + col;
        __m512i start = _mm512_setzero_si512();
        if constexpr (P::kSubScales)  // −32·sum4
          start = _mm512_sub_epi32(
              start,
              _mm512_slli_epi32(_mm512_loadu_si512(a.sum4 + ((t0 + t) * a.q_stride + col) / 4), 5));
        const __m512i dot = _mm512_dpbusd_epi32(start, u, _mm512_loadu_si512(q));
        __m512 scale = _mm512_permutexvar_ps(lane_idx, s[t]);
        if constexpr (P::kSubScales) scale = _mm512_mul_ps(ws, scale);
        __m512& a2 = acc[t][p % 2];
        a2 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, a2);
      }
    }
  }
  for (int t = 0; t < kN; ++t)
    y[(t0 + t) * ldy] = _mm512_reduce_add_ps(_mm512_add_ps(acc[t][0], acc[t][1])) -
                        static_cast<float>(P::kC) * _mm512_reduce_add_ps(off[t]);
}

// The scales of blocks j .. j + 15 of four rows (dw[r]) rearranged so that lane 4i + r of out[q]
// is block j + 4q + i of row r: the layout of quad_tile's integer sums.
inline void scales_by_block(const __m512* dw, __m512* out) {
  const __m512 lo01 = _mm512_unpacklo_ps(dw[0], dw[1]), hi01 = _mm512_unpackhi_ps(dw[0], dw[1]);
  const __m512 lo23 = _mm512_unpacklo_ps(dw[2], dw[3]), hi23 = _mm512_unpackhi_ps(dw[2], dw[3]);
  const auto pd = [](__m512 v) { return _mm512_castps_pd(v); };
  __m512 e[4];  // e[i], 128-bit lane l: rows 0-3 of block j + 4l + i
  e[0] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(lo01), pd(lo23)));
  e[1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(lo01), pd(lo23)));
  e[2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(hi01), pd(hi23)));
  e[3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(hi01), pd(hi23)));
  // 4 × 4 transpose of 128-bit lanes: out[q] lane i = e[i] lane q.
  const __m512 t0 = _mm512_shuffle_f32x4(e[0], e[1], _MM_SHUFFLE(1, 0, 1, 0));
  const __m512 t1 = _mm512_shuffle_f32x4(e[2], e[3], _MM_SHUFFLE(1, 0, 1, 0));
  const __m512 t2 = _mm512_shuffle_f32x4(e[0], e[1], _MM_SHUFFLE(3, 2, 3, 2));
  const __m512 t3 = _mm512_shuffle_f32x4(e[2], e[3], _MM_SHUFFLE(3, 2, 3, 2));
  out[0] = _mm512_shuffle_f32x4(t0, t1, _MM_SHUFFLE(2, 0, 2, 0));
  out[1] = _mm512_shuffle_f32x4(t0, t1, _MM_SHUFFLE(3, 1, 3, 1));
  out[2] = _mm512_shuffle_f32x4(t2, t3, _MM_SHUFFLE(2, 0, 2, 0));
  out[3] = _mm512_shuffle_f32x4(t2, t3, _MM_SHUFFLE(3, 1, 3, 1));
}

// Sums of the 16-byte pieces of one token's vpdpbusd with four rows (v[r]: 16 lanes, 4 per
// piece): lane 4l + r = row r's sum over piece l.
inline __m512i piece_sums(const __m512i* v) {
  const __m512i s01 =
      _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]), _mm512_unpackhi_epi32(v[0], v[1]));
  const __m512i s23 =
      _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]), _mm512_unpackhi_epi32(v[2], v[3]));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
}

// Lanes 4r .. 4r + 3 summed: the four rows' totals in the low 128 bits.
inline __m128 row_totals(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_castps512_ps128(v);
}

// Pair p of the step at base in four rows `stride` bytes apart.
template <class P>
inline void load_quad_pair(const P& pair, const std::byte* base, size_t stride, int p, __m512i* u) {
  for (int r = 0; r < 4; ++r) u[r] = pair.load(base + r * stride + P::pair_at(p), p);
}

// One token's dots (from start) with a pair of four rows, as piece_sums.
inline __m512i quad_pieces(const __m512i* u, __m512i xv, __m512i start) {
  __m512i v[4];
  for (int r = 0; r < 4; ++r) v[r] = _mm512_dpbusd_epi32(start, u[r], xv);
  return piece_sums(v);
}

// Four rows (`stride` bytes apart) × kN tokens. Each vpdpbusd of a row's 64 bytes with a token's
// leaves 4 partial sums per 16 columns; unpacks and adds gather those of the four rows into one
// register per 128 columns whose lanes are (block, row), so that one conversion and one scaling
// cover 16 block sums instead of row_tile's 2.
template <class P, int kN, PullTo kTo>
void quad_tile(const P& pair, const std::byte* row, size_t stride, int64_t nb, const GemvActs& a,
               int t0, float* y, int64_t ldy) {
  alignas(64) static constexpr std::array<std::array<int32_t, 16>, 4> kBlockOf = [] {
    std::array<std::array<int32_t, 16>, 4> idx{};  // lane 4i + r of group q → block 4q + i
    for (int q = 0; q < 4; ++q)
      for (int l = 0; l < 16; ++l) idx[q][l] = 4 * q + l / 4;
    return idx;
  }();
  __m512 acc[kN], off[kN];
  for (int t = 0; t < kN; ++t) acc[t] = off[t] = _mm512_setzero_ps();
  for (int64_t j = 0; j < nb; j += 16) {
    const std::byte* base = row + j / 16 * P::kStep;
    for (int r = 4; r < 8; ++r) pull_step<P, kTo>(base + r * stride);  // the next four rows
    __m512 dq[4], mq[4];  // scales and offset coefficients by (block, row)
    {
      __m512 dw[4], mw[4];
      for (int r = 0; r < 4; ++r) {
        const StepScales sc = pair.scales(base + r * stride);
        dw[r] = sc.dw;
        mw[r] = sc.mw;
      }
      scales_by_block(dw, dq);
      if constexpr (P::kMins)
        scales_by_block(mw, mq);
      else
        std::copy_n(dq, 4, mq);
    }
    for (int q = 0; q < 4; ++q) {  // blocks j + 4q .. j + 4q + 3: two pairs of blocks
      const __m512i idx = _mm512_load_si512(kBlockOf[q].data());
      __m512i u[2][4];
      for (int h = 0; h < 2; ++h) load_quad_pair(pair, base, stride, 2 * q + h, u[h]);
      for (int t = 0; t < kN; ++t) {
        const int8_t* x = a.qs + (t0 + t) * a.q_stride + (j + 4 * q) * 32;
        __m512i g[2];  // lanes 4l + r: l = 0, 1 block 4q + 2h, l = 2, 3 the next
        for (int h = 0; h < 2; ++h)
          g[h] = quad_pieces(u[h], _mm512_loadu_si512(x + 64 * h), _mm512_setzero_si512());
        const __m512i sums =
            _mm512_add_epi32(_mm512_shuffle_i32x4(g[0], g[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_i32x4(g[0], g[1], _MM_SHUFFLE(3, 1, 3, 1)));
        const int64_t at = (t0 + t) * a.b_stride + j;
        const __m512 d = _mm512_permutexvar_ps(idx, _mm512_loadu_ps(a.d + at));
        const __m512 sum = _mm512_permutexvar_ps(idx, _mm512_loadu_ps(a.sum + at));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_mul_ps(dq[q], d), acc[t]);
        off[t] = _mm512_fmadd_ps(mq[q], sum, off[t]);
      }
    }
  }
  const __m128 c = _mm_set1_ps(static_cast<float>(P::kC));
  for (int t = 0; t < kN; ++t)
    _mm_storeu_ps(y + (t0 + t) * ldy, _mm_fnmadd_ps(c, row_totals(off[t]), row_totals(acc[t])));
}

// quad_tile for scales per 16 columns (Q6_K): piece l of a pair's dot is one scale group, so the
// pieces of the four rows are scaled as they come (lanes 4l + r), not gathered into blocks.
template <class P, int kN, PullTo kTo>
void quad_tile_sub(const P& pair, const std::byte* row, size_t stride, int64_t nb,
                   const GemvActs& a, int t0, float* y, int64_t ldy) {
  alignas(64) static constexpr std::array<std::array<int32_t, 16>, 8> kBlockOf = [] {
    std::array<std::array<int32_t, 16>, 8> idx{};  // lane 4l + r of pair p → block 2p + l / 2
    for (int p = 0; p < 8; ++p)
      for (int l = 0; l < 16; ++l) idx[p][l] = 2 * p + l / 8;
    return idx;
  }();
  __m512 acc[kN];
  for (int t = 0; t < kN; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t j = 0; j < nb; j += 16) {
    const std::byte* base = row + j / 16 * P::kStep;
    for (int r = 4; r < 8; ++r) pull_step<P, kTo>(base + r * stride);  // the next four rows
    __m512 ws[2][4];  // [super-block][pair of it]: lane 4l + r, row r's scale of piece l
    {
      typename P::Scales sc[4];
      for (int r = 0; r < 4; ++r) sc[r] = pair.scales(base + r * stride);
      for (int s = 0; s < 2; ++s) {
        const __m512 rows[4] = {sc[0].sb[s], sc[1].sb[s], sc[2].sb[s], sc[3].sb[s]};
        scales_by_block(rows, ws[s]);
      }
    }
#pragma GCC unroll 8
    for (int p = 0; p < 8; ++p) {
      __m512i u[4];
      load_quad_pair(pair, base, stride, p, u);
      const __m512i idx = _mm512_load_si512(kBlockOf[static_cast<size_t>(p)].data());
      for (int t = 0; t < kN; ++t) {
        const int64_t col = (t0 + t) * a.q_stride + (j + 2 * p) * 32;
        const __m512i start = _mm512_sub_epi32(  // −32·sum4
            _mm512_setzero_si512(), _mm512_slli_epi32(_mm512_loadu_si512(a.sum4 + col / 4), 5));
        const __m512i g = quad_pieces(u, _mm512_loadu_si512(a.qs + col), start);
        const __m512 d =
            _mm512_permutexvar_ps(idx, _mm512_loadu_ps(a.d + (t0 + t) * a.b_stride + j));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(g), _mm512_mul_ps(ws[p / 4][p % 4], d), acc[t]);
      }
    }
  }
  for (int t = 0; t < kN; ++t) _mm_storeu_ps(y + (t0 + t) * ldy, row_totals(acc[t]));
}

// Row by row (row_tile), up to 4 tokens per pass while the row stays in L1; with kQuads, 3 to 8
// tokens go four rows at a time (quad_tile) in passes of up to 4. Measured from memory on
// 14336 × 4096 Q4_0 matrices (2 threads) that reads at 1.6–2.5× the strip GEMM's rate for 3 to 8
// tokens; for Q8_0 it measured no faster than its rows. Q4_K takes both like Q4_0 (8-sequence
// decoding of the Mixtral-2L Q4_K_M file 103–110 tok/s against 77–96 through the strip GEMM), and
// Q6_K too, through quad_tile_sub (its 8-token output head: 18% of that decoding's time against
// 23% for the strip GEMM's repack and tiles).
//
// kQuadOne: one token goes four rows at a time too. From memory (14336 × 4096, 2 threads, AMD EPYC
// with AVX-512, alternating runs) Q4_0 read at 42.3–43.9 GB/s against 34.5–38.0 row by row, and
// Q6_K at 46.6–55.7 against 38.4–44.3: one token's row tile is bound by its conversions and
// scalings, which four rows share. Q4_K read slower that way (32.8–34.2 against 35.4–36.2), and
// two tokens slower for both (Q4_0 24.7–28.3 against 30.9–31.3).
template <class P, bool kQuads, bool kQuadOne, PullTo kTo>
void gemv(const Matrix& w, int64_t r0, int64_t r1, const GemvActs& a, float* y, int64_t ldy) {
  using Tile = void (*)(const P&, const std::byte*, int64_t, const GemvActs&, int, float*, int64_t);
  using Quad =
      void (*)(const P&, const std::byte*, size_t, int64_t, const GemvActs&, int, float*, int64_t);
  static constexpr std::array<Tile, 4> kTiles = {row_tile<P, 1, kTo>, row_tile<P, 2, kTo>,
                                                 row_tile<P, 3, kTo>, row_tile<P, 4, kTo>};
  const P pair;
  const int64_t nb = w.cols / 32;
  const auto rows = [&](int64_t from, int64_t to) {  // up to 4 tokens per pass; the row stays in L1
    for (int64_t r = from; r < to; ++r)
      for (int t0 = 0; t0 < a.n; t0 += 4)
        kTiles[static_cast<size_t>(std::min(4, a.n - t0) - 1)](pair, w.row(r), nb, a, t0, y + r,
                                                               ldy);
  };
  if constexpr (kQuads) {
    if (a.n >= 3 || (kQuadOne && a.n == 1)) {
      // Quads at rows 4k .. 4k + 3 only, so that a row's tile (and its rounding) depends on its
      // index alone, not on how the rows were split among threads and calls.
      const int64_t q0 = std::min(r1, (r0 + 3) / 4 * 4), q1 = q0 + (r1 - q0) / 4 * 4;
      rows(r0, q0);
      // Passes as even as possible (5 = 2 + 3, 6 = 3 + 3, 7 = 3 + 4): 2 to 4 tokens each.
      static constexpr std::array<Quad, 4> kQuad = [] {
        if constexpr (P::kSubScales)
          return std::array<Quad, 4>{quad_tile_sub<P, 1, kTo>, quad_tile_sub<P, 2, kTo>,
                                     quad_tile_sub<P, 3, kTo>, quad_tile_sub<P, 4, kTo>};
        else
          return std::array<Quad, 4>{quad_tile<P, 1, kTo>, quad_tile<P, 2, kTo>,
                                     quad_tile<P, 3, kTo>, quad_tile<P, 4, kTo>};
      }();
      const int passes = (a.n + 3) / 4;
      for (int64_t r = q0; r < q1; r += 4)
        for (int p = 0, t0 = 0; p < passes; ++p) {
          const int tn = a.n * (p + 1) / passes - t0;
          kQuad[static_cast<size_t>(tn - 1)](pair, w.row(r), w.row_bytes, nb, a, t0, y + r, ldy);
          t0 += tn;
        }
      return rows(q1, r1);
    }
  }
  rows(r0, r1);
}

template <PullTo kTo>
const GemvKernels& kernels_pulling_to() {
  static const GemvKernels k{"avx512",
                             gemv<Q4_0Pair, true, true, kTo>,
                             gemv<Q8_0Pair, false, false, kTo>,
                             gemv<Q4_KPair, true, false, kTo>,
                             gemv<Q6_KPair, true, true, kTo>,
                             {1, kGemvMaxTokens},
                             {1, 4},
                             {1, kGemvMaxTokens},
                             {1, kGemvMaxTokens}};
  return k;
}

}  // namespace

const GemvKernels& gemv_kernels_avx512(PullTo to) {
  return to == PullTo::L1 ? kernels_pulling_to<PullTo::L1>() : kernels_pulling_to<PullTo::L2>();
}

const GemvKernels& gemv_kernels_avx512() {
  static const GemvKernels& k = gemv_kernels_avx512(cpu_is_amd() ? PullTo::L1 : PullTo::L2);
  return k;
}

}  // namespace smoe::cpu
