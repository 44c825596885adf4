// Addressing of heads-last tensors, shared by the CPU reference's forward and
// backward.
#pragma once

#include <cstdint>

#include "core/half.hpp"
#include "gna/problem.hpp"
#include "gna/tensor.hpp"

namespace gna::cpu {

// A [B, X0, (X1, (X2)), H, D] tensor (or [B, N, H, D] with rank 1) seen as
// rows of D elements.
struct RowView {
  const TensorView* t = nullptr;
  int rank = 1;

  int64_t row(int64_t b, const int64_t* x, int64_t h) const {
    int64_t off = b * t->stride[0] + h * t->stride[rank + 1];
    for (int a = 0; a < rank; ++a) off += x[a] * t->stride[1 + a];
    return off;
  }
  int64_t elem_stride() const { return t->stride[rank + 2]; }
  double load(int64_t row_offset, int64_t e) const {
    return detail::load_as_double(t->data, t->dtype, row_offset + e * elem_stride());
  }
  void store(int64_t row_offset, int64_t e, double v) const {
    detail::store_from_double(t->data, t->dtype, row_offset + e * elem_stride(), v);
  }
  void load_row(int64_t row_offset, int64_t n, double* out) const {
    for (int64_t e = 0; e < n; ++e) out[e] = load(row_offset, e);
  }
};

// Coordinates of token number t (row-major over the extents).
inline void token_coords(const Problem& p, int64_t t, int64_t* x) {
  for (int a = p.rank() - 1; a >= 0; --a) {
    x[a] = t % p.extent[a];
    t /= p.extent[a];
  }
}

}  // namespace gna::cpu
