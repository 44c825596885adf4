// The randomized sweep of problems the reference is checked against the
// brute-force oracle on. Unlike harness::random_problem it labels what each
// case covers, so a test can prove the sweep covers every parameter.
#pragma once

#include <random>
#include <set>
#include <string>

#include "gna/problem.hpp"
#include "harness/tensors.hpp"

namespace gna::test {

struct SweepCase {
  Problem problem;
  harness::Layout layout = harness::Layout::contiguous;
  uint64_t seed = 0;
  std::set<std::string> covers;  // "even window", "GQA", "bfloat16", ...
  std::string describe() const;
};

// Case `index` of the sweep drawn from `seed`. Dtypes and layouts cycle
// with the index so every pair appears; the rest is random, with extents
// kept small enough for the dense oracle.
SweepCase sweep_case(uint64_t seed, int index);

// Every label a full sweep must cover.
const std::set<std::string>& required_coverage();

}  // namespace gna::test
