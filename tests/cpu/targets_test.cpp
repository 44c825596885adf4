// The cpu backend holds its passes compiled for every SIMD target of this
// build (Highway's foreach_target: SSE4, AVX2, AVX-512 on x86; NEON, SVE on
// ARM) and picks the best one the machine has. Each target this machine can
// run is forced in turn and checked against the reference, so code that only
// other machines would pick is tested too.
#include <hwy/targets.h>

#include <string>
#include <vector>

#include "cpu/passes.hpp"
#include "cpu_test.hpp"
#include "suite_target.hpp"

namespace gna::cpu_test {
namespace {

class ForcedTarget {
 public:
  explicit ForcedTarget(int64_t target) { hwy::SetSupportedTargetsForTest(target); }
  ~ForcedTarget() { hwy::SetSupportedTargetsForTest(suite_target()); }
};

TEST(CpuTargets, EveryTargetMatchesTheReference) {
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  std::string names;
  for (int64_t target : targets) {
    const ForcedTarget forced(target);
    SCOPED_TRACE(hwy::TargetName(target));
    names += std::string(names.empty() ? "" : " ") + hwy::TargetName(target);
    // The dispatch really switched: fp32 lanes of the forced target.
    const int lanes = cpu::simd_lanes();
    EXPECT_TRUE(lanes >= 1 && lanes <= cpu::kMaxLanes) << lanes;
    const int expected = target == HWY_AVX3 ? 16 : target == HWY_AVX2 ? 8
                         : target == HWY_SSE4 || target == HWY_NEON ? 4
                         : target == HWY_SCALAR ? 1 : lanes;
    EXPECT_EQ(lanes, expected);

    Problem p = problem({13, 11}, {axis(5, 2, 2), axis(4, 1, 1, true)});
    p.heads = 4;
    p.kv_heads = 2;
    p.head_dim = 17;  // a partial block for every vector width above 1
    p.head_dim_v = 40;
    p.extra_kv = 3;
    expect_all_passes(p, {DType::f32, DType::bf16}, harness::Layout::padded);
    expect_all_passes(problem({300}, {axis(140)}), {DType::f32});  // several steps
    // Head groups (4 heads in one vector where lanes allow), with dQ fused
    // into the key pass in regrouped rows; interior tiles reuse gathering.
    Problem grouped = problem({20, 22}, {axis(7), axis(7)});
    grouped.heads = grouped.kv_heads = 4;
    grouped.batch = 2;
    grouped.head_dim = 18;
    grouped.head_dim_v = 13;
    expect_all_passes(grouped, {DType::f32});
  }
  ::testing::Test::RecordProperty("targets", names);
}

}  // namespace
}  // namespace gna::cpu_test
