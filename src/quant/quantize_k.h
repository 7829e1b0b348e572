// The k-quant reference quantizers behind quantize_row (nb super-blocks of 256 values each).
#pragma once

#include <cstdint>

#include "quant/blocks.h"

namespace smoe::quant {

void quantize_q2_k(const float* x, BlockQ2_K* b, int64_t nb);
void quantize_q3_k(const float* x, BlockQ3_K* b, int64_t nb);
void quantize_q4_k(const float* x, BlockQ4_K* b, int64_t nb);
void quantize_q5_k(const float* x, BlockQ5_K* b, int64_t nb);
void quantize_q6_k(const float* x, BlockQ6_K* b, int64_t nb);

}  // namespace smoe::quant
