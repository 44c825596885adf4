// Tile shapes the fused kernels can load, shared by the forward and backward
// choosers.
#pragma once

#include <cstdint>
#include <vector>

#include "gna/problem.hpp"

namespace gna::sim {

using Extents = std::vector<int64_t>;

// Shapes of `tokens` (powers of two per axis) that TMA can load (extent *
// dilation <= max_tma_span on axes after the first, which the kernels split
// into boxes); of those, the ones no wider than an axis needs, unless that
// leaves none (a tiny problem still runs full tiles).
std::vector<Extents> tile_shapes(const Problem& p, int64_t tokens, int64_t max_tma_span);

}  // namespace gna::sim
