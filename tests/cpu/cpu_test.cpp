#include "cpu_test.hpp"

#include <string>

namespace gna::cpu_test {

void expect_matches_reference(const Problem& p, Pass pass, harness::Layout layout, bool grad_lse,
                              uint64_t seed) {
  harness::CaseSpec spec;
  spec.problem = p;
  spec.layout = layout;
  spec.pass = pass;
  spec.seed = seed;
  spec.grad_lse = grad_lse;
  const harness::CaseResult r = harness::run_case(spec, "cpu", Device{});
  const std::string what = std::string(pass == Pass::forward ? "forward " : "backward ") +
                           p.describe() + " layout " + harness::layout_name(layout) +
                           (grad_lse ? " with grad_lse" : "") + " seed " + std::to_string(seed);
  ASSERT_TRUE(r.ran) << "cpu refused " << what << ": " << r.skipped;
  EXPECT_TRUE(r.passed) << what << ": worst error/tolerance " << r.worst << " in "
                        << r.worst_tensor << "; " << r.detail;
}

void expect_all_passes(Problem p, std::initializer_list<DType> dtypes, harness::Layout layout) {
  for (DType dtype : dtypes) {
    p.dtype = dtype;
    expect_matches_reference(p, Pass::forward, layout);
    expect_matches_reference(p, Pass::backward, layout);
    expect_matches_reference(p, Pass::backward, layout, true);
  }
}

Problem problem(std::initializer_list<int64_t> extents, std::initializer_list<AxisParams> axes) {
  Problem p = test::problem_of(extents, axes);
  p.batch = 1;
  p.heads = 2;
  p.kv_heads = 1;
  p.head_dim = p.head_dim_v = 32;
  p.dtype = DType::f32;
  validate(p);
  return p;
}

}  // namespace gna::cpu_test
