// CTAs onto SMs: the placement both time models (forward, backward) share.
#pragma once

#include <cstdint>
#include <vector>

namespace gna::sim {

// `count` CTAs of `seconds` each.
struct CtaCost {
  double seconds = 0.0;
  int64_t count = 0;
};

// Time of the busiest SM when the CTAs are placed heaviest first, each
// bucket of equal CTAs spread over the least loaded SMs (one CTA per SM at a
// time): exact wave quantization for uniform work, LPT-like otherwise.
double makespan(std::vector<CtaCost> ctas, int sms);

}  // namespace gna::sim
