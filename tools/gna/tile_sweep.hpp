// gna bench --sweep N: time the sm90 kernel on the simulator's N best tile
// configurations, to calibrate the cost model and to check the chooser's
// pick against the best measured one.
#pragma once

#include <cstdint>

#include "gna/problem.hpp"
#include "harness/tensors.hpp"

namespace gna::cli {

int run_tile_sweep(const Problem& problem, const harness::Tensors& tensors, int64_t top,
                   int64_t iters, bool json);

}  // namespace gna::cli
