// TMA tensor maps over the caller's heads-last tensors. The kernel loads
// boxes of tokens (a query or KV tile) straight from [B, X0, X1, X2, H, D]
// memory; dilation becomes the TMA traversal stride, so no token is ever
// reordered or copied.
#pragma once

#include <cuda.h>

#include <cstdint>

#include "cuda/sm90/params.hpp"
#include "cuda/sm90/ptx_types.hpp"
#include "gna/tensor.hpp"

namespace gna::sm90 {

struct MapRequest {
  const TensorView* tensor = nullptr;
  int rank = 1;               // spatial rank of the view (1 for additional KV)
  int chunk = 64;             // head-dim elements per box row
  Swizzle swizzle = Swizzle::b128;
  int64_t box[3] = {1, 1, 1};       // tokens per kernel axis (axis 0 outermost)
  int64_t dilation[3] = {1, 1, 1};  // TMA traversal stride per axis
  bool per_batch = false;     // map covers one batch element: `batch`
  int64_t batch = 0;
};

// Heads and head dim are one contiguous run: they merge into one map axis.
bool heads_merge(const TensorView& t, int rank);
// Batch continues the outermost spatial axis: they merge into one map axis.
bool batch_merges(const TensorView& t, int rank);

// Encodes the map and says how (head, batch) enter its coordinates.
CUtensorMap encode_map(const MapRequest& request, MapCoords* coords);

}  // namespace gna::sm90
