// Overflow-checked sizes (issue 13): every count a problem implies stays
// within 2^62 or is a named gna::Error; visible_pairs' closed form agrees
// with the per-query sum; the scale bound; strides whose last offset
// overflows; check_only runs nothing.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "core/axes.hpp"
#include "core/checked.hpp"
#include "core/window.hpp"
#include "support.hpp"

namespace gna {
namespace {

// `call` throws gna::Error of kind value naming `argument`.
template <typename Call>
void expect_value_error(Call&& call, const std::string& argument, const std::string& text) {
  try {
    call();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::value) << e.what();
    EXPECT_EQ(e.argument(), argument) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    return;
  }
  ADD_FAILURE() << "no gna::Error naming " << argument;
}

Problem big_problem() {
  Problem p;
  p.params.rank = 2;
  p.extent[0] = p.extent[1] = 3037000500;  // product just past 2^63
  p.dtype = DType::f32;
  return p;
}

TEST(SizeRules, CheckedProductsNameTheArgument) {
  EXPECT_EQ(detail::checked_mul(int64_t{1} << 31, int64_t{1} << 31, "x", "y"), int64_t{1} << 62);
  expect_value_error([] { detail::checked_mul(int64_t{1} << 31, (int64_t{1} << 31) + 1, "x", "y"); },
                     "x", "exceeds 2^62");
  expect_value_error([] { detail::checked_add(int64_t{1} << 62, 1, "z", "w"); }, "z", "2^62");
  EXPECT_EQ(detail::checked_product({3, 0, int64_t{1} << 62, 5}, "x", "y"), 0);
  expect_value_error([] { detail::checked_product({4, int64_t{1} << 61}, "b", "bytes"); }, "b",
                     "bytes = 4 * 2305843009213693952");
}

TEST(SizeRules, CheckedOffsetNamesItsArgumentOnlyWhenItFails) {
  int named = 0;
  auto name = [&] {
    ++named;
    return std::string("t.stride[1]");
  };
  EXPECT_EQ(detail::checked_offset(5, 4, 7, name, "element offset"), 5 + 3 * 7);
  EXPECT_EQ(detail::checked_offset(0, 1, int64_t{1} << 62, name, "element offset"), 0);
  EXPECT_EQ(named, 0);
  // Each limit of checked_add(offset, checked_mul(extent - 1, stride)), and
  // the same message as those give.
  expect_value_error([&] { detail::checked_offset(0, 3, int64_t{1} << 62, name, "offset"); },
                     "t.stride[1]", "offset = 2 * 4611686018427387904 exceeds 2^62");
  expect_value_error([&] { detail::checked_offset(int64_t{1} << 62, 2, 1, name, "offset"); },
                     "t.stride[1]", "offset = 4611686018427387904 + 1 exceeds 2^62");
  EXPECT_EQ(named, 2);
}

TEST(SizeRules, TokenCountPastTwoToThe62IsNamed) {
  expect_value_error([] { validate(big_problem()); }, "extent", "3037000500 * 3037000500");
}

TEST(SizeRules, ElementsAndBytesPastTwoToThe62AreNamed) {
  Problem p;
  p.params.rank = 1;
  p.extent[0] = 1;
  p.head_dim = p.head_dim_v = 1;
  p.dtype = DType::f32;
  p.batch = int64_t{1} << 61;  // 2^61 elements fit, 2^63 bytes do not
  expect_value_error([&] { validate(p); }, "batch", "bytes");
  p.batch = int64_t{1} << 59;
  p.heads = p.kv_heads = 1;
  validate(p);  // 2^61 bytes: fine
  p.extra_kv = int64_t{1} << 10;
  expect_value_error([&] { validate(p); }, "additional_keys", "additional KV bytes");
}

TEST(SizeRules, ScaleBeyondTwoToThe64IsRefused) {
  Problem p = test::problem_of({8}, {{3}});
  p.params.scale = kMaxScale;
  validate(p);
  p.params.scale = -kMaxScale;
  validate(p);
  p.params.scale = kMaxScale * 1.0000001;
  expect_value_error([&] { validate(p); }, "scale", "2^64");
  p.params.scale = -1e300;
  expect_value_error([&] { validate(p); }, "scale", "overflow");
}

// Sum over the axis of keys_seen, the definition the closed form replaces.
int64_t pairs_by_loop(const Problem& p) {
  int64_t pairs = 1;
  for (int a = 0; a < p.rank(); ++a) {
    const window::Axis ax = detail::axis_of(p, a);
    int64_t sum = 0;
    for (int64_t i = 0; i < ax.length; ++i) sum += window::keys_seen(ax, i);
    pairs *= sum;
  }
  return pairs;
}

TEST(SizeRules, VisiblePairsClosedFormMatchesTheLoop) {
  std::mt19937_64 rng(13);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (int i = 0; i < 3000 && !HasFailure(); ++i) {
    Problem p;
    p.params.rank = static_cast<int>(uniform(1, 3));
    for (int a = 0; a < p.rank(); ++a) {
      const int64_t n = uniform(1, 40);
      AxisParams& ax = p.params.axis[a];
      ax.kernel_size = uniform(1, n);
      ax.dilation = uniform(1, n / ax.kernel_size);
      ax.stride = uniform(1, ax.kernel_size);
      ax.is_causal = uniform(0, 1) == 1;
      p.extent[a] = n;
    }
    validate(p);
    EXPECT_EQ(p.visible_pairs(), pairs_by_loop(p)) << p.describe();
  }
}

TEST(SizeRules, VisiblePairsOfHugeAxesAreCountedOrNamed) {
  Problem p;
  p.params.rank = 1;
  p.extent[0] = int64_t{1} << 40;
  p.params.axis[0] = AxisParams{5, 1, 1, true};  // causal: 1 + 2 + 3 + 4 + 5 (n - 4)
  p.head_dim = p.head_dim_v = 1;
  EXPECT_EQ(p.visible_pairs(), 10 + 5 * ((int64_t{1} << 40) - 4));
  p.params.rank = 2;
  p.extent[1] = int64_t{1} << 21;
  p.params.axis[1] = AxisParams{int64_t{1} << 21, 1, 1, false};
  expect_value_error([&] { p.visible_pairs(); }, "extent", "2^62");
}

TEST(SizeRules, StridedOffsetsPastTwoToThe62AreNamed) {
  Problem p = test::problem_of({4}, {{3}});
  p.head_dim = p.head_dim_v = 2;
  p.dtype = DType::f32;
  harness::Tensors t(p, Device{}, harness::Layout::contiguous);
  ForwardArgs args = t.forward_args();
  args.key.stride[1] = int64_t{1} << 61;  // 3 * 2^61 for the last token
  expect_value_error([&] { forward(p.params, args); }, "key.stride[1]", "element offset");
}

TEST(SizeRules, CheckOnlyChoosesTheBackendAndRunsNothing) {
  Problem p = test::problem_of({6}, {{3}});
  p.dtype = DType::f32;
  harness::Tensors t(p, Device{}, harness::Layout::contiguous);
  t.poison_outputs();
  Options o;
  o.backend = "reference";
  o.check_only = true;
  EXPECT_EQ(forward(p.params, t.forward_args(), o), "reference");
  EXPECT_EQ(backward(p.params, t.backward_args(), o), "reference");
  const TensorView out = t.view(harness::Tensors::o);
  const auto* bytes = static_cast<const unsigned char*>(out.data);
  EXPECT_EQ(bytes[0], 0xff);  // still the poison: nothing was written
  o.backend = "turbo";
  try {
    forward(p.params, t.forward_args(), o);
    ADD_FAILURE() << "check_only let an unknown backend through";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "backend");
  }
}

}  // namespace
}  // namespace gna
