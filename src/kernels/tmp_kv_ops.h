// TEMPORARY (until the KV kernels land): scalar attention over f16 / q8_0 rows.
#pragma once
#include <cstdint>

#include "quant/blocks.h"
namespace smoe::tmpkv {
void scores_group_f16(const float* q, int g, const uint16_t* const* keys, int64_t n, int64_t hd,
                      float scale, float* scores, int64_t s_stride);
void wsum_group_f16(const float* p, int64_t p_stride, int g, const uint16_t* const* vals, int64_t n,
                    int64_t hd, float* out);
void scores_group_q8_0(const float* q, int g, const quant::BlockQ8_0* const* keys, int64_t n,
                       int64_t hd, float scale, float* scores, int64_t s_stride);
void wsum_group_q8_0(const float* p, int64_t p_stride, int g, const quant::BlockQ8_0* const* vals,
                     int64_t n, int64_t hd, float* out);
void to_f16(const float* x, uint16_t* y, int64_t n);
void to_q8_0(const float* x, quant::BlockQ8_0* y, int64_t n);
}  // namespace smoe::tmpkv
