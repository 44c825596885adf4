// Where a CTA's query tile lies and which KV tiles it visits, in the
// in-group coordinates of src/core/window.hpp (each dilation group is its own
// sub-problem). Producer and consumers derive the same KV sequence from this.
#pragma once

#include <cstdint>

#include "core/window.hpp"
#include "cuda/sm90/params.hpp"

namespace gna::sm90 {

// First tile index of dilation group `group` in a grid's numbering.
__device__ __forceinline__ int32_t grid_offset(const TileGrid& g, int32_t group) {
  return group < g.big_groups ? group * g.tiles_big
                              : g.big_groups * g.tiles_big + (group - g.big_groups) * g.tiles_small;
}

__device__ __forceinline__ TileGrid query_grid(const AxisGeometry& g) {
  return TileGrid{g.big_groups, g.tiles_big, g.tiles_small, g.tiles};
}

// q = u / d and r = u % d for u >= 0, d >= 1, without the division (dozens
// of instructions, per work item) where the quotient is known: d == 1 (an
// unused axis) or u < d (the outermost index).
__device__ __forceinline__ void split_index(int32_t u, int32_t d, int32_t& q, int32_t& r) {
  if (d == 1) {
    q = u;
    r = 0;
  } else if (u < d) {
    q = 0;
    r = u;
  } else {
    q = u / d;
    r = u - q * d;
  }
}

// (group, tile within the group) per axis of the query tile with linear
// index `index` (axis 0 outermost), in the numbering of the axes' query grids.
__device__ __forceinline__ void query_tile_cells(const AxisGeometry (&axis)[3], int32_t index,
                                                 int32_t (&group)[3], int32_t (&tile)[3]) {
  int32_t rest = index;
#pragma unroll
  for (int a = 2; a >= 0; --a) {
    int32_t cell;
    split_index(rest, axis[a].tiles, rest, cell);
    grid_cell(query_grid(axis[a]), cell, group[a], tile[a]);
  }
}

struct QueryTile {
  int32_t group[3];  // dilation group per axis
  int32_t first[3];  // in-group position of the tile's first query
  int32_t last[3];   // last in-group position that exists (tiles may stick out)
  int32_t length[3]; // tokens of the dilation group
};

// The KV tiles of one query tile: a grid of count[a] tiles per axis from
// start[a], and per axis the tile indices [full_lo, full_hi] whose every key
// every query of the tile sees (window::sees_all is monotone in the tile
// origin, so those indices form one range). Computed once per CTA, so that
// each step needs only compares.
struct KvWalk {
  int32_t start[3];
  int32_t count[3];
  int32_t full_lo[3];
  int32_t full_hi[3];
  int32_t total;  // product of count: neighborhood iterations
};

// Position of the current KV tile in the walk (axis 2 fastest).
struct KvCursor {
  int32_t i[3] = {0, 0, 0};

  __device__ __forceinline__ void advance(const KvWalk& w) {
    if (++i[2] < w.count[2]) return;
    i[2] = 0;
    if (++i[1] < w.count[1]) return;
    i[1] = 0;
    ++i[0];
  }
};

// Decodes the CTA's query tile from its linear index (axis 0 outermost).
__device__ __forceinline__ QueryTile query_tile(const ForwardParams& p, int32_t index) {
  QueryTile t;
  int32_t tile[3];
  query_tile_cells(p.axis, index, t.group, tile);
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    const AxisGeometry& g = p.axis[a];
    t.length[a] = static_cast<int32_t>(window::group_length(window_axis(g), t.group[a]));
    t.first[a] = tile[a] << g.q_log2;
    t.last[a] = min(t.first[a] + (1 << g.q_log2) - 1, t.length[a] - 1);
  }
  return t;
}

// KV tiles cover the union of the tile's windows, starting at its first key
// (window-start tiling) or at the grid line at or below it (fixed grid).
__device__ __forceinline__ KvWalk kv_walk(const ForwardParams& p, const QueryTile& t) {
  KvWalk w;
  w.total = 1;
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    const AxisGeometry& g = p.axis[a];
    const window::Axis ax = window_axis(g);
    const int32_t u = 1 << g.kv_log2;
    const window::Range keys = window::key_range_union(ax, t.first[a], t.last[a], t.length[a]);
    int32_t start = static_cast<int32_t>(keys.lo);
    if (p.fixed_grid) start = (start >> g.kv_log2) << g.kv_log2;
    w.start[a] = start;
    w.count[a] = (static_cast<int32_t>(keys.hi) - start + u) >> g.kv_log2;
    w.total *= w.count[a];
    // Tile i sees-all iff its first key >= the last query's first key and
    // its last key <= the first query's last key.
    const int32_t need_lo =
        static_cast<int32_t>(window::key_range(ax, t.last[a], t.length[a]).lo) - start;
    const int32_t need_hi =
        static_cast<int32_t>(window::key_range(ax, t.first[a], t.length[a]).hi) - start - u + 1;
    w.full_lo[a] = (need_lo + u - 1) >> g.kv_log2;  // need_lo >= 0: start <= union start
    w.full_hi[a] = need_hi >= 0 ? need_hi >> g.kv_log2 : -1;
  }
  return w;
}

// In-group origin of the KV tile at `c`.
__device__ __forceinline__ void kv_origin(const ForwardParams& p, const KvWalk& w,
                                          const KvCursor& c, int32_t (&origin)[3]) {
#pragma unroll
  for (int a = 0; a < 3; ++a) origin[a] = w.start[a] + (c.i[a] << p.axis[a].kv_log2);
}

// True when every query of the tile sees every key of the KV tile at `c`:
// no element mask needed. Out-of-range keys make it false.
__device__ __forceinline__ bool kv_tile_is_full(const KvWalk& w, const KvCursor& c) {
  bool full = true;
#pragma unroll
  for (int a = 0; a < 3; ++a) full = full && w.full_lo[a] <= c.i[a] && c.i[a] <= w.full_hi[a];
  return full;
}

}  // namespace gna::sm90
