// The options that describe a neighborhood, shared by mask, bench and sim:
// --shape 13x9 --window 5x3 --stride 2x1 --dilation 2x1 --causal 1x0.
#pragma once

#include <string>
#include <vector>

#include "cli.hpp"
#include "gna/problem.hpp"

namespace gna::cli {

std::vector<Option> window_options();

// A Problem with rank, extents and window parameters from the options; a
// single value for --window/--stride/--dilation/--causal applies to every
// axis. Other fields keep their defaults. Checks the window rules.
Problem window_problem(const Command& cmd, const std::string& default_shape,
                       const std::string& default_window);

}  // namespace gna::cli
