// Shared by attention.cu and fourier_attention.cu: argument checks and the split-K plan.
#pragma once

#include <cstdint>

#include "kernels/backend.h"

namespace kvscope::kernels::cuda {

struct DecodeSplit {
  int64_t splits = 1;
  int64_t rows_per_split = 1;  // a multiple of the 64-token tile
};
// Splits `rows` tokens of each of `heads` (batch x kv head) so that the blocks fill one wave of
// `slots` (SMs x resident blocks per SM) as closely as possible (a partial second wave would
// cost as much as a full one), each block at least 4 tiles long.
DecodeSplit decode_split(int64_t heads, int64_t rows, int64_t slots);

void check_attention(const AttentionArgs& a);

}  // namespace kvscope::kernels::cuda
