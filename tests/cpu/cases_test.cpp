// Cases aimed at the cpu backend's own structure (src/cpu/tile_walk.hpp):
// windows spanning several flash steps (online rescaling), clean and masked
// steps, tiles that stick out of short dilation groups, axes shorter than a
// vector, head dims around the vector width, many query heads per kv head,
// additional KV across steps and key tiles, zero strides, large logits.
#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cpu/passes.hpp"
#include "cpu_test.hpp"

namespace gna::cpu_test {
namespace {

using harness::Layout;

TEST(CpuCases, WindowsOfSeveralSteps) {
  expect_all_passes(problem({700}, {axis(301)}));
  expect_all_passes(problem({700}, {axis(301, 1, 1, true)}));
  expect_all_passes(problem({600}, {axis(255, 17)}));
  expect_all_passes(problem({40, 40}, {axis(25), axis(25)}), {DType::f32});
  expect_all_passes(problem({12, 20, 20}, {axis(5), axis(9), axis(13)}), {DType::f32});
}

// Narrow windows fuse dQ into the key pass, in phases of blocks of key
// tiles that share no query (src/cpu/backward.cpp): one phase when the
// batch and kv heads give enough items, else bands along one axis or more
// (2, 4 or 8 phases), also per dilation group. Wide windows would leave a
// phase too few items and take two passes. All are right. The phase counts
// are those of 16-lane vectors (AVX-512), whose tiles set the items; other
// targets check the results only.
TEST(CpuCases, BackwardFusedAndInTwoPasses) {
  const bool lanes16 = cpu::simd_lanes() == 16;
  auto expect_phases = [&](const Problem& p, int phases) {
    if (lanes16) {
      EXPECT_EQ(cpu::backward_phases(p), phases) << p.describe();
    }
  };
  const Problem narrow = problem({56, 56}, {axis(7), axis(7)});  // one kv head
  expect_phases(narrow, 4);
  expect_all_passes(narrow, {DType::f32});
  Problem heads = problem({20, 24}, {axis(7), axis(5)});
  heads.batch = 2;
  heads.heads = heads.kv_heads = 4;
  expect_phases(heads, 1);
  expect_all_passes(heads, {DType::f32});
  Problem volume = problem({8, 28, 28}, {axis(3), axis(7), axis(7)});
  volume.heads = volume.kv_heads = 4;
  expect_phases(volume, 8);
  expect_all_passes(volume, {DType::f32});
  for (auto [shape, phases] : {std::pair{std::vector<int64_t>{20, 20, 20}, 4},
                               std::pair{std::vector<int64_t>{10, 10, 16}, 8}}) {
    Problem p = problem({shape[0], shape[1], shape[2]}, {axis(3), axis(3), axis(3)});
    expect_phases(p, phases);
    expect_all_passes(p, {DType::f32});
  }
  Problem groups = problem({60, 44}, {axis(5, 1, 3), axis(4, 1, 2, true)});
  groups.batch = 3;
  EXPECT_GT(cpu::backward_phases(groups), 0);
  expect_all_passes(groups, {DType::f32});
  for (const Problem& wide : {problem({2000}, {axis(1100)}),
                              problem({48, 48}, {axis(33, 2), axis(33, 1, 1, true)})}) {
    expect_phases(wide, 0);
    expect_all_passes(wide, {DType::f32});
  }
}

TEST(CpuCases, CleanAndMaskedSteps) {
  expect_all_passes(problem({1000}, {axis(400)}), {DType::f32});
  expect_all_passes(problem({1000}, {axis(400, 400)}), {DType::f32});  // blocked attention
  expect_all_passes(problem({64, 64}, {axis(16, 16), axis(16, 16)}), {DType::f32});
}

TEST(CpuCases, TilesPastTheEndOfAGroup) {
  expect_all_passes(problem({17}, {axis(5)}));
  expect_all_passes(problem({33}, {axis(4, 3)}));
  expect_all_passes(problem({5, 9}, {axis(3), axis(4)}));
  expect_all_passes(problem({31}, {axis(5, 1, 4)}));  // groups of 8 and 7 tokens
  expect_all_passes(problem({23, 14}, {axis(3, 2, 3), axis(6, 1, 2)}));
}

TEST(CpuCases, AxesShorterThanAVector) {
  expect_all_passes(problem({1}, {axis(1)}));
  expect_all_passes(problem({2, 3, 2}, {axis(2), axis(3), axis(1)}));
  expect_all_passes(problem({3, 1, 5}, {axis(3, 1, 1, true), axis(1), axis(2)}));
}

TEST(CpuCases, HeadDimsAroundTheVectorWidth) {
  for (auto [d, dv] : {std::pair{1, 1}, std::pair{3, 5}, std::pair{15, 16}, std::pair{16, 17},
                       std::pair{31, 33}, std::pair{63, 65}, std::pair{100, 20},
                       std::pair{129, 129}}) {
    Problem p = problem({9, 11}, {axis(3), axis(5, 2)});
    p.head_dim = d;
    p.head_dim_v = dv;
    p.extra_kv = 2;
    expect_all_passes(p, {DType::f32, DType::bf16});
  }
}

TEST(CpuCases, ManyQueryHeadsPerKvHead) {
  for (auto [heads, kv_heads] : {std::pair{8, 1}, std::pair{6, 2}, std::pair{3, 3}}) {
    Problem p = problem({10, 12}, {axis(5), axis(3, 1, 2)});
    p.heads = heads;
    p.kv_heads = kv_heads;
    p.batch = 2;
    expect_all_passes(p, {DType::f32, DType::f16});
  }
}

// Small windows put 4 heads in one vector (tile_walk.hpp: head groups,
// rows regrouped by heads): forward and key tiles, with causal axes, tiles
// past the end of an axis, two groups of heads, head dims that are not
// whole blocks of 4, Dv != D, strided layouts and every dtype. The chooser
// groups heads on these problems at 16 lanes; narrower vectors keep one
// head per tile here, and their results are checked all the same.
TEST(CpuCases, HeadGroupsInOneVector) {
  const bool lanes16 = cpu::simd_lanes() == 16;
  std::vector<Problem> cases;
  auto add = [&](Problem p, int heads, int64_t d, int64_t dv) {
    p.heads = p.kv_heads = heads;
    p.head_dim = d;
    p.head_dim_v = dv;
    p.batch = 2;
    cases.push_back(p);
  };
  add(problem({20, 22}, {axis(7), axis(7)}), 4, 32, 32);
  add(problem({19, 23}, {axis(7), axis(5, 1, 1, true)}), 4, 18, 13);
  add(problem({6, 14, 13}, {axis(3), axis(7), axis(5, 2)}), 8, 8, 9);
  for (const Problem& p : cases) {
    SCOPED_TRACE(p.describe());
    if (lanes16) {
      ASSERT_EQ(cpu::forward_tiling(p).head_group, 4) << "forward";
      ASSERT_EQ(cpu::best_tiling(p, cpu::simd_lanes(), cpu::Looks::at_queries).head_group, 4)
          << "key tiles";
    }
    expect_all_passes(p);
    expect_all_passes(p, {DType::f32}, Layout::padded);
  }
}

// A head group's tile over several flash steps: on 16 lanes, 2x1x2
// tokens x 4 heads reach 4x13x14 keys (3 steps), so its accumulators, a
// row per token regrouped by heads, are rescaled between steps.
TEST(CpuCases, HeadGroupTilesOfSeveralSteps) {
  if (cpu::simd_lanes() != 16) GTEST_SKIP() << "the tiling below is that of 16 lanes";
  Problem p = problem({4, 18, 18}, {axis(3), axis(13), axis(13)});
  p.heads = p.kv_heads = 4;
  p.head_dim = p.head_dim_v = 16;
  ASSERT_EQ(cpu::forward_tiling(p).head_group, 4);
  ASSERT_GT(4 * 13 * 14, cpu::kStepTokens);
  expect_all_passes(p, {DType::f32});
}

TEST(CpuCases, AdditionalKvAcrossStepsAndTiles) {
  for (int64_t extra : {1, 17, 130, 300}) {
    Problem p = problem({6, 7}, {axis(3), axis(5, 1, 1, true)});
    p.extra_kv = extra;
    p.heads = 4;
    p.kv_heads = 2;
    expect_all_passes(p, {DType::f32, DType::bf16});
  }
}

TEST(CpuCases, EveryLayoutAndDtype) {
  Problem p = problem({6, 7}, {axis(3, 1, 2), axis(5, 2)});
  p.batch = 2;
  p.heads = 4;
  p.kv_heads = 2;
  p.head_dim_v = 24;
  p.extra_kv = 3;
  for (Layout layout :
       {Layout::contiguous, Layout::padded, Layout::heads_first, Layout::strided_dim}) {
    expect_all_passes(p, {DType::f32, DType::f16, DType::bf16}, layout);
  }
}

// Large logits: the running maximum must keep exp2 in range.
TEST(CpuCases, LargeScales) {
  for (double scale : {0.01, 4.0, 40.0}) {
    Problem p = problem({300}, {axis(200)});
    p.params.scale = scale;
    expect_all_passes(p, {DType::f32});
  }
}

// Inputs may repeat memory: stride 0 along batch, heads or the head dim.
TEST(CpuCases, ZeroStridesOfInputs) {
  Problem p = problem({8, 9}, {axis(3), axis(5)});
  p.batch = 2;
  p.heads = 2;
  p.kv_heads = 2;
  p.extra_kv = 2;
  for (int dim : {0, 3, 4}) {  // batch, heads, head dim of [B, X0, X1, H, D]
    harness::Tensors want(p, Device{}, Layout::contiguous);
    std::mt19937_64 rng(static_cast<uint64_t>(dim));
    want.randomize_inputs(rng);
    harness::Tensors got(p, Device{}, Layout::contiguous);
    got.copy_from(want);
    ForwardArgs w = want.forward_args(), g = got.forward_args();
    for (ForwardArgs* a : {&w, &g}) a->key.stride[dim] = a->value.stride[dim] = 0;
    forward(p.params, w, on("reference"));
    EXPECT_EQ(forward(p.params, g, on("cpu")), "cpu");
    for (auto s : {harness::Tensors::o, harness::Tensors::lse}) {
      const harness::Difference d = harness::compare(got.view(s), want.view(s));
      EXPECT_TRUE(d.finite && d.max_abs <= 1e-4 * std::max(1.0, d.ref_max))
          << "stride 0 in dim " << dim << ": " << harness::slot_name(s) << " error " << d.max_abs;
    }
    BackwardArgs wb = want.backward_args(), gb = got.backward_args();
    for (BackwardArgs* a : {&wb, &gb}) a->query.stride[dim] = a->grad_output.stride[dim] = 0;
    backward(p.params, wb, on("reference"));
    EXPECT_EQ(backward(p.params, gb, on("cpu")), "cpu");
    for (auto s : {harness::Tensors::dq, harness::Tensors::dk, harness::Tensors::dv,
                   harness::Tensors::dxk, harness::Tensors::dxv}) {
      const harness::Difference d = harness::compare(got.view(s), want.view(s));
      EXPECT_TRUE(d.finite && d.max_abs <= 1e-4 * std::max(1.0, d.ref_max))
          << "stride 0 in dim " << dim << ": " << harness::slot_name(s) << " error " << d.max_abs;
    }
  }
}

TEST(CpuCases, RefusesFloat64NamingIt) {
  Problem p = problem({8}, {axis(3)});
  p.dtype = DType::f64;
  for (const BackendInfo& info : backends(p, Pass::forward, Device{})) {
    if (info.name == "cpu") {
      EXPECT_NE(info.reason.find("float64"), std::string::npos) << info.reason;
    }
  }
  harness::Tensors t(p, Device{}, Layout::contiguous);
  try {
    forward(p.params, t.forward_args(), on("cpu"));
    ADD_FAILURE() << "float64 forward on the cpu backend did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("float64"), std::string::npos) << e.what();
  }
  EXPECT_EQ(forward(p.params, t.forward_args()), "reference");  // auto falls back
}

TEST(CpuCases, RefusesCudaTensors) {
  Problem p = problem({8}, {axis(3)});
  for (const BackendInfo& info : backends(p, Pass::backward, Device{DeviceType::cuda, 0})) {
    if (info.name == "cpu") {
      EXPECT_NE(info.reason.find("CPU tensors"), std::string::npos) << info.reason;
    }
  }
}

}  // namespace
}  // namespace gna::cpu_test
