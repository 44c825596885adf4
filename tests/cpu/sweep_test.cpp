// The cpu backend against the reference on the randomized sweeps the other
// backends run: the core sweep with the seeds the reference is checked
// against the oracle on (tests/core: its labels prove it covers every
// parameter) and the random problems of `gna check`
// (harness::spec_for_backend), in every memory layout.
#include <random>
#include <string>

#include "core/sweep.hpp"
#include "cpu_test.hpp"

namespace gna::cpu_test {
namespace {

constexpr int kCoreCases = 192;  // the core sweep's size: every dtype x layout, several times
constexpr int kRandomCases = 120;

// The core sweep holds float64 cases, which the cpu backend refuses; the
// same problem then runs in float32, so every drawn geometry is checked.
Problem runnable(Problem p) {
  if (p.dtype == DType::f64) p.dtype = DType::f32;
  return p;
}

TEST(CpuSweep, CoreSweepForward) {
  for (int i = 0; i < kCoreCases; ++i) {
    const test::SweepCase c = test::sweep_case(11, i);
    SCOPED_TRACE("case " + std::to_string(i));
    expect_matches_reference(runnable(c.problem), Pass::forward, c.layout, false, c.seed);
    if (HasFailure()) return;  // one clear report beats a hundred
  }
}

TEST(CpuSweep, CoreSweepBackward) {
  for (int i = 0; i < kCoreCases; ++i) {
    const test::SweepCase c = test::sweep_case(12, i);
    SCOPED_TRACE("case " + std::to_string(i));
    expect_matches_reference(runnable(c.problem), Pass::backward, c.layout, i % 5 != 0, c.seed);
    if (HasFailure()) return;
  }
}

TEST(CpuSweep, CheckProblems) {
  std::mt19937_64 rng(23);
  const harness::RandomSpec spec = harness::spec_for_backend("cpu");
  for (int i = 0; i < kRandomCases; ++i) {
    const Problem p = harness::random_problem(rng, spec);
    const harness::Layout layout = harness::random_layout(rng, true);
    SCOPED_TRACE("case " + std::to_string(i));
    expect_matches_reference(p, Pass::forward, layout, false, rng());
    expect_matches_reference(p, Pass::backward, layout, i % 2 == 0, rng());
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace gna::cpu_test
