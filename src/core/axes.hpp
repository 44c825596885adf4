// Bridges a Problem to the per-axis window arithmetic.
#pragma once

#include "core/window.hpp"
#include "gna/problem.hpp"

namespace gna::detail {

inline window::Axis axis_of(const Problem& p, int a) {
  const AxisParams& ap = p.params.axis[a];
  return window::Axis{p.extent[a], ap.kernel_size, ap.stride, ap.dilation, ap.is_causal};
}

}  // namespace gna::detail
