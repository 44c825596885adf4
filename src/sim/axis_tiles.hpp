// The simulator's per-axis walk. Tiles are boxes and visibility is an AND
// over axes, so every figure of a multi-axis tile pair is a product of
// per-axis figures; only per-axis tile ranges are ever iterated.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "core/window.hpp"
#include "gna/tiles.hpp"

namespace gna::sim::detail {

// Tiles of one axis that visit `visited` tiles of the other kind along it,
// `clean` of which need no mask along it (inside [0, m), every pair seen):
// for the forward, query tiles visiting KV tiles; for the backward, KV tiles
// visiting query tiles.
struct AxisLoad {
  int64_t visited = 0;
  int64_t clean = 0;
  int64_t count = 0;
};

// Dilation groups of one axis that share the in-group length m, and so every
// tile figure.
struct AxisGroups {
  int64_t length = 0;  // m
  int64_t groups = 0;  // how many dilation groups have this length
  std::vector<AxisLoad> loads;  // histogram over the query tiles of one group
  int64_t q_tiles() const;
};

// The most query (forward) or KV (backward) tiles one axis walk visits per
// group length; beyond it the walk refuses, naming the extent.
constexpr int64_t kMaxWalkTiles = int64_t{1} << 24;

std::vector<AxisGroups> axis_tiles(const window::Axis& axis, int64_t q_extent,
                                   int64_t kv_extent, KvTiling tiling);

// The backward's walk: per KV tile (grid of kv_extent), the query tiles
// (grid of q_extent) that see it (core/tile_walk.hpp).
std::vector<AxisGroups> backward_axis_tiles(const window::Axis& axis, int64_t q_extent,
                                            int64_t kv_extent);

// True when no KV tile of the forward walk along the axis needs the mask,
// stopping at the first that does; each query tile looked at costs one of
// `budget`, and a spent budget answers false (the caller reports it).
bool axis_mask_free(const window::Axis& axis, int64_t q_extent, int64_t kv_extent,
                    KvTiling tiling, int64_t& budget);

// True when no visited KV tile along the axis needs the mask.
bool axis_block_sparse(const std::vector<AxisGroups>& groups);

// (visited, clean) of a tile box -> number of such boxes. A box's visited and
// clean counts are the products of its axes' counts: a tile pair holds a
// visible pair iff each axis does, and needs no mask iff no axis does.
using LoadMap = std::map<std::pair<int64_t, int64_t>, int64_t>;
LoadMap combine_axes(const std::vector<std::vector<AxisGroups>>& axes);

}  // namespace gna::sim::detail
