#include "cpu/overflow.hpp"

#include <algorithm>
#include <cmath>

#include "cpu/rows.hpp"

namespace gna::cpu {

bool scores_fit_fp32(const TensorView& lse, double scale) {
  const float limit = static_cast<float>(std::min(1e3, 1e30 * std::fabs(scale)));
  const float* base = static_cast<const float*>(lse.data);
  return for_each_element(lse, [&](int64_t off) {
    // Scores near a huge negative lse lose their digits too; -inf (a row
    // without keys) is fine, NaN fails the comparison.
    const float v = base[off];
    return std::fabs(v) < limit || v == -INFINITY;
  });
}

}  // namespace gna::cpu
