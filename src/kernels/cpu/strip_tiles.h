// Pieces of the strip GEMM that every instruction set shares: the repack's read-ahead, the
// prefetch plan of the next strip spread over a tile's blocks, the split of a batch's tokens
// into tiles and of long rows into chunks of columns. Header-only with internal linkage, so each
// ISA's translation unit compiles its own copy with its own flags.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/strip.h"

namespace smoe::cpu {
namespace {

// Calls fn(sb) for each of the n_sb storage blocks (`bytes` bytes each) of rows [r0, r0 + nr).
// Each row is its own stream, so before block sb the cache lines that block sb + ahead (about
// 1 KiB on) begins in every row are prefetched; none when it starts inside a line the previous
// block already touched.
template <class Fn>
void for_blocks_reading_ahead(const Matrix& w, int64_t r0, int nr, size_t bytes, int64_t n_sb,
                              Fn&& fn) {
  const size_t ahead = (1024 + bytes - 1) / bytes;
  const size_t end = static_cast<size_t>(n_sb) * bytes;
  for (int64_t sb = 0; sb < n_sb; ++sb) {
    const size_t lo = (static_cast<size_t>(sb) + ahead) * bytes;
    if (lo < end)
      for (size_t at = (lo + 63) & ~size_t{63}; at < lo + bytes; at += 64)
        for (int r = 0; r < nr; ++r)
          _mm_prefetch(reinterpret_cast<const char*>(w.row(r0 + r) + at), _MM_HINT_T0);
    fn(sb);
  }
}

// Cache lines [begin, end) of a prefetch plan, spread evenly over a tile's nb blocks.
struct LineRange {
  const StripPrefetch* pf;
  int64_t lines_per_row, begin, end;
  void issue(int64_t b, int64_t nb) const {
    if (!pf) return;
    const int64_t span = end - begin;
    for (int64_t k = begin + span * b / nb, e = begin + span * (b + 1) / nb; k < e; ++k) {
      const std::byte* p = pf->first + static_cast<size_t>(k / lines_per_row) * pf->stride +
                           static_cast<size_t>(k % lines_per_row) * 64;
      _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1);
    }
  }
};

// One tile: kT tokens (the table's index + 1) × the rows of one call; with `accumulate` its sums
// continue those already in y (an earlier chunk of columns), in the order of one pass.
using TileFn = void (*)(const StripBlock*, int64_t, const ActQ8*, int64_t, float*, int64_t, int,
                        const LineRange&, bool accumulate);
template <size_t kMax>
using TileTable = std::array<TileFn, kMax>;

// All n tokens through one tile function per group of up to kMax tokens, each group carrying out
// its share of the prefetch plan; `extra` goes to every tile after the plan.
template <class Fn, size_t kMax, class... Extra>
void run_tiles(const std::array<Fn, kMax>& tiles, const StripBlock* s, int64_t nb, const ActQ8* a,
               int64_t a_stride, int64_t n, float* y, int64_t ldy, int nr, const StripPrefetch* pf,
               Extra... extra) {
  constexpr auto kMaxTile = static_cast<int64_t>(kMax);
  const int64_t lines_per_row = pf ? static_cast<int64_t>((pf->row_bytes + 63) / 64) : 0;
  const int64_t lines = pf ? lines_per_row * pf->rows : 0;
  for (int64_t t = 0; t < n;) {
    const int64_t left = n - t;
    // Even tiles: kMax + 1 tokens run as two halves, not kMax + 1.
    const int64_t tile =
        left <= kMaxTile ? left : (left < 2 * kMaxTile ? (left + 1) / 2 : kMaxTile);
    const LineRange range{pf, lines_per_row, lines * t / n, lines * (t + tile) / n};
    tiles[static_cast<size_t>(tile - 1)](s, nb, a + t * a_stride, a_stride, y + t * ldy, ldy, nr,
                                         range, extra...);
    t += tile;
  }
}

// A strip's nb blocks in chunks of up to `chunk`: fn(c0, cn, share, accumulate) for blocks
// [c0, c0 + cn), where `share` is the chunk's part of the prefetch plan's rows (null when none)
// and `accumulate` says whether earlier chunks' sums are already in y.
template <class Fn>
void for_column_chunks(int64_t nb, int64_t chunk, const StripPrefetch* pf, Fn&& fn) {
  const int64_t chunks = (nb + chunk - 1) / chunk;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t c0 = c * chunk, cn = std::min<int64_t>(chunk, nb - c0);
    StripPrefetch share;
    if (pf) {
      const int64_t r0 = pf->rows * c / chunks, r1 = pf->rows * (c + 1) / chunks;
      share = {pf->first + static_cast<size_t>(r0) * pf->stride, pf->stride, pf->row_bytes,
               static_cast<int>(r1 - r0)};
    }
    fn(c0, cn, pf && share.rows > 0 ? &share : nullptr, c > 0);
  }
}

// nb blocks of the up to two strips of one GEMM call (rows 16 .. nr − 1 in the strip `stride`
// blocks after s) one after the other; the last one carries out the prefetch plan.
template <class Fn, size_t kMax, class... Extra>
void run_strips(const std::array<Fn, kMax>& tiles, const StripBlock* s, int64_t stride, int64_t nb,
                const ActQ8* a, int64_t a_stride, int64_t n, float* y, int64_t ldy, int nr,
                const StripPrefetch* pf, Extra... extra) {
  const int nr0 = nr < kStripRows ? nr : kStripRows;
  run_tiles(tiles, s, nb, a, a_stride, n, y, ldy, nr0, nr > kStripRows ? nullptr : pf, extra...);
  if (nr > kStripRows)
    run_tiles(tiles, s + stride, nb, a, a_stride, n, y + kStripRows, ldy, nr - kStripRows, pf,
              extra...);
}

}  // namespace
}  // namespace smoe::cpu
