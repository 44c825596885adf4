// What the packed kernels receive: batch 1, Lq query and Lk key tokens cut
// into sequences by int32 device offsets, every tensor as Rows (rank 1:
// token[0] is the token stride). Built on the host by packed.cpp.
#pragma once

#include <cstdint>

#include "cuda/generic/params.hpp"

namespace gna::cuda_generic {

struct PackedShape {
  int64_t q_tokens = 0, k_tokens = 0;  // packed Lq, Lk
  int64_t heads = 1, kv_heads = 1, group = 1;
  int64_t head_dim = 1, head_dim_v = 1;
  float scale = 1.0f;
  bool causal = false;
  const int32_t* q_offsets = nullptr;  // sequences + 1 entries each
  const int32_t* k_offsets = nullptr;
  int64_t sequences = 1;
};

// `fatal` is written by the check kernel before the others run: nonzero
// when the offsets break a rule, and every output is then NaN.
struct PackedForwardParams {
  PackedShape shape;
  Rows q, k, v, o, lse;
  const int32_t* fatal = nullptr;
};

// The forward's tensors and O, LSE as inputs, then the gradients.
struct PackedBackwardParams : PackedForwardParams {
  Rows dout, dlse;  // inputs (dlse optional)
  Rows dq, dk, dv;  // outputs
};

// Row (token t, head h) of a [1, tokens, heads, dim] tensor.
GNA_HD int64_t packed_row(const Rows& r, int64_t t, int64_t h) {
  return t * r.token[0] + h * r.head;
}

}  // namespace gna::cuda_generic
