// Backward with a gradient flowing into LSE (delta = dO . O - dLSE), which
// harness::run_case does not exercise, and the float64 refusal.
#include <random>
#include <vector>

#include "gpu_test.hpp"
#include "harness/buffer.hpp"

namespace gna::gpu_test {
namespace {

using harness::Tensors;

using GradLse = GpuTest;

TEST_P(GradLse, BackwardSmall) {
  Problem p = window_problem({9, 10}, {3, 5}, {1, 2}, {2, 1}, {false, true});
  p.heads = 4;
  p.kv_heads = 2;
  p.extra_kv = 2;
  for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    p.dtype = dtype;
    const std::string why = reason(p, Pass::backward);
    if (!why.empty()) {
      ++skipped_;
      skip_reason_ = why;
      continue;
    }
    ++ran_;
    std::mt19937_64 rng(5);
    Tensors want(p, Device{}, harness::Layout::heads_first);
    want.randomize_inputs(rng);
    gna::forward(p.params, want.forward_args(), options_for("reference"));
    // grad_lse [B, X0, X1, H] fp32, values in [-1, 1].
    const int64_t lse_shape[] = {p.batch, p.extent[0], p.extent[1], p.heads};
    std::vector<float> glse(static_cast<size_t>(p.batch * p.tokens() * p.heads));
    std::uniform_real_distribution<float> value(-1.0f, 1.0f);
    for (float& g : glse) g = value(rng);
    harness::Buffer glse_device(device_, glse.size() * sizeof(float));
    glse_device.upload(glse.data(), glse.size() * sizeof(float));

    BackwardArgs want_args = want.backward_args();
    want_args.grad_lse = TensorView::contiguous(glse.data(), DType::f32, 4, lse_shape);
    gna::backward(p.params, want_args, options_for("reference"));

    Tensors got(p, device_, harness::Layout::heads_first);
    got.copy_from(want);
    got.poison_outputs();
    got.copy_forward_results_from(want);
    BackwardArgs got_args = got.backward_args();
    got_args.grad_lse =
        TensorView::contiguous(glse_device.data(), DType::f32, 4, lse_shape, device_);
    Options options;
    options.backend = backend_;
    ASSERT_EQ(gna::backward(p.params, got_args, options), backend_);
    harness::synchronize(device_);
    for (Tensors::Slot s : {Tensors::dq, Tensors::dk, Tensors::dv, Tensors::dxk, Tensors::dxv}) {
      std::vector<unsigned char> a, b;
      const harness::Difference d = harness::compare(got.host_view(s, a), want.host_view(s, b));
      const double tol = harness::tolerance(dtype, false) * std::max(1.0, d.ref_max);
      EXPECT_TRUE(d.finite && d.max_abs <= tol)
          << dtype_name(dtype) << " " << harness::slot_name(s) << ": error " << d.max_abs
          << (d.finite ? "" : " (non-finite)");
    }
  }
  GNA_SKIP_IF_NOTHING_RAN();
}

// float64 is refused by cuda-generic with a reason that names it (the
// kernels accumulate in fp32); asking for it explicitly raises that reason.
TEST_P(GradLse, RefusesFloat64Small) {
  if (backend_ != "cuda-generic") GTEST_SKIP() << "checks cuda-generic's refusal only";
  Problem p = window_problem({8}, {3});
  p.dtype = DType::f64;
  EXPECT_NE(reason(p, Pass::forward).find("float64"), std::string::npos);
  Tensors t(p, device_, harness::Layout::contiguous);
  Options options;
  options.backend = backend_;
  try {
    gna::forward(p.params, t.forward_args(), options);
    ADD_FAILURE() << "float64 forward did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("float64"), std::string::npos) << e.what();
  }
}

GNA_GPU_INSTANTIATE(GradLse);

}  // namespace
}  // namespace gna::gpu_test
