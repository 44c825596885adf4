// When the cpu backend's fp32 scores cannot be trusted, and what it does
// then. Scores are q . k in fp32: past ~3.4e38 they overflow (inputs near
// 1e19 suffice, in float32 or bfloat16), and long before that exp(s - lse)
// inherits the scores' rounding (relative error ~ |s| * 6e-8: 6e-5 at
// 1e3). The LSE of a row bounds its scores from above, so a forward whose
// LSE comes out non-finite or past 1e3, and a backward handed such an LSE,
// are recomputed by the reference backend (fp64 accumulation; it trusts a
// float32 LSE just as far). The check reads one float per query and head,
// not the outputs. Trained models' scores stay far below that.
#pragma once

#include "gna/tensor.hpp"

namespace gna::cpu {

// Whether every LSE value is below min(1e3, 1e30 * |scale|) (so that the
// unscaled products q . k stay inside fp32's range too) and none is NaN;
// -inf (a row without keys) is fine.
bool scores_fit_fp32(const TensorView& lse, double scale);

}  // namespace gna::cpu
