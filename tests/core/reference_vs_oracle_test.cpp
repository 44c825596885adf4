// The reference backend against the independent brute-force oracle
// (tools/harness/oracle.cpp, a dense masked softmax built straight from the
// wording of docs/semantics.md) on a randomized sweep of every parameter, dtype
// and memory layout.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <vector>

#include "harness/oracle.hpp"
#include "support.hpp"
#include "sweep.hpp"

namespace gna {
namespace {

using harness::Tensors;
using test::coords_of;

constexpr int kSweepCases = 192;  // a multiple of 16: every dtype x layout pair, several times
constexpr uint64_t kForwardSeed = 11, kBackwardSeed = 12;

Options reference_only() {
  Options o;
  o.backend = "reference";
  return o;
}

void check_forward(const test::SweepCase& c) {
  const Problem& p = c.problem;
  std::mt19937_64 rng(c.seed);
  Tensors want(p, Device{}, c.layout);
  want.randomize_inputs(rng);
  Tensors got(p, Device{}, c.layout);
  got.copy_from(want);  // same inputs, outputs still poisoned
  harness::oracle_forward(p, want.forward_args());
  EXPECT_EQ(forward(p.params, got.forward_args(), reference_only()), "reference");
  EXPECT_TRUE(test::same_up_to_rounding("output", got.view(Tensors::o), want.view(Tensors::o)));
  EXPECT_TRUE(test::same_up_to_rounding("lse", got.view(Tensors::lse), want.view(Tensors::lse)));
}

// A gradient flowing into LSE, in a padded (non-contiguous) layout.
struct GradLse {
  std::vector<float> memory;
  TensorView view;

  GradLse(const Problem& p, std::mt19937_64& rng) {
    view.dtype = DType::f32;
    view.ndim = p.rank() + 2;
    view.shape[0] = p.batch;
    for (int a = 0; a < p.rank(); ++a) view.shape[1 + a] = p.extent[a];
    view.shape[p.rank() + 1] = p.heads;
    int64_t step = 3;  // every element 3 apart
    for (int i = view.ndim - 1; i >= 0; --i) {
      view.stride[i] = step;
      step *= view.shape[i];
    }
    memory.resize(static_cast<size_t>(step));
    std::uniform_real_distribution<float> value(-1.0f, 1.0f);
    for (float& x : memory) x = value(rng);
    view.data = memory.data();
  }
};

void check_backward(const test::SweepCase& c, bool with_grad_lse) {
  const Problem& p = c.problem;
  std::mt19937_64 rng(c.seed);
  Tensors want(p, Device{}, c.layout);
  want.randomize_inputs(rng);
  harness::oracle_forward(p, want.forward_args());  // O and LSE both sides read
  Tensors got(p, Device{}, c.layout);
  got.copy_from(want);  // gradients still poisoned on both sides
  GradLse grad_lse(p, rng);

  BackwardArgs want_args = want.backward_args(), got_args = got.backward_args();
  if (with_grad_lse) want_args.grad_lse = got_args.grad_lse = grad_lse.view;
  harness::oracle_backward(p, want_args);
  EXPECT_EQ(backward(p.params, got_args, reference_only()), "reference");
  for (Tensors::Slot s : {Tensors::dq, Tensors::dk, Tensors::dv, Tensors::dxk, Tensors::dxv}) {
    if (!want.view(s).defined()) continue;
    EXPECT_TRUE(test::same_up_to_rounding(harness::slot_name(s), got.view(s), want.view(s)));
  }
}

TEST(ReferenceVsOracle, SweepCoversEveryParameter) {
  for (uint64_t seed : {kForwardSeed, kBackwardSeed}) {
    std::set<std::string> seen;
    for (int i = 0; i < kSweepCases; ++i) {
      const test::SweepCase c = test::sweep_case(seed, i);
      seen.insert(c.covers.begin(), c.covers.end());
    }
    for (const std::string& label : test::required_coverage()) {
      EXPECT_TRUE(seen.count(label)) << "sweep " << seed << " never covers: " << label;
    }
  }
}

TEST(ReferenceVsOracle, Forward) {
  for (int i = 0; i < kSweepCases; ++i) {
    const test::SweepCase c = test::sweep_case(kForwardSeed, i);
    SCOPED_TRACE("case " + std::to_string(i) + ": " + c.describe());
    check_forward(c);
    if (HasFailure()) return;  // one clear report beats a hundred
  }
}

TEST(ReferenceVsOracle, Backward) {
  for (int i = 0; i < kSweepCases; ++i) {
    const test::SweepCase c = test::sweep_case(kBackwardSeed, i);
    const bool with_grad_lse = i % 5 != 0;
    SCOPED_TRACE("case " + std::to_string(i) + ": " + c.describe() +
                 (with_grad_lse ? " with grad_lse" : ""));
    check_backward(c, with_grad_lse);
    if (HasFailure()) return;
  }
}

// gna::neighborhood lists keys in row-major order; so does a mask row.
TEST(ReferenceVsOracle, NeighborhoodEqualsOracleMaskRows) {
  for (uint64_t seed : {kForwardSeed, kBackwardSeed, uint64_t{13}}) {
    for (int i = 0; i < kSweepCases; ++i) {
      const Problem p = test::sweep_case(seed, i).problem;
      SCOPED_TRACE(p.describe());
      const std::vector<bool> mask = harness::oracle_mask(p);
      const int64_t T = p.tokens();
      for (int64_t t = 0; t < T; ++t) {
        std::vector<std::vector<int64_t>> expected;
        for (int64_t j = 0; j < T; ++j) {
          if (mask[t * T + j]) expected.push_back(coords_of(p, j));
        }
        ASSERT_EQ(neighborhood(p, coords_of(p, t)), expected) << "query token " << t;
      }
    }
  }
}

}  // namespace
}  // namespace gna
