// The result of `gna bench` and its text / JSON rendering.
#pragma once

#include <string>

#include "gna/problem.hpp"

namespace gna::cli {

struct BenchResult {
  Problem problem;
  std::string backend, device;
  bool backward = false;
  double median_ms = 0.0, min_ms = 0.0;
  int64_t iters = 0;
};

void print_bench(const BenchResult& result, bool json);

}  // namespace gna::cli
