// Shared by the cpu backend's tests: one case run through the cpu backend
// and the reference (harness::run_case: same random inputs, poisoned
// outputs, tolerances per dtype), with a failure report that says how to
// reproduce it.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/support.hpp"
#include "harness/check.hpp"

namespace gna::cpu_test {

// Runs one case; fails the test when the cpu backend refuses it or
// disagrees with the reference beyond the dtype's tolerance.
void expect_matches_reference(const Problem& p, Pass pass,
                              harness::Layout layout = harness::Layout::contiguous,
                              bool grad_lse = false, uint64_t seed = 1);

// Forward, backward and backward with a gradient into LSE, per dtype.
void expect_all_passes(Problem p, std::initializer_list<DType> dtypes = {DType::f32, DType::f16,
                                                                          DType::bf16},
                       harness::Layout layout = harness::Layout::contiguous);

// Options that pick the backend `name`.
inline Options on(const std::string& name, int threads = 0) {
  Options o;
  o.backend = name;
  o.threads = threads;
  return o;
}

// One axis of a problem: kernel, stride, dilation, causal.
inline AxisParams axis(int64_t kernel, int64_t stride = 1, int64_t dilation = 1,
                       bool causal = false) {
  return AxisParams{kernel, stride, dilation, causal};
}

// A problem of the given extents and axes with batch 1, 2 heads on one kv
// head, D = Dv = 32.
Problem problem(std::initializer_list<int64_t> extents, std::initializer_list<AxisParams> axes);

}  // namespace gna::cpu_test
