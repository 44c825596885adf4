// The simulator's per-axis walk. Tiles are boxes and visibility is an AND
// over axes, so every figure of a multi-axis tile pair is a product of
// per-axis figures; only per-axis tile ranges are ever iterated.
#pragma once

#include <cstdint>
#include <vector>

#include "core/window.hpp"
#include "gna/tiles.hpp"

namespace gna::sim::detail {

// Query tiles of one axis that visit `visited` KV tiles along it, `clean` of
// which need no mask along it (inside [0, m), seen by every query).
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

std::vector<AxisGroups> axis_tiles(const window::Axis& axis, int64_t q_extent,
                                   int64_t kv_extent, KvTiling tiling);

// True when no visited KV tile along the axis needs the mask.
bool axis_block_sparse(const std::vector<AxisGroups>& groups);

}  // namespace gna::sim::detail
