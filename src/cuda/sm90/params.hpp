// Parameters of the fused Hopper forward kernel, filled on the host
// (launch.cu) and read on the device. Plain data only.
#pragma once

#include <cstdint>

#include "core/window.hpp"

namespace gna::sm90 {

// Tiles are boxes with power-of-two extents per axis, so that the kernel
// maps a row or column of a tile to token offsets with shifts.
struct AxisGeometry {
  int32_t length = 1;     // n
  int32_t kernel = 1;     // k
  int32_t stride = 1;     // s
  int32_t dilation = 1;   // d
  int32_t causal = 0;
  int32_t q_log2 = 0;     // query tile extent is 1 << q_log2
  int32_t kv_log2 = 0;    // KV tile extent is 1 << kv_log2
  // Query tiles along this axis, over all dilation groups: the first
  // `big_groups` groups hold ceil(n/d) tokens and `tiles_big` tiles each,
  // the others floor(n/d) tokens and `tiles_small` tiles.
  int32_t big_groups = 0;
  int32_t tiles_big = 1;
  int32_t tiles_small = 1;
  int32_t tiles = 1;
};

// How the tiles of one axis are numbered over all its dilation groups: the
// first `big_groups` groups hold `tiles_big` tiles each, the others
// `tiles_small` (AxisGeometry holds the same for query tiles).
struct TileGrid {
  int32_t big_groups = 0;
  int32_t tiles_big = 1;
  int32_t tiles_small = 1;
  int32_t tiles = 1;
};

GNA_HD window::Axis window_axis(const AxisGeometry& g) {
  return window::Axis{g.length, g.kernel, g.stride, g.dilation, g.causal != 0};
}

// (group, tile within the group) of tile index u of a grid.
// Most axes have one group (dilation 1): u then lies in the first group, and
// the test saves the kernels two divisions per axis and work item.
GNA_HD void grid_cell(const TileGrid& g, int32_t u, int32_t& group, int32_t& tile) {
  const int32_t in_big = g.big_groups * g.tiles_big;
  const int32_t first = u < in_big ? 0 : g.big_groups;  // first group of u's kind
  const int32_t rest = u - (u < in_big ? 0 : in_big);
  const int32_t per_group = u < in_big ? g.tiles_big : g.tiles_small;
  if (rest < per_group) {
    group = first;
    tile = rest;
  } else {
    group = first + rest / per_group;
    tile = rest % per_group;
  }
}

// How a (head, batch) pair enters a tensor map's coordinates: the maps merge
// heads into the head-dim axis or batch into the outermost spatial axis when
// the strides allow, so that one launch covers every batch with 5-D maps.
struct MapCoords {
  int32_t head_in_c0 = 0;   // c0 += head * head_in_c0
  int32_t batch_in_c3 = 0;  // c3 += batch * batch_in_c3
  int32_t head_in_c4 = 0;   // c4 = head * head_in_c4 + batch * batch_in_c4
  int32_t batch_in_c4 = 0;
};

struct ForwardParams {
  AxisGeometry axis[3];
  int32_t q_tiles = 1;      // query tiles per (batch, head)
  int32_t items = 1;        // work items of the launch: q_tiles * heads * batches
  int32_t pingpong = 1;     // consumer warpgroups take turns issuing products
  int32_t heads = 1;
  int32_t group = 1;        // query heads per kv head
  int32_t extra_kv = 0;     // additional KV tokens
  int32_t fixed_grid = 0;   // KV tiles on a grid anchored at 0 instead of window start
  // A TMA box spans at most 256 elements per axis, dilation included; a tile
  // longer than that on axis 0 (rows there are outermost, so contiguous in
  // shared memory) is loaded as 1 << split_log2 boxes.
  int32_t q_split_log2 = 0;
  int32_t kv_split_log2 = 0;
  float scale_log2 = 1.0f;  // softmax scale * log2(e)
  // K and V have their own: with Dv != D a head is a different offset in
  // the head-dim axis of a map that merges heads into it.
  MapCoords q_coords, k_coords, v_coords, extra_k_coords, extra_v_coords;

  void* out = nullptr;           // [B, X0, X1, X2, H, Dv], unit stride in Dv
  int64_t out_stride[5] = {};    // batch, x0, x1, x2, head (elements)
  float* lse = nullptr;          // optional [B, X0, X1, X2, H]
  int64_t lse_stride[5] = {};
  // Instrumented runs only (tests): the kernel adds the KV tiles it visits
  // (additional KV included) and how many of them it masks, to compare with
  // the simulator's counts.
  unsigned long long* tile_counts = nullptr;
};

}  // namespace gna::sm90
