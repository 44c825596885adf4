// The special cases docs/semantics.md names, each against attention computed
// directly here: full windows are dense attention, s == k is blocked
// attention, 1-D causal with k == n is causal attention, and a 3-D window
// (1, k, k) is per-frame 2-D attention.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "support.hpp"

namespace gna {
namespace {

using harness::Tensors;
using test::coords_of;

// Which key token j query token i may see (row-major token indices).
using Mask = std::function<bool(int64_t i, int64_t j)>;

// Plain masked softmax attention over float64 contiguous tensors, written
// out directly: O = softmax(scale * Q K^T + mask) V, LSE per row.
void dense_attention(const Problem& p, const Tensors& t, const Mask& mask,
                     std::vector<double>& out, std::vector<double>& lse) {
  const int64_t T = p.tokens(), H = p.heads, Hk = p.kv_heads, D = p.head_dim,
                Dv = p.head_dim_v;
  const auto* q = static_cast<const double*>(t.view(Tensors::q).data);
  const auto* k = static_cast<const double*>(t.view(Tensors::k).data);
  const auto* v = static_cast<const double*>(t.view(Tensors::v).data);
  out.assign(static_cast<size_t>(p.batch * T * H * Dv), 0.0);
  lse.assign(static_cast<size_t>(p.batch * T * H), 0.0);
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t hk = h / (H / Hk);
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> s(static_cast<size_t>(T), -INFINITY);
        double max = -INFINITY;
        for (int64_t j = 0; j < T; ++j) {
          if (!mask(i, j)) continue;
          double dot = 0.0;
          for (int64_t e = 0; e < D; ++e) {
            dot += q[((b * T + i) * H + h) * D + e] * k[((b * T + j) * Hk + hk) * D + e];
          }
          s[j] = p.scale() * dot;
          max = std::max(max, s[j]);
        }
        double sum = 0.0;
        for (int64_t j = 0; j < T; ++j) sum += std::exp(s[j] - max);
        for (int64_t j = 0; j < T; ++j) {
          const double w = std::exp(s[j] - max) / sum;
          for (int64_t e = 0; e < Dv; ++e) {
            out[((b * T + i) * H + h) * Dv + e] += w * v[((b * T + j) * Hk + hk) * Dv + e];
          }
        }
        lse[(b * T + i) * H + h] = max + std::log(sum);
      }
    }
  }
}

// Runs the reference on random float64 inputs and compares O and LSE with
// dense attention under `mask`.
void expect_reference_equals_dense(Problem p, const Mask& mask) {
  p.dtype = DType::f64;
  SCOPED_TRACE(p.describe());
  Tensors t(p, Device{}, harness::Layout::contiguous);
  std::mt19937_64 rng(5);
  t.randomize_inputs(rng);
  Options options;
  options.backend = "reference";
  forward(p.params, t.forward_args(), options);
  std::vector<double> out, lse;
  dense_attention(p, t, mask, out, lse);
  const auto* got_o = static_cast<const double*>(t.view(Tensors::o).data);
  const auto* got_lse = static_cast<const float*>(t.view(Tensors::lse).data);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(got_o[i], out[i], 1e-12) << "output " << i;
  for (size_t i = 0; i < lse.size(); ++i) {
    ASSERT_NEAR(got_lse[i], lse[i], 1e-6 * std::max(1.0, std::fabs(lse[i]))) << "lse " << i;
  }
}

TEST(SpecialCases, FullWindowIsDenseSelfAttention) {
  const Mask all = [](int64_t, int64_t) { return true; };
  Problem p = test::problem_of({5, 7}, {{5, 1, 1, false}, {7, 3, 1, false}});
  p.batch = 2;
  p.heads = 2;
  p.kv_heads = 1;
  p.head_dim = 4;
  p.head_dim_v = 3;
  expect_reference_equals_dense(p, all);
  Problem p3 = test::problem_of({3, 4, 2}, {{3, 3, 1, false}, {4, 2, 1, false}, {2, 1, 1, false}});
  p3.heads = p3.kv_heads = 2;
  p3.head_dim = p3.head_dim_v = 5;
  expect_reference_equals_dense(p3, all);
}

TEST(SpecialCases, StrideEqualToWindowIsBlockedAttention) {
  Problem p = test::problem_of({8, 9}, {{4, 4, 1, false}, {3, 3, 1, false}});
  p.heads = p.kv_heads = 1;
  p.head_dim = p.head_dim_v = 4;
  const int64_t k[] = {4, 3};
  auto same_block = [&](const std::vector<int64_t>& x, const std::vector<int64_t>& y) {
    return x[0] / k[0] == y[0] / k[0] && x[1] / k[1] == y[1] / k[1];
  };
  for (int64_t t = 0; t < p.tokens(); ++t) {
    const std::vector<int64_t> x = coords_of(p, t);
    std::vector<std::vector<int64_t>> block;
    for (int64_t j = 0; j < p.tokens(); ++j) {
      if (same_block(x, coords_of(p, j))) block.push_back(coords_of(p, j));
    }
    ASSERT_EQ(neighborhood(p, x), block) << "query token " << t;
  }
  expect_reference_equals_dense(p, [&](int64_t i, int64_t j) {
    return same_block(coords_of(p, i), coords_of(p, j));
  });
}

TEST(SpecialCases, CausalFullWindowIsCausalAttention) {
  const Mask causal = [](int64_t i, int64_t j) { return j <= i; };
  for (int64_t stride : {1, 4, 11}) {
    Problem p = test::problem_of({11}, {{11, stride, 1, true}});
    p.batch = 2;
    p.heads = 4;
    p.kv_heads = 2;
    p.head_dim = 3;
    p.head_dim_v = 6;
    p.params.scale = 0.8;
    expect_reference_equals_dense(p, causal);
  }
}

// A view of frame f of a [B, F, X1, X2, H, D] tensor as [B, X1, X2, H, D].
TensorView frame_of(const TensorView& t, int64_t f) {
  TensorView v = t;
  v.ndim = t.ndim - 1;
  v.data = static_cast<double*>(t.data) + f * t.stride[1];
  v.shape[0] = t.shape[0];
  v.stride[0] = t.stride[0];
  for (int i = 1; i < v.ndim; ++i) {
    v.shape[i] = t.shape[i + 1];
    v.stride[i] = t.stride[i + 1];
  }
  return v;
}

TEST(SpecialCases, ThreeDWindowWithUnitFrameAxisIsPerFrame2D) {
  // Window (1, 3, 4), with stride, dilation and causal on the spatial axes.
  Problem video =
      test::problem_of({3, 6, 9}, {{1, 1, 1, false}, {3, 2, 1, true}, {4, 1, 2, false}});
  video.batch = 2;
  video.heads = 2;
  video.kv_heads = 1;
  video.head_dim = 3;
  video.head_dim_v = 2;
  video.extra_kv = 2;
  video.dtype = DType::f64;
  Tensors t(video, Device{}, harness::Layout::heads_first);
  std::mt19937_64 rng(8);
  t.randomize_inputs(rng);
  Options options;
  options.backend = "reference";
  forward(video.params, t.forward_args(), options);

  Params frame_params;
  frame_params.rank = 2;
  frame_params.axis[0] = video.params.axis[1];
  frame_params.axis[1] = video.params.axis[2];
  for (int64_t f = 0; f < video.extent[0]; ++f) {
    SCOPED_TRACE("frame " + std::to_string(f));
    const TensorView o = frame_of(t.view(Tensors::o), f);
    std::vector<double> out(static_cast<size_t>(video.batch * 6 * 9 * 2 * 2));
    ForwardArgs args;
    args.query = frame_of(t.view(Tensors::q), f);
    args.key = frame_of(t.view(Tensors::k), f);
    args.value = frame_of(t.view(Tensors::v), f);
    args.extra_key = t.view(Tensors::xk);
    args.extra_value = t.view(Tensors::xv);
    args.output = TensorView::contiguous(out.data(), DType::f64, {video.batch, 6, 9, 2, 2});
    forward(frame_params, args, options);
    // Same keys in the same order: the results are bit-identical. (The 3-D
    // result goes first so that an element it never wrote counts as wrong.)
    const harness::Difference d = harness::compare(o, args.output);
    EXPECT_EQ(d.max_abs, 0.0);
    EXPECT_TRUE(d.finite);
  }
}

}  // namespace
}  // namespace gna
