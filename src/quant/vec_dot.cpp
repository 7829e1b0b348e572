// The scalar reference of the quantized dot products: each weight block is unpacked to signed
// integer levels with per-group integer scales (and mins), multiplied with the int8 activations
// in exact integer arithmetic, and scaled to float once per block.
#include "quant/vec_dot.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"

namespace smoe::quant {
namespace {

int round_even(float v) {
  return static_cast<int>(std::nearbyint(v));
}

float amax_of(const float* x, int n) {
  float m = 0;
  for (int j = 0; j < n; ++j) m = std::fmax(m, std::fabs(x[j]));
  return m;
}

// One legacy block as signed levels: x = d·q + m.
struct Legacy {
  float d, m;
  int q[kQK];
};

// One k-quant super-block as signed levels in 16 groups of 16: x = d·scale[g]·q − dmin·min[g].
struct KQuant {
  float d, dmin;
  int scale[16], min[16];
  int q[kQKK];
};

template <typename A>
int32_t idot(const int* q, const A& a, int off, int n) {
  int32_t s = 0;
  for (int j = 0; j < n; ++j) s += q[j] * a.qs[off + j];
  return s;
}

// Σ over blocks with the legacy unpacking `unpack(i, Legacy&)`; Q8_1 activations carry d·Σq.
template <typename A, typename F>
float dot_legacy(const void* act, int64_t n, F unpack) {
  const auto* a = static_cast<const A*>(act);
  float s = 0;
  Legacy L;
  for (int64_t i = 0; i < n / kQK; ++i) {
    unpack(i, L);
    float v = L.d * f16_to_f32(a[i].d) * static_cast<float>(idot(L.q, a[i], 0, kQK));
    if constexpr (sizeof(A) == sizeof(BlockQ8_1)) v += L.m * f16_to_f32(a[i].s);
    s += v;
  }
  return s;
}

template <typename F>
float dot_kquant(const void* act, int64_t n, F unpack) {
  const auto* a = static_cast<const BlockQ8_K*>(act);
  float s = 0;
  KQuant K;
  for (int64_t i = 0; i < n / kQKK; ++i) {
    unpack(i, K);
    int32_t isum = 0, msum = 0;
    for (int g = 0; g < 16; ++g) {
      isum += K.scale[g] * idot(K.q + 16 * g, a[i], 16 * g, 16);
      int32_t as = 0;
      for (int j = 0; j < 16; ++j) as += a[i].qs[16 * g + j];
      msum += K.min[g] * as;
    }
    s += a[i].d * (K.d * static_cast<float>(isum) - K.dmin * static_cast<float>(msum));
  }
  return s;
}

// Bit 4 of weight j of a Q5_0 / Q5_1 block.
int q5_high(const uint8_t* qh, int j) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  return static_cast<int>((h >> j) & 1) << 4;
}

// Levels of a Q2_K / Q3_K super-block: weight 128·h + 32·s + l is bits 2s..2s+1 of qs[32h + l].
int q2_level(const uint8_t* qs, int e) {
  return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

}  // namespace

namespace ref {

void quantize_q8_0(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    const float d = amax_of(x, kQK) / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    b[i].d = f32_to_f16(d);
    for (int j = 0; j < kQK; ++j) b[i].qs[j] = static_cast<int8_t>(round_even(x[j] * id));
  }
}

void quantize_q8_1(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    const float d = amax_of(x, kQK) / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      b[i].qs[j] = static_cast<int8_t>(round_even(x[j] * id));
      sum += b[i].qs[j];
    }
    b[i].d = f32_to_f16(d);
    b[i].s = f32_to_f16(d * static_cast<float>(sum));
  }
}

void quantize_q8_k(const float* x, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    const float amax = amax_of(x, kQKK), is = amax > 0 ? 127.0f / amax : 0.0f;
    b[i].d = amax > 0 ? 1.0f / is : 0.0f;
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 16 * g; j < 16 * g + 16; ++j) {
        b[i].qs[j] = static_cast<int8_t>(round_even(x[j] * is));
        sum += b[i].qs[j];
      }
      b[i].bsums[g] = static_cast<int16_t>(sum);
    }
  }
}

float dot_q4_0(const void* w, const void* a, int64_t n) {
  const auto* b = static_cast<const BlockQ4_0*>(w);
  return dot_legacy<BlockQ8_0>(a, n, [b](int64_t i, Legacy& L) {
    L.d = f16_to_f32(b[i].d);
    for (int j = 0; j < 16; ++j) {
      L.q[j] = (b[i].qs[j] & 0xF) - 8;
      L.q[j + 16] = (b[i].qs[j] >> 4) - 8;
    }
  });
}

float dot_q4_1(const void* w, const void* a, int64_t n) {
  const auto* b = static_cast<const BlockQ4_1*>(w);
  return dot_legacy<BlockQ8_1>(a, n, [b](int64_t i, Legacy& L) {
    L.d = f16_to_f32(b[i].d);
    L.m = f16_to_f32(b[i].m);
    for (int j = 0; j < 16; ++j) {
      L.q[j] = b[i].qs[j] & 0xF;
      L.q[j + 16] = b[i].qs[j] >> 4;
    }
  });
}

float dot_q5_0(const void* w, const void* a, int64_t n) {
  const auto* b = static_cast<const BlockQ5_0*>(w);
  return dot_legacy<BlockQ8_0>(a, n, [b](int64_t i, Legacy& L) {
    L.d = f16_to_f32(b[i].d);
    for (int j = 0; j < 16; ++j) {
      L.q[j] = ((b[i].qs[j] & 0xF) | q5_high(b[i].qh, j)) - 16;
      L.q[j + 16] = ((b[i].qs[j] >> 4) | q5_high(b[i].qh, j + 16)) - 16;
    }
  });
}

float dot_q5_1(const void* w, const void* a, int64_t n) {
  const auto* b = static_cast<const BlockQ5_1*>(w);
  return dot_legacy<BlockQ8_1>(a, n, [b](int64_t i, Legacy& L) {
    L.d = f16_to_f32(b[i].d);
    L.m = f16_to_f32(b[i].m);
    for (int j = 0; j < 16; ++j) {
      L.q[j] = (b[i].qs[j] & 0xF) | q5_high(b[i].qh, j);
      L.q[j + 16] = (b[i].qs[j] >> 4) | q5_high(b[i].qh, j + 16);
    }
  });
}

float dot_q8_0(const void* w, const void* a, int64_t n) {
  const auto* b = static_cast<const BlockQ8_0*>(w);
  return dot_legacy<BlockQ8_0>(a, n, [b](int64_t i, Legacy& L) {
    L.d = f16_to_f32(b[i].d);
    for (int j = 0; j < kQK; ++j) L.q[j] = b[i].qs[j];
  });
}

float dot_q2_k(const void* w, const void* a, int64_t n) {
  const auto* b = static_cast<const BlockQ2_K*>(w);
  return dot_kquant(a, n, [b](int64_t i, KQuant& K) {
    K.d = f16_to_f32(b[i].d);
    K.dmin = f16_to_f32(b[i].dmin);
    for (int g = 0; g < 16; ++g) {
      K.scale[g] = b[i].scales[g] & 0xF;
      K.min[g] = b[i].scales[g] >> 4;
    }
    for (int e = 0; e < kQKK; ++e) K.q[e] = q2_level(b[i].qs, e);
  });
}

float dot_q3_k(const void* w, const void* a, int64_t n) {
  const auto* b = static_cast<const BlockQ3_K*>(w);
  return dot_kquant(a, n, [b](int64_t i, KQuant& K) {
    K.d = f16_to_f32(b[i].d);
    K.dmin = 0;
    const uint8_t* s = b[i].scales;
    for (int g = 0; g < 16; ++g) {
      const int low = g < 8 ? (s[g] & 0xF) : (s[g - 8] >> 4);
      const int high = (s[8 + g % 4] >> (2 * (g / 4))) & 3;
      K.scale[g] = (low | (high << 4)) - 32;
      K.min[g] = 0;
    }
    // The high bit of weight e is bit e / 32 of hmask[e % 32]; a clear bit subtracts 4.
    for (int e = 0; e < kQKK; ++e)
      K.q[e] = q2_level(b[i].qs, e) - ((b[i].hmask[e % 32] >> (e / 32)) & 1 ? 0 : 4);
  });
}

// Q4_K / Q5_K: 8 sub-blocks of 32 (two groups of 16 each); weight 64·p + l is the low nibble of
// qs[32p + l] and weight 64·p + 32 + l its high nibble; Q5_K's bit 4 of weight 32·j + l is bit j
// of qh[l].
template <typename B>
void unpack_k4(const B& b, KQuant& K) {
  K.d = f16_to_f32(b.d);
  K.dmin = f16_to_f32(b.dmin);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    k4_scale_min(j, b.scales, sc, m);
    K.scale[2 * j] = K.scale[2 * j + 1] = sc;
    K.min[2 * j] = K.min[2 * j + 1] = m;
    for (int l = 0; l < 32; ++l) {
      int q = (b.qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0xF;
      if constexpr (sizeof(B) == sizeof(BlockQ5_K)) q |= ((b.qh[l] >> j) & 1) << 4;
      K.q[32 * j + l] = q;
    }
  }
}

float dot_q4_k(const void* w, const void* a, int64_t n) {
  const auto* b = static_cast<const BlockQ4_K*>(w);
  return dot_kquant(a, n, [b](int64_t i, KQuant& K) { unpack_k4(b[i], K); });
}

float dot_q5_k(const void* w, const void* a, int64_t n) {
  const auto* b = static_cast<const BlockQ5_K*>(w);
  return dot_kquant(a, n, [b](int64_t i, KQuant& K) { unpack_k4(b[i], K); });
}

// Q6_K: weight 128·h + 32·c + l has its low 4 bits in ql[64h + l + 32·(c % 2)] (low nibble for
// c < 2, high nibble otherwise) and its top 2 bits at bits 2c..2c+1 of qh[32h + l]; minus 32.
float dot_q6_k(const void* w, const void* a, int64_t n) {
  const auto* b = static_cast<const BlockQ6_K*>(w);
  return dot_kquant(a, n, [b](int64_t i, KQuant& K) {
    K.d = f16_to_f32(b[i].d);
    K.dmin = 0;
    for (int g = 0; g < 16; ++g) {
      K.scale[g] = b[i].scales[g];
      K.min[g] = 0;
    }
    for (int e = 0; e < kQKK; ++e) {
      const int h = e / 128, c = (e % 128) / 32, l = e % 32;
      const int lo = (b[i].ql[64 * h + l + 32 * (c % 2)] >> (c < 2 ? 0 : 4)) & 0xF;
      const int hi = (b[i].qh[32 * h + l] >> (2 * c)) & 3;
      K.q[e] = (lo | (hi << 4)) - 32;
    }
  });
}

}  // namespace ref

std::optional<DType> vec_dot_act_type(DType wtype) {
  switch (wtype) {
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q8_0:
      return DType::Q8_0;
    case DType::Q4_1:
    case DType::Q5_1:
      return DType::Q8_1;
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      return DType::Q8_K;
    default:
      return std::nullopt;
  }
}

void quantize_activations(DType act, const float* x, void* dst, int64_t n) {
  const int64_t bs = dtype_info(act).block_size;
  if (act != DType::Q8_0 && act != DType::Q8_1 && act != DType::Q8_K)
    fail("activations quantize to Q8_0, Q8_1 or Q8_K; got {}", dtype_name(act));
  if (n < 0 || n % bs != 0)
    fail("{} activations must be whole blocks of {} values; got {}", dtype_name(act), bs, n);
  if (act == DType::Q8_0) return ref::quantize_q8_0(x, dst, n);
  if (act == DType::Q8_1) return ref::quantize_q8_1(x, dst, n);
  ref::quantize_q8_k(x, dst, n);
}

float vec_dot(DType wtype, const void* w, const void* a, int64_t n) {
  if (!vec_dot_act_type(wtype)) fail("no integer dot product for {} weights", dtype_name(wtype));
  const int64_t bs = dtype_info(wtype).block_size;
  if (n < 0 || n % bs != 0)
    fail("{} rows must be whole blocks of {} values; got {}", dtype_name(wtype), bs, n);
  switch (wtype) {
    case DType::Q4_0:
      return ref::dot_q4_0(w, a, n);
    case DType::Q4_1:
      return ref::dot_q4_1(w, a, n);
    case DType::Q5_0:
      return ref::dot_q5_0(w, a, n);
    case DType::Q5_1:
      return ref::dot_q5_1(w, a, n);
    case DType::Q8_0:
      return ref::dot_q8_0(w, a, n);
    case DType::Q2_K:
      return ref::dot_q2_k(w, a, n);
    case DType::Q3_K:
      return ref::dot_q3_k(w, a, n);
    case DType::Q4_K:
      return ref::dot_q4_k(w, a, n);
    case DType::Q5_K:
      return ref::dot_q5_k(w, a, n);
    default:
      return ref::dot_q6_k(w, a, n);
  }
}

}  // namespace smoe::quant
