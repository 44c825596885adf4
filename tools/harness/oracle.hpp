// A brute-force oracle, independent of src/core/window.hpp: it builds the
// full boolean mask straight from the rules of docs/semantics.md and
// runs dense masked softmax attention in fp64. The reference backend is
// checked against it; everything else is checked against the reference.
#pragma once

#include <vector>

#include "gna/attention.hpp"

namespace gna::harness {

// The T x T mask of a problem (T = spatial tokens), row-major, query-major.
std::vector<bool> oracle_mask(const Problem& problem);

// Dense forward and backward on host tensors (any layout, any dtype). The
// backward reads O and LSE from its arguments, as the definition says.
void oracle_forward(const Problem& problem, const ForwardArgs& args);
void oracle_backward(const Problem& problem, const BackwardArgs& args);

}  // namespace gna::harness
