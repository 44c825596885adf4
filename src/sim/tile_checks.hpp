// Input rules for a tile configuration against a problem.
#pragma once

#include "gna/problem.hpp"
#include "gna/tiles.hpp"

namespace gna::sim {

// Throws gna::Error naming the field when the tiles do not fit the problem.
void check_tiles(const Problem& problem, const TileConfig& tiles);

}  // namespace gna::sim
