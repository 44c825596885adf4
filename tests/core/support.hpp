// Helpers shared by the core tests: comparing tensors that two exact
// implementations produced, and small builders for problems.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include "gna/gna.hpp"
#include "harness/tensors.hpp"

namespace gna::test {

// Relative size of one unit in the last place of `dtype`. f64 gets more
// room than one ulp because the oracle and the reference sum in different
// orders; everything else is rounded once from an fp64 result.
inline double unit_roundoff(DType dtype) {
  switch (dtype) {
    case DType::f64: return 1e-12;
    case DType::f32: return std::ldexp(1.0, -23);
    case DType::f16: return std::ldexp(1.0, -10);
    case DType::bf16: return std::ldexp(1.0, -7);
  }
  return 0.0;
}

// Both sides accumulate in fp64 and round once to the tensor's dtype, so
// they may differ by one unit in the last place (two for slack), relative to
// the largest value (at least 1).
inline ::testing::AssertionResult same_up_to_rounding(const char* what, const TensorView& got,
                                                      const TensorView& want) {
  const harness::Difference d = harness::compare(got, want);
  const double tol = 2.0 * unit_roundoff(want.dtype) * std::max(1.0, d.ref_max);
  if (d.finite && d.max_abs <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": max |got - want| = " << d.max_abs << " > " << tol
         << (d.finite ? "" : " (got non-finite values)");
}

// The backends built into this library that run on CPU tensors, in the
// order `auto` tries them.
inline std::vector<std::string> cpu_backends() {
  std::vector<std::string> names;
  for (const std::string& n : backend_names()) {
    if (n == "cpu" || n == "reference") names.push_back(n);
  }
  return names;
}

// The backend `auto` picks for CPU tensors of `dtype`: the cpu backend when
// built, except for float64, which only the reference runs.
inline std::string auto_cpu_backend(DType dtype) {
  const std::vector<std::string> names = cpu_backends();
  return dtype != DType::f64 && names.front() == "cpu" ? "cpu" : "reference";
}

// Coordinates of token number t of a problem (row-major).
inline std::vector<int64_t> coords_of(const Problem& p, int64_t t) {
  std::vector<int64_t> x(p.rank());
  for (int a = p.rank() - 1; a >= 0; --a) {
    x[a] = t % p.extent[a];
    t /= p.extent[a];
  }
  return x;
}

// A problem with the given extents and one window per axis.
inline Problem problem_of(std::initializer_list<int64_t> extents,
                          std::initializer_list<AxisParams> axes) {
  Problem p;
  p.params.rank = static_cast<int>(extents.size());
  int a = 0;
  for (int64_t n : extents) p.extent[a++] = n;
  a = 0;
  for (const AxisParams& ax : axes) p.params.axis[a++] = ax;
  return p;
}

}  // namespace gna::test
