// The reference backward against finite differences of the reference
// forward, in float64: loss = sum(O * R) + sum(LSE * r) with random R, r, so
// the gradient flowing into LSE is exercised too.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "support.hpp"

namespace gna {
namespace {

using harness::Tensors;

class Loss {
 public:
  explicit Loss(const Problem& p) : p_(p), t_(p, Device{}, harness::Layout::contiguous) {
    std::mt19937_64 rng(99);
    t_.randomize_inputs(rng);  // also fills R (the grad_output slot)
    const int64_t rows = p.batch * p.tokens() * p.heads;
    grad_lse_.resize(static_cast<size_t>(rows));
    std::uniform_real_distribution<float> value(-1.0f, 1.0f);
    for (float& x : grad_lse_) x = value(rng);
    lse_view_ = t_.view(Tensors::lse);
    lse_view_.data = grad_lse_.data();
  }

  Tensors& tensors() { return t_; }

  double operator()() {
    forward(p_.params, t_.forward_args(), options());
    const double* o = as_doubles(Tensors::o);
    const double* r = as_doubles(Tensors::dout);
    const float* lse = static_cast<const float*>(t_.view(Tensors::lse).data);
    double loss = 0.0;
    for (int64_t i = 0; i < t_.view(Tensors::o).numel(); ++i) loss += o[i] * r[i];
    for (size_t i = 0; i < grad_lse_.size(); ++i) loss += double(lse[i]) * grad_lse_[i];
    return loss;
  }

  // Analytic gradients into the grad slots.
  void backward_pass() {
    (*this)();
    BackwardArgs args = t_.backward_args();
    args.grad_lse = lse_view_;
    backward(p_.params, args, options());
  }

  double* as_doubles(Tensors::Slot s) { return static_cast<double*>(t_.view(s).data); }

 private:
  static Options options() {
    Options o;
    o.backend = "reference";
    return o;
  }
  Problem p_;
  Tensors t_;
  std::vector<float> grad_lse_;
  TensorView lse_view_;
};

// Five-point central difference: truncation error O(h^4), so h can be large
// enough that the fp32 rounding of LSE stays far below the tolerance.
void expect_gradient_matches(Loss& loss, Tensors::Slot input, Tensors::Slot grad) {
  const double h = 1e-2;
  double* x = loss.as_doubles(input);
  const double* g = loss.as_doubles(grad);
  const int64_t n = loss.tensors().view(input).numel();
  ASSERT_GT(n, 0);
  double worst = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double saved = x[i];
    auto at = [&](double dx) {
      x[i] = saved + dx;
      return loss();
    };
    const double numeric =
        (8.0 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12.0 * h);
    x[i] = saved;
    const double error = std::fabs(numeric - g[i]);
    worst = std::max(worst, error);
    ASSERT_NEAR(g[i], numeric, 2e-4) << harness::slot_name(grad) << " element " << i;
  }
  ::testing::Test::RecordProperty(harness::slot_name(grad), std::to_string(worst));
}

void check_all_gradients(const Problem& p) {
  SCOPED_TRACE(p.describe());
  Loss loss(p);
  loss.backward_pass();
  expect_gradient_matches(loss, Tensors::q, Tensors::dq);
  expect_gradient_matches(loss, Tensors::k, Tensors::dk);
  expect_gradient_matches(loss, Tensors::v, Tensors::dv);
  if (p.extra_kv > 0) {
    expect_gradient_matches(loss, Tensors::xk, Tensors::dxk);
    expect_gradient_matches(loss, Tensors::xv, Tensors::dxv);
  }
}

TEST(FiniteDifferences, TwoDimensionalGqaWithAdditionalKv) {
  Problem p = test::problem_of({5, 4}, {{3, 2, 1, false}, {2, 1, 2, true}});
  p.batch = 1;
  p.heads = 4;
  p.kv_heads = 2;
  p.head_dim = 3;
  p.head_dim_v = 2;
  p.extra_kv = 2;
  p.dtype = DType::f64;
  check_all_gradients(p);
}

TEST(FiniteDifferences, CausalMqaWithStrideAndScale) {
  Problem p = test::problem_of({9}, {{4, 2, 1, true}});
  p.batch = 2;
  p.heads = 3;
  p.kv_heads = 1;
  p.head_dim = 2;
  p.head_dim_v = 3;
  p.extra_kv = 1;
  p.params.scale = 0.7;
  p.dtype = DType::f64;
  check_all_gradients(p);
}

TEST(FiniteDifferences, ThreeDimensionalDilatedBlocked) {
  Problem p = test::problem_of({3, 5, 3}, {{2, 2, 1, false}, {3, 3, 1, false}, {1, 1, 3, false}});
  p.heads = 2;
  p.kv_heads = 2;
  p.head_dim = 2;
  p.head_dim_v = 2;
  p.dtype = DType::f64;
  check_all_gradients(p);
}

}  // namespace
}  // namespace gna
