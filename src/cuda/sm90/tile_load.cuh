// TMA loads of token tiles shared by the forward and backward kernels: a
// tile is a box of the token grid inside one dilation group, read straight
// from the heads-last tensor through its map (tensor_maps.hpp).
#pragma once

#include <cuda.h>

#include <cstdint>

#include "cuda/sm90/params.hpp"
#include "cuda/sm90/ptx.cuh"

namespace gna::sm90 {

// Loads a tile of `rows` tokens whose axis-0 extent is `extent0` (in-group
// positions), as 1 << split_log2 boxes along axis 0 times the head-dim chunks
// of `Rows` (a HeadDimRows, or a kernel config with the same members).
template <class Rows>
__device__ void load_box(const CUtensorMap* map, const MapCoords& mc, uint64_t* bar, uint8_t* dst,
                         int rows, int32_t extent0, int32_t dilation0, int32_t split_log2,
                         int32_t x0, int32_t x1, int32_t x2, int32_t head, int32_t batch) {
  const int32_t box_rows = rows >> split_log2;
  const int32_t box_step = (extent0 >> split_log2) * dilation0;
  for (int32_t b = 0; b < (1 << split_log2); ++b) {
#pragma unroll
    for (int c = 0; c < Rows::kChunks; ++c) {
      tma_load_5d(map, bar, dst + (c * rows + b * box_rows) * Rows::kRowBytes,
                  c * Rows::kChunk + head * mc.head_in_c0, x2, x1,
                  x0 + b * box_step + batch * mc.batch_in_c3,
                  head * mc.head_in_c4 + batch * mc.batch_in_c4);
    }
  }
}

// Absolute coordinate of in-group position `pos` of group `group` on an axis.
__device__ __forceinline__ int32_t absolute(const AxisGeometry& g, int32_t group, int32_t pos) {
  return group + g.dilation * pos;
}

}  // namespace gna::sm90
