// Tile configurations the sm90 kernel can run: 128 query tokens and 128 (64
// for head dim 256) keys per tile, arranged as boxes with power-of-two
// extents per axis; TMA limits a box to 256 elements per axis including the
// dilation (extent * dilation <= 256), except on axis 0, which the kernel
// loads as several boxes when needed. The simulator's chooser
// (gna/sim.hpp) picks among these.
#pragma once

#include <string>

#include "gna/problem.hpp"
#include "gna/tiles.hpp"

namespace gna::sm90 {

// Why the forward kernel cannot run `tiles` for `problem` ("" when it can).
std::string tile_error(const Problem& problem, const TileConfig& tiles);

// The same for the backward kernel: query tiles of 64 (head dim 128) or 128
// tokens, KV tiles of 128, and the same extent rules.
std::string backward_tile_error(const Problem& problem, const TileConfig& tiles);

}  // namespace gna::sm90
