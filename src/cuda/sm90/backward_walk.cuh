// Which keys a backward CTA owns and which query tiles it walks, in the
// in-group coordinates of src/core/window.hpp. Producer, consumers and dQ
// writer of one CTA derive the same step sequence from this (at D <= 64 the
// consumers read each step as the producer staged it instead).
//
// Neighborhood CTAs own one KV tile of one dilation group and walk, for each
// query head of their kv head's group, the box of query tiles that see it
// (core/tile_walk.hpp). In deterministic mode they are launched last tile
// first: a query tile's dQ pieces are added in decreasing KV tile order,
// which is then also launch order (no CTA waits on one that is not yet
// running) and roughly the order in which concurrent CTAs reach the query
// tile. Otherwise the longest walks go first (LaunchOrder).
// Additional-KV CTAs own 128 additional keys and one split of the flat run of
// (query head, query tile) steps; they come after, in launch order and in
// the dQ order.
#pragma once

#include <cstdint>

#include "core/tile_walk.hpp"
#include "cuda/sm90/backward_params.hpp"
#include "cuda/sm90/tile_map.cuh"

namespace gna::sm90 {

struct KvCta {
  bool extra;
  // Neighborhood CTAs:
  int32_t group[3];    // dilation group per axis
  int32_t tile[3];     // KV tile index within the group
  int32_t k0[3];       // in-group position of the first key
  int32_t length[3];   // tokens of the group
  int32_t first[3];    // query tiles walked per axis: [first, first + count)
  int32_t count[3];
  int32_t full_first[3], full_last[3];  // of those, the ones needing no mask
  int32_t per_head;    // query tiles per query head
  int32_t rotation;    // the walk starts at this step and wraps around
  // Additional-KV CTAs:
  int32_t extra_tile;  // which 128 additional keys
  int32_t split;
  int32_t first_step;  // into the flat run of (head, query tile) steps
  bool extra_full;     // all 128 keys exist
  int32_t steps;
};

__device__ __forceinline__ KvCta kv_cta(const BackwardParams& p, int32_t x) {
  KvCta c{};
  c.extra = x >= p.kv_tiles;
  if (c.extra) {
    const int32_t i = x - p.kv_tiles;
    c.extra_tile = i / p.extra_splits;
    c.split = i % p.extra_splits;
    c.first_step = c.split * p.extra_steps;
    c.steps = min(p.extra_steps, p.group * p.q_tiles - c.first_step);
    c.extra_full = (c.extra_tile + 1) * kBackwardKvTileTokens <= p.extra_kv;
    return c;
  }
  int32_t rest = p.deterministic ? p.kv_tiles - 1 - x : x;
  c.per_head = 1;
#pragma unroll
  for (int a = 2; a >= 0; --a) {
    const AxisGeometry& g = p.axis[a];
    const TileGrid& grid = p.kv_grid[a];
    int32_t u = rest % grid.tiles;
    rest /= grid.tiles;
    if (!p.deterministic && (p.order_of_cells.ordered_axes >> a & 1)) {
      u = p.order_of_cells.cell(a, u);
    }
    grid_cell(grid, u, c.group[a], c.tile[a]);
    const window::Axis ax = window_axis(g);
    c.length[a] = static_cast<int32_t>(window::group_length(ax, c.group[a]));
    c.k0[a] = c.tile[a] << g.kv_log2;
    const window::QueryTileSpan span =
        window::query_tiles_seeing(ax, c.k0[a], 1 << g.kv_log2, 1 << g.q_log2, c.length[a]);
    c.first[a] = static_cast<int32_t>(span.first);
    c.count[a] = static_cast<int32_t>(span.count());
    c.full_first[a] = static_cast<int32_t>(span.full_first);
    c.full_last[a] = static_cast<int32_t>(span.full_last);
    c.per_head *= c.count[a];
  }
  c.steps = p.group * c.per_head;
  // CTAs that share their query tiles (every KV tile of a stride block, in
  // the strided cases) would otherwise walk them in lockstep and reduce-add
  // into the same dQ tile at the same moment. Rotated walks spread them:
  // a large odd multiplier makes neighbouring tiles start far apart (evenly
  // for power-of-two step counts, where it is a permutation of the starts).
  // Deterministic mode walks in order (it adds in a fixed order).
  c.rotation = p.deterministic || c.steps == 0 ? 0 : static_cast<int32_t>((x * 40503ll) % c.steps);
  return c;
}

// One step of a CTA: a query tile of one query head.
struct Step {
  int32_t head;
  int32_t group[3];  // the query tile's dilation group per axis
  int32_t tile[3];   // its index within the group
  int32_t first[3];  // in-group position of its first query
  int32_t row_block; // (b * heads + head) * q_tiles + linear query tile: scratch rows
  bool full;         // no element mask needed
};

// first, full and row_block of a neighborhood CTA's step from its head and
// query tile per axis.
__device__ __forceinline__ void place_step(const BackwardParams& p, const KvCta& c, int32_t batch,
                                           Step& s) {
  s.full = true;
  int32_t linear = 0;
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    s.group[a] = c.group[a];
    s.first[a] = s.tile[a] << p.axis[a].q_log2;
    s.full = s.full && c.full_first[a] <= s.tile[a] && s.tile[a] <= c.full_last[a];
    const TileGrid grid = query_grid(p.axis[a]);
    linear = linear * grid.tiles + grid_offset(grid, s.group[a]) + s.tile[a];
  }
  s.row_block = (batch * p.heads + s.head) * p.q_tiles + linear;
}

__device__ __forceinline__ Step step_of(const BackwardParams& p, const KvCta& c, int32_t kv_head,
                                        int32_t batch, int32_t i) {
  Step s;
  if (c.extra) {
    const int32_t flat = c.first_step + i;
    s.head = kv_head * p.group + flat / p.q_tiles;
    const int32_t linear = flat % p.q_tiles;
    query_tile_cells(p.axis, linear, s.group, s.tile);
#pragma unroll
    for (int a = 0; a < 3; ++a) s.first[a] = s.tile[a] << p.axis[a].q_log2;
    s.full = c.extra_full;
    s.row_block = (batch * p.heads + s.head) * p.q_tiles + linear;
    return s;
  }
  const int32_t at = c.rotation == 0 ? i : (i + c.rotation) % c.steps;
  s.head = kv_head * p.group + at / c.per_head;
  int32_t rest = at % c.per_head;
#pragma unroll
  for (int a = 2; a >= 0; --a) {
    s.tile[a] = c.first[a] + rest % c.count[a];
    rest /= c.count[a];
  }
  place_step(p, c, batch, s);
  return s;
}

// The step after `s` (step i + 1 after step i), stepping the walk's query
// tiles like an odometer (axis 2 fastest, then the query head, wrapping to
// the first head for rotated walks) rather than dividing the step index as
// step_of does.
__device__ __forceinline__ Step next_step(const BackwardParams& p, const KvCta& c, int32_t kv_head,
                                          int32_t batch, int32_t i, Step s) {
  if (c.extra) return step_of(p, c, kv_head, batch, i + 1);
  bool wrap = true;
#pragma unroll
  for (int a = 2; a >= 0; --a) {
    if (wrap) {
      wrap = s.tile[a] + 1 == c.first[a] + c.count[a];
      s.tile[a] = wrap ? c.first[a] : s.tile[a] + 1;
    }
  }
  if (wrap) s.head = s.head + 1 == (kv_head + 1) * p.group ? kv_head * p.group : s.head + 1;
  place_step(p, c, batch, s);
  return s;
}

// Deterministic mode: how many contributions to this step's query tile come
// before this CTA's. KV tiles visiting a query tile form a box (the inverse
// walk); neighborhood CTAs add in decreasing lexicographic tile order, then
// the additional-KV CTAs in tile order.
__device__ __forceinline__ int32_t contribution_rank(const BackwardParams& p, const KvCta& c,
                                                     const Step& s) {
  int32_t rank = 0, visitors = 1;
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    const AxisGeometry& g = p.axis[a];
    const window::Axis ax = window_axis(g);
    const int64_t m = window::group_length(ax, s.group[a]);
    const window::Range kv = window::kv_tiles_seen_by(ax, s.first[a], 1 << g.q_log2, 1 << g.kv_log2, m);
    const int32_t size = static_cast<int32_t>(kv.size());
    if (!c.extra) rank = rank * size + static_cast<int32_t>(kv.hi) - c.tile[a];
    visitors *= size;
  }
  return c.extra ? visitors + c.extra_tile : rank;
}

}  // namespace gna::sm90
