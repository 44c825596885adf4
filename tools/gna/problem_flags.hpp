// The options that describe a neighborhood, shared by mask, bench and sim:
// --shape 13x9 --window 5x3 --stride 2x1 --dilation 2x1 --causal 1x0.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "gna/problem.hpp"
#include "gna/tiles.hpp"

namespace gna::cli {

std::vector<Option> window_options();

// A Problem with rank, extents and window parameters from the options; a
// single value for --window/--stride/--dilation/--causal applies to every
// axis. Other fields keep their defaults. Checks the window rules.
Problem window_problem(const Command& cmd, const std::string& default_shape,
                       const std::string& default_window);

// --q-tile, --kv-tile, --kv-tiling: an explicit tile configuration.
std::vector<Option> tile_options();

// "static" (fixed grid) or "dynamic" (window start) for --kv-tiling.
KvTiling parse_tiling(const std::string& text);

// The tiles the user named, if any; --q-tile and --kv-tile come together.
std::optional<TileConfig> given_tiles(const Command& cmd, int rank);

// f16 / bf16 / f32 / f64 (and their long names) for --dtype.
DType parse_dtype(const std::string& text);

}  // namespace gna::cli
