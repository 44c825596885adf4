#include "cpu/overflow.hpp"

#include <algorithm>
#include <cmath>

namespace gna::cpu {

bool scores_fit_fp32(const TensorView& lse, double scale) {
  if (!lse.defined() || lse.numel() == 0) return true;
  const float limit = static_cast<float>(std::min(1e3, 1e30 * std::fabs(scale)));
  const float* base = static_cast<const float*>(lse.data);
  // Rows of the innermost axis (heads), any strides.
  int64_t idx[kMaxTensorDims] = {};
  const int last = lse.ndim - 1;
  for (;;) {
    int64_t off = 0;
    for (int i = 0; i < last; ++i) off += idx[i] * lse.stride[i];
    for (int64_t h = 0; h < lse.shape[last]; ++h) {
      const float v = base[off + h * lse.stride[last]];
      // Scores near a huge negative lse lose their digits too; -inf (a row
      // without keys) is fine, NaN fails the comparison.
      if (!(std::fabs(v) < limit) && v != -INFINITY) return false;
    }
    int d = last - 1;
    while (d >= 0 && ++idx[d] == lse.shape[d]) idx[d--] = 0;
    if (d < 0) return true;
  }
}

}  // namespace gna::cpu
