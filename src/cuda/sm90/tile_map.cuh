// Where a CTA's query tile lies and which KV tiles it visits, in the
// in-group coordinates of src/core/window.hpp (each dilation group is its own
// sub-problem). Producer and consumers derive the same KV sequence from this.
#pragma once

#include <cstdint>

#include "core/window.hpp"
#include "cuda/sm90/params.hpp"

namespace gna::sm90 {

__device__ __forceinline__ window::Axis window_axis(const AxisGeometry& g) {
  return window::Axis{g.length, g.kernel, g.stride, g.dilation, g.causal != 0};
}

struct QueryTile {
  int32_t group[3];  // dilation group per axis
  int32_t first[3];  // in-group position of the tile's first query
  int32_t last[3];   // last in-group position that exists (tiles may stick out)
  int32_t length[3]; // tokens of the dilation group
};

struct KvPlan {
  int32_t start[3];  // in-group position of the first KV tile per axis
  int32_t count[3];  // KV tiles per axis
  int32_t total;     // product of count: neighborhood iterations
};

// Decodes the CTA's query tile from its linear index (axis 0 outermost).
__device__ __forceinline__ QueryTile query_tile(const ForwardParams& p, int32_t index) {
  QueryTile t;
  int32_t rest = index;
#pragma unroll
  for (int a = 2; a >= 0; --a) {
    const AxisGeometry& g = p.axis[a];
    const int32_t u = rest % g.tiles;
    rest /= g.tiles;
    const int32_t in_big = g.big_groups * g.tiles_big;
    int32_t group, tile;
    if (u < in_big) {
      group = u / g.tiles_big;
      tile = u % g.tiles_big;
    } else {
      group = g.big_groups + (u - in_big) / g.tiles_small;
      tile = (u - in_big) % g.tiles_small;
    }
    const window::Axis ax = window_axis(g);
    t.group[a] = group;
    t.length[a] = static_cast<int32_t>(window::group_length(ax, group));
    t.first[a] = tile << g.q_log2;
    t.last[a] = min(t.first[a] + (1 << g.q_log2) - 1, t.length[a] - 1);
  }
  return t;
}

// KV tiles cover the union of the tile's windows, starting at its first key
// (window-start tiling) or at the grid line at or below it (fixed grid).
__device__ __forceinline__ KvPlan kv_plan(const ForwardParams& p, const QueryTile& t) {
  KvPlan plan;
  plan.total = 1;
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    const AxisGeometry& g = p.axis[a];
    const window::Range keys =
        window::key_range_union(window_axis(g), t.first[a], t.last[a], t.length[a]);
    int32_t start = static_cast<int32_t>(keys.lo);
    if (p.fixed_grid) start = (start >> g.kv_log2) << g.kv_log2;
    const int32_t span = static_cast<int32_t>(keys.hi) - start + 1;
    plan.start[a] = start;
    plan.count[a] = (span + (1 << g.kv_log2) - 1) >> g.kv_log2;
    plan.total *= plan.count[a];
  }
  return plan;
}

// In-group origin of neighborhood KV tile number `it` (axis 2 fastest).
__device__ __forceinline__ void kv_origin(const ForwardParams& p, const KvPlan& plan, int32_t it,
                                          int32_t (&origin)[3]) {
#pragma unroll
  for (int a = 2; a >= 0; --a) {
    origin[a] = plan.start[a] + ((it % plan.count[a]) << p.axis[a].kv_log2);
    it /= plan.count[a];
  }
}

// True when every query of the tile sees every key of the KV tile at
// `origin`: no element mask needed. Out-of-range keys make it false.
__device__ __forceinline__ bool kv_tile_is_full(const ForwardParams& p, const QueryTile& t,
                                                const int32_t (&origin)[3]) {
  bool full = true;
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    const int32_t last_key = origin[a] + (1 << p.axis[a].kv_log2) - 1;
    full = full && window::sees_all(window_axis(p.axis[a]), t.first[a], t.last[a], origin[a],
                                    last_key, t.length[a]);
  }
  return full;
}

}  // namespace gna::sm90
