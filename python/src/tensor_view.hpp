// DLPack arrays (numpy, torch, ... through nanobind) as gna::TensorView.
#pragma once

#include <nanobind/ndarray.h>

#include "gna/tensor.hpp"

namespace gna::python {

// Inputs are read only, so read-only numpy arrays are accepted too.
using InArray = nanobind::ndarray<nanobind::ro>;
using OutArray = nanobind::ndarray<>;

// A view of `array` (no copy). An invalid array (Python None) gives an
// undefined view. Throws gna::Error naming `name` for arrays gna cannot read.
TensorView view_of(const InArray& array, const char* name);
TensorView view_of(const OutArray& array, const char* name);

}  // namespace gna::python
