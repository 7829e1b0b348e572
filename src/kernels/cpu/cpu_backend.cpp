#include "kernels/cpu/cpu_backend.h"

#include <algorithm>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/layout.h"
#include "quant/vec_dot.h"

namespace smoe {

// A fused SwiGLU's last step: rows [r0, r1) of every token's h become SiLU(gate)·up once both
// products have them (h holds the gate products, u the up products, both (n, rows)).
struct SwiGluEpilogue {
  float* h;
  const float* u;
  int64_t rows, n;
  void (*silu_mul)(float* a, const float* b, int64_t n);
  void operator()(int64_t r0, int64_t r1) const {
    for (int64_t i = 0; i < n; ++i) silu_mul(h + i * rows + r0, u + i * rows + r0, r1 - r0);
  }
};

namespace {

// Rows (or strip pairs) of the integer matmuls go to the threads in chunks claimed as they finish:
// reading weights from memory, one core is often slower than the other for a while. The last
// chunk leaves the other threads idle for half its time on average, so more chunks waste less;
// but a small-batch kernel's range ends in rows it did not prefetch past. Measured on Mixtral-2L
// Q4_0 (two round-robin rounds): 32 chunks per thread rather than 8 made pp64 6–10% faster and
// tg32 4% slower (though the threads' waiting in decode fell from 4.4% to 3.0% of the samples).
// So the small-batch kernels take guided chunks instead (large first, shrinking to
// kGemvMinChunkRows rows): few chunk ends, and a short wait at the end.
constexpr int kChunksPerThread = 32;
constexpr int64_t kGemvMinChunkRows = 64;

// Bytes of one row of vec-dot activations (Q8_0, Q8_1 or Q8_K) for up to `cols` columns.
size_t qact_row_bytes(int64_t cols) {
  return static_cast<size_t>(cols / 32 + 1) * 37;  // ≥ Q8_1's 36 per 32, Q8_K's 292 per 256
}

// Maps a global index over the rows (or strips) of several matrices to (matrix, local index).
struct MultiIndex {
  const int64_t* counts;
  int count;
  template <typename Fn>
  void for_range(int64_t b, int64_t e, Fn&& fn) const {
    int64_t base = 0;
    for (int m = 0; m < count && b < e; ++m) {
      const int64_t end = base + counts[m];
      if (b < end) {
        const int64_t stop = std::min(e, end);
        fn(m, b - base, stop - base);
        b = stop;
      }
      base = end;
    }
  }
};

// A fused SwiGLU multiplies blocks of rows in both matrices before finishing them, as many as
// keep both products (for every token of the batch) in cache for SiLU·mul: 256 rows at least,
// else 64 Ki products each. One token's block is a whole chunk: a kernel's range ends in rows it
// did not prefetch past, which costs more in decode than the fusion saves.
constexpr int64_t kFuseRows = 256, kFuseProducts = int64_t{1} << 16;

// The groups of g rows (the last one may be short) of all `count` matrices, handed to the threads
// in chunks as one range: fn(thread, m, g0, g1) takes groups [g0, g1) of matrix m. With `fuse`
// (two matrices of as many rows: gate and up) a chunk is groups of the first matrix's rows: each
// block of them goes through both matrices, then the epilogue.
template <typename Fn>
void for_row_groups(const Matrix* const* ws, int count, int64_t g, ThreadPool& pool, Fn&& fn,
                    const SwiGluEpilogue* fuse = nullptr, bool guided = false) {
  const auto chunks = [&](int64_t n, FunctionRef<void(int, int64_t, int64_t)> part) {
    if (guided)
      pool.parallel_for_guided(n, std::max<int64_t>(1, kGemvMinChunkRows / g), part);
    else
      pool.parallel_for_dynamic(n, kChunksPerThread, part);
  };
  if (fuse) {
    const int64_t rows = ws[0]->rows;
    const int64_t step = std::max<int64_t>(1, std::max(kFuseRows, kFuseProducts / fuse->n) / g);
    chunks((rows + g - 1) / g, [&](int t, int64_t b, int64_t e) {
      for (int64_t s = b; s < e; s += step) {
        const int64_t s1 = std::min(e, s + step);
        fn(t, 0, s, s1);
        fn(t, 1, s, s1);
        (*fuse)(s * g, std::min(s1 * g, rows));
      }
    });
    return;
  }
  int64_t counts[CpuBackend::kMaxMulti];
  int64_t total = 0;
  for (int m = 0; m < count; ++m) total += counts[m] = (ws[m]->rows + g - 1) / g;
  const MultiIndex index{counts, count};
  chunks(total, [&](int t, int64_t b, int64_t e) {
    index.for_range(b, e, [&](int m, int64_t g0, int64_t g1) { fn(t, m, g0, g1); });
  });
}

}  // namespace

CpuBackend::CpuBackend(const cpu::FloatKernels& k, const quant::VecDotKernels& vd,
                       const cpu::StripKernels* strip, const cpu::GemvKernels* gemv,
                       const BackendOptions& opts, const cpu::TileGemmKernels* tiles)
    : k_(k),
      vd_(vd),
      strip_(strip),
      gemv_(strip ? gemv : nullptr),
      tiles_(strip ? tiles : nullptr),
      max_cols_(opts.max_cols),
      max_rows_(std::max<int64_t>(opts.max_rows, 1)),
      name_(std::string("cpu-") + k.isa +
            (gemv_ && std::string(gemv_->isa) != k.isa ? std::string("+") + gemv_->isa : "") +
            (strip ? "+strip" : "")) {
  const auto threads = static_cast<size_t>(std::max(opts.n_threads, 1));
  act_.resize(static_cast<size_t>(max_rows_ * (max_cols_ / 32 + 1)));
  if (strip_) strips_.assign(threads, std::vector<cpu::StripBlock>(2 * (max_cols_ / 32 + 1)));
  if (gemv_) {
    gemv_qs_.resize(static_cast<size_t>(cpu::kGemvMaxTokens * max_cols_));
    gemv_d_.resize(static_cast<size_t>(cpu::kGemvMaxTokens * (max_cols_ / 32 + 1)));
    gemv_sum_.resize(gemv_d_.size());
    gemv_sum4_.resize(gemv_qs_.size() / 4);
    if (gemv_->tiles) {
      gemv_tq_.resize(static_cast<size_t>(cpu::gemv_tile_bytes(max_cols_)));
      gemv_td_.resize(static_cast<size_t>(cpu::gemv_tile_floats(max_cols_)));
      gemv_ts_.resize(gemv_td_.size());
    }
  }
  if (tiles_) {
    tile_b_.resize(static_cast<size_t>(cpu::tile_act_bytes(max_rows_, max_cols_)));
    tile_d_.resize(static_cast<size_t>(cpu::tile_act_floats(max_rows_, max_cols_)));
    tile_sum_.resize(tile_d_.size());
  }
  qact_.resize(qact_row_bytes(max_cols_) * static_cast<size_t>(max_rows_));
  scratch_.assign(threads, std::vector<float>(static_cast<size_t>(max_cols_)));
}

void CpuBackend::check_scratch(const Matrix& w, int64_t n, const ThreadPool& pool) const {
  if (w.cols > max_cols_ || n > max_rows_ || pool.size() > static_cast<int>(scratch_.size()))
    fail(
        "cpu backend: matmul of {} tokens × {} columns on {} threads exceeds its scratch "
        "({} tokens × {} columns, {} threads)",
        n, w.cols, pool.size(), max_rows_, max_cols_, scratch_.size());
}

bool CpuBackend::strip_ok(const Matrix& w, int64_t n) const {
  // Rows in another layout than the file's have no per-row integer path on an instruction set
  // without a small-batch kernel for them: the strips take them at any batch size, so that they
  // see the same 8-bit activations as the file's rows would.
  const int64_t min_tokens = w.layout == MatrixLayout::Rows ? kStripMinTokens : 1;
  return strip_ && n >= min_tokens && w.cols % 32 == 0 && cpu::strip_supported(w.dtype);
}

void CpuBackend::matmul(const Matrix& w, const float* x, int64_t n, float* y, ThreadPool& pool) {
  const Matrix* ws = &w;
  matmul_multi(&ws, &y, 1, x, n, pool);
}

// The integer dot products read rows in the file's layout only.
bool CpuBackend::vec_dot_ok(const Matrix& w) const {
  return w.layout == MatrixLayout::Rows && vd_.dot_for(w.dtype) &&
         w.cols % dtype_info(w.dtype).block_size == 0;
}

bool CpuBackend::gemv_ok(const Matrix& w, int64_t n) const {
  return gemv_ && gemv_->for_matrix(w, n);
}

bool CpuBackend::tiles_ok(const Matrix& w, int64_t n) const {
  return tiles_ && n >= kStripMinTokens && w.layout == MatrixLayout::Rows && tiles_->for_matrix(w);
}

// Matrices with a small-batch kernel go together through it; the rest take one path for all of
// them where they share one, else each its own. A row's result never depends on the grouping.
void CpuBackend::matmul_multi(const Matrix* const* ws, float* const* ys, int count, const float* x,
                              int64_t n, ThreadPool& pool) {
  if (count > kMaxMulti)
    fail("cpu backend: matmul_multi of {} matrices (at most {})", count, kMaxMulti);
  int64_t work = 0;
  for (int i = 0; i < count; ++i) work += ws[i]->rows * ws[i]->cols * n;
  if (work < kMinSharedWork && &pool != &solo_) return matmul_multi(ws, ys, count, x, n, solo_);
  const Matrix* gw[kMaxMulti];
  const Matrix* rw[kMaxMulti];
  float* gy[kMaxMulti];
  float* ry[kMaxMulti];
  int ng = 0, nr = 0;
  for (int i = 0; i < count; ++i) {
    check_scratch(*ws[i], n, pool);
    const bool g = gemv_ok(*ws[i], n) && ws[i]->cols == ws[0]->cols;
    (g ? gw[ng] : rw[nr]) = ws[i];
    (g ? gy[ng++] : ry[nr++]) = ys[i];
  }
  if (ng > 0) matmul_gemv(gw, gy, ng, x, n, pool);
  bool all_strip = true, all_vec_dot = true;
  for (int i = 0; i < nr; ++i) {
    all_strip = all_strip && strip_ok(*rw[i], n);
    all_vec_dot = all_vec_dot && vec_dot_ok(*rw[i]);
  }
  if (nr == 0) return;
  bool all_tiles = true;
  for (int i = 0; i < nr; ++i) all_tiles = all_tiles && tiles_ok(*rw[i], n);
  if (all_tiles) return matmul_tiles(rw, ry, nr, x, n, pool);
  if (all_strip) return matmul_strip(rw, ry, nr, x, n, pool);
  if (all_vec_dot) return matmul_vec_dot(rw, ry, nr, x, n, pool);
  for (int i = 0; i < nr; ++i) {
    if (const cpu::DotFn dot = k_.for_dtype(rw[i]->dtype))
      matmul_float(*rw[i], dot, x, n, ry[i], pool);
    else if (strip_ok(*rw[i], n))
      matmul_strip(rw + i, ry + i, 1, x, n, pool);
    else if (vec_dot_ok(*rw[i]))
      matmul_vec_dot(rw + i, ry + i, 1, x, n, pool);
    else
      matmul_dequantized(*rw[i], x, n, ry[i], pool);
  }
}

// Gate and up through the path matmul_multi would give them together (so the products are the
// same), each block of rows finished as soon as both have it: no second pass over the products and
// no wait for the other threads between the products and SiLU·mul. Other paths run unfused.
void CpuBackend::matmul_swiglu(const Matrix& gate, const Matrix& up, const float* x, int64_t n,
                               float* h, float* u, ThreadPool& pool) {
  if (2 * gate.rows * gate.cols * n < kMinSharedWork && &pool != &solo_)
    return matmul_swiglu(gate, up, x, n, h, u, solo_);
  const Matrix* ws[] = {&gate, &up};
  float* ys[] = {h, u};
  const SwiGluEpilogue fuse{h, u, gate.rows, n, k_.silu_mul};
  switch (swiglu_path(gate, up, n)) {
    case SwiGluPath::Gemv:
      check_scratch(gate, n, pool);
      return matmul_gemv(ws, ys, 2, x, n, pool, &fuse);
    case SwiGluPath::Tiles:
      check_scratch(gate, n, pool);
      return matmul_tiles(ws, ys, 2, x, n, pool, &fuse);
    case SwiGluPath::Strip:
      check_scratch(gate, n, pool);
      return matmul_strip(ws, ys, 2, x, n, pool, &fuse);
    case SwiGluPath::Unfused:
      return Backend::matmul_swiglu(gate, up, x, n, h, u, pool);
  }
}

CpuBackend::SwiGluPath CpuBackend::swiglu_path(const Matrix& gate, const Matrix& up,
                                               int64_t n) const {
  if (gate.rows != up.rows || gate.cols != up.cols) return SwiGluPath::Unfused;
  const bool g = gemv_ok(gate, n), u = gemv_ok(up, n);
  if (g && u) return SwiGluPath::Gemv;
  if (g || u) return SwiGluPath::Unfused;
  if (tiles_ok(gate, n) && tiles_ok(up, n)) return SwiGluPath::Tiles;
  if (strip_ok(gate, n) && strip_ok(up, n)) return SwiGluPath::Strip;
  return SwiGluPath::Unfused;
}

// Each thread owns a contiguous block of output rows; a weight row is read once from memory and
// reused from cache for every token of the batch.
void CpuBackend::matmul_float(const Matrix& w, cpu::DotFn dot, const float* x, int64_t n, float* y,
                              ThreadPool& pool) {
  pool.parallel_for(w.rows, [&](int, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const std::byte* wr = w.row(r);
      for (int64_t i = 0; i < n; ++i) y[i * w.rows + r] = dot(wr, x + i * w.cols, w.cols);
    }
  });
}

// Activations quantized once (by the strip quantizer) and laid out planar; then each thread takes
// a range of rows (of all matrices) and multiplies each row with every token while it is in cache.
void CpuBackend::matmul_gemv(const Matrix* const* ws, float* const* ys, int count, const float* x,
                             int64_t n, ThreadPool& pool, const SwiGluEpilogue* fuse) {
  const int64_t cols = ws[0]->cols, nb = cols / 32;
  bool sum4 = false, tiles = false;
  for (int m = 0; m < count; ++m) {
    sum4 = sum4 || cpu::gemv_uses_sum4(ws[m]->dtype);
    tiles = tiles || gemv_->reads_tiles(*ws[m], n);
  }
  cpu::GemvActs acts{gemv_qs_.data(),    gemv_d_.data(), gemv_sum_.data(),
                     gemv_sum4_.data(),  cols,           nb,
                     static_cast<int>(n)};
  if (tiles) {
    acts.tq = gemv_tq_.data();
    acts.td = gemv_td_.data();
    acts.ts = gemv_ts_.data();
  }
  // Token by token (with tiles, every slot: those past n become zeros).
  pool.parallel_for(tiles ? cpu::kGemvMaxTokens : n, [&](int, int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      if (t < n) {
        const cpu::ActQ8* a = act_.data() + t * nb;
        strip_->quantize(x + t * cols, act_.data() + t * nb, cols);
        for (int64_t j = 0; j < nb; ++j) {
          std::copy_n(a[j].qs, 32, gemv_qs_.data() + t * cols + j * 32);
          gemv_d_[static_cast<size_t>(t * nb + j)] = a[j].d;
          gemv_sum_[static_cast<size_t>(t * nb + j)] = a[j].sum;
        }
        if (sum4)
          cpu::gemv_sums_of_4(gemv_qs_.data() + t * cols, cols, gemv_sum4_.data() + t * cols / 4);
      }
      if (tiles)
        cpu::gemv_pack_token(acts, static_cast<int>(t), gemv_tq_.data(), gemv_td_.data(),
                             gemv_ts_.data());
    }
  });
  // Rows go out in the kernels' groups, so that each lands on the same tile however the matrices
  // are grouped and split.
  const int64_t g = gemv_->row_group;
  for_row_groups(
      ws, count, g, pool,
      [&](int, int m, int64_t g0, int64_t g1) {
        const Matrix& w = *ws[m];
        gemv_->for_matrix(w, n)(w, g * g0, std::min(g * g1, w.rows), acts, ys[m], w.rows);
      },
      fuse, /*guided=*/true);
}

// Activations quantized once; then each thread repacks its pairs of strips (32 rows) of all
// matrices and multiplies every token with them.
void CpuBackend::matmul_strip(const Matrix* const* ws, float* const* ys, int count, const float* x,
                              int64_t n, ThreadPool& pool, const SwiGluEpilogue* fuse) {
  const int64_t cols = ws[0]->cols, nb = cols / 32;
  pool.parallel_for(n, [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) strip_->quantize(x + i * cols, act_.data() + i * nb, cols);
  });
  constexpr int kRows = cpu::kGemmRows, kStrip = cpu::kStripRows;
  for_row_groups(
      ws, count, kRows, pool,
      [&](int t, int m, int64_t p0, int64_t p1) {
        cpu::StripBlock* strips =
            strips_[static_cast<size_t>(t)].data();  // two strips of nb blocks
        const Matrix& w = *ws[m];
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t r0 = p * kRows;
          const int nr = static_cast<int>(std::min<int64_t>(kRows, w.rows - r0));
          strip_->repack(w, r0, std::min(nr, kStrip), strips);
          if (nr > kStrip) strip_->repack(w, r0 + kStrip, nr - kStrip, strips + nb);
          // While these rows multiply, the next ones stream in.
          const int64_t next = r0 + kRows;
          const cpu::StripPrefetch pf{next < w.rows ? w.row(next) : nullptr, w.row_bytes,
                                      w.row_bytes,
                                      static_cast<int>(std::min<int64_t>(kRows, w.rows - next))};
          strip_->gemm(strips, nb, w.dtype, act_.data(), nb, n, ys[m] + r0, w.rows, nr,
                       p + 1 < p1 ? &pf : nullptr);
        }
      },
      fuse);
}

// Activations quantized once and laid out as tiles; then each thread takes 16-row groups of all
// matrices and multiplies them with every token.
void CpuBackend::matmul_tiles(const Matrix* const* ws, float* const* ys, int count, const float* x,
                              int64_t n, ThreadPool& pool, const SwiGluEpilogue* fuse) {
  const int64_t cols = ws[0]->cols, nb = cols / 32;
  const int64_t padded = cpu::tile_act_tiles(n) * cpu::kTileTokens;
  pool.parallel_for(padded, [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      if (i < n) strip_->quantize(x + i * cols, act_.data() + i * nb, cols);
      cpu::tile_pack_token(act_.data() + std::min(i, n - 1) * nb, i, n, nb, tile_b_.data(),
                           tile_d_.data(), tile_sum_.data());
    }
  });
  const cpu::TileActs acts{tile_b_.data(), tile_d_.data(), tile_sum_.data(), nb, n};
  for_row_groups(
      ws, count, 16, pool,
      [&](int, int m, int64_t g0, int64_t g1) {
        const Matrix& w = *ws[m];  // rows in whole groups of 16 (tile_gemm.h)
        tiles_->for_matrix(w)(w, 16 * g0, 16 * g1, acts, ys[m], w.rows);
      },
      fuse);
}

// Integer dot products row by row: activations quantized to the weight type's partner type once
// per group of matrices sharing it, then every row dotted with every token.
void CpuBackend::matmul_vec_dot(const Matrix* const* ws, float* const* ys, int count,
                                const float* x, int64_t n, ThreadPool& pool) {
  const int64_t cols = ws[0]->cols;
  int64_t counts[kMaxMulti];
  bool done[kMaxMulti] = {};
  for (int first = 0; first < count; ++first) {
    if (done[first]) continue;
    const DType act = *quant::vec_dot_act_type(ws[first]->dtype);
    const size_t stride = *dtype_bytes(act, cols);
    const quant::QuantizeFn quantize = vd_.quantize_for(ws[first]->dtype);
    pool.parallel_for(n, [&](int, int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) quantize(x + i * cols, qact_.data() + i * stride, cols);
    });
    int64_t total = 0;
    for (int m = 0; m < count; ++m) {
      const bool mine = !done[m] && *quant::vec_dot_act_type(ws[m]->dtype) == act;
      counts[m] = mine ? ws[m]->rows : 0;
      done[m] = done[m] || mine;
      total += counts[m];
    }
    const MultiIndex index{counts, count};
    pool.parallel_for_dynamic(total, kChunksPerThread, [&](int, int64_t b, int64_t e) {
      index.for_range(b, e, [&](int m, int64_t r0, int64_t r1) {
        const Matrix& w = *ws[m];
        const quant::DotFn dot = vd_.dot_for(w.dtype);
        float* y = ys[m];
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t i = 0; i < n; ++i)
            y[i * w.rows + r] = dot(w.row(r), qact_.data() + i * stride, cols);
      });
    });
  }
}

// Other quantized weights: each row is expanded once into the thread's scratch, then dotted with
// every token of the batch by the f32 kernel.
void CpuBackend::matmul_dequantized(const Matrix& w, const float* x, int64_t n, float* y,
                                    ThreadPool& pool) {
  pool.parallel_for(w.rows, [&](int t, int64_t r0, int64_t r1) {
    float* row = scratch_[static_cast<size_t>(t)].data();
    const auto* rb = reinterpret_cast<const std::byte*>(row);
    for (int64_t r = r0; r < r1; ++r) {
      matrix_row_to_f32(w, r, row);
      for (int64_t i = 0; i < n; ++i) y[i * w.rows + r] = k_.dot_f32(rb, x + i * w.cols, w.cols);
    }
  });
}

}  // namespace smoe
