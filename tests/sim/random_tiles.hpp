// Random small problems and tile configurations for the simulator's tests.
#pragma once

#include <random>

#include "gna/problem.hpp"
#include "gna/tiles.hpp"

namespace gna::simtest {

// Up to 400 tokens; every window parameter, partial tiles, extra KV.
Problem random_small_problem(std::mt19937_64& rng);

// Extents 1..6 per axis (sometimes wider than the axis), either tiling.
TileConfig random_tiles(std::mt19937_64& rng, int rank);

}  // namespace gna::simtest
