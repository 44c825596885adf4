// Empty problems (batch 0, a spatial extent 0, query heads 0) return
// without launching work: empty outputs are never touched, not even through
// a pointer into a poisoned buffer. Gradients of keys that no query attends
// to are not empty, though, and must come back as zeros.
#include <gtest/gtest.h>

#include <cctype>
#include <random>
#include <vector>

#include "support.hpp"

namespace gna {
namespace {

using harness::Tensors;

constexpr unsigned char kPoison = 0xAB;

struct EmptyCase {
  const char* name;
  Problem problem;
};

std::vector<EmptyCase> empty_cases() {
  Problem base = test::problem_of({6, 5}, {{3, 2, 1, false}, {3, 1, 1, true}});
  base.batch = 2;
  base.heads = 2;
  base.kv_heads = 1;
  base.head_dim = 4;
  base.head_dim_v = 3;
  base.extra_kv = 2;
  base.dtype = DType::f32;
  std::vector<EmptyCase> cases;
  auto add = [&](const char* name, auto change) {
    Problem p = base;
    change(p);
    cases.push_back({name, p});
  };
  // Windows that fit their axes...
  add("batch 0", [](Problem& p) { p.batch = 0; });
  add("heads 0", [](Problem& p) { p.heads = 0; });
  add("heads 0, no additional KV", [](Problem& p) { p.heads = 0; p.extra_kv = 0; });
  // ...and windows over a zero extent, which no window can fit.
  add("extent 0", [](Problem& p) { p.extent[1] = 0; });
  add("every extent 0", [](Problem& p) { p.extent[0] = p.extent[1] = 0; });
  add("extent 0, rank 3", [](Problem& p) {
    p.params.rank = 3;
    p.extent[2] = 0;
    p.params.axis[2] = AxisParams{2, 1, 1, false};
  });
  return cases;
}

class EmptyProblems : public ::testing::TestWithParam<EmptyCase> {
 protected:
  EmptyProblems()
      : t(GetParam().problem, Device{}, harness::Layout::padded), poison(4096, kPoison) {
    std::mt19937_64 rng(3);
    t.randomize_inputs(rng);
  }

  // Empty outputs point into the poisoned buffer; empty inputs get no memory.
  void aim_empty_views(std::initializer_list<TensorView*> outputs,
                       std::initializer_list<TensorView*> inputs) {
    for (TensorView* v : outputs) {
      if (v->defined() && v->numel() == 0) v->data = poison.data();
    }
    for (TensorView* v : inputs) {
      if (v->defined() && v->numel() == 0) v->data = nullptr;
    }
  }

  bool poison_intact() const {
    for (unsigned char c : poison) {
      if (c != kPoison) return false;
    }
    return true;
  }

  Tensors t;
  std::vector<unsigned char> poison;
};

// "auto" and every CPU backend by name.
std::vector<std::string> backends_to_try() {
  std::vector<std::string> names{"auto"};
  for (const std::string& n : test::cpu_backends()) names.push_back(n);
  return names;
}

std::string expected_backend(const std::string& asked, DType dtype) {
  return asked == "auto" ? test::auto_cpu_backend(dtype) : asked;
}

TEST_P(EmptyProblems, ForwardTouchesNothing) {
  const Problem& p = GetParam().problem;
  ASSERT_TRUE(p.empty());
  for (const std::string& backend : backends_to_try()) {
    ForwardArgs args = t.forward_args();
    aim_empty_views({&args.output, &args.lse},
                    {&args.query, &args.key, &args.value, &args.extra_key, &args.extra_value});
    Options options;
    options.backend = backend;
    EXPECT_EQ(forward(p.params, args, options), expected_backend(backend, p.dtype));
    EXPECT_TRUE(poison_intact()) << backend;
  }
}

TEST_P(EmptyProblems, BackwardTouchesNoEmptyOutputAndZeroesUnattendedKeys) {
  const Problem& p = GetParam().problem;
  for (const std::string& backend : backends_to_try()) {
    t.poison_outputs();
    BackwardArgs args = t.backward_args();
    aim_empty_views({&args.grad_query, &args.grad_key, &args.grad_value, &args.grad_extra_key,
                     &args.grad_extra_value},
                    {&args.query, &args.key, &args.value, &args.output, &args.lse,
                     &args.grad_output, &args.extra_key, &args.extra_value});
    Options options;
    options.backend = backend;
    EXPECT_EQ(backward(p.params, args, options), expected_backend(backend, p.dtype));
    EXPECT_TRUE(poison_intact()) << backend;
    // Keys and values nobody attends to (kv heads without query heads,
    // additional KV without query tokens) have gradient zero.
    for (const TensorView* g : {&args.grad_key, &args.grad_value, &args.grad_extra_key,
                                &args.grad_extra_value}) {
      if (!g->defined() || g->numel() == 0) continue;
      std::vector<float> memory(static_cast<size_t>(g->numel()), 0.0f);
      const TensorView zeros = TensorView::contiguous(memory.data(), DType::f32, g->ndim, g->shape);
      const harness::Difference d = harness::compare(*g, zeros);
      EXPECT_TRUE(d.finite && d.max_abs == 0.0) << backend << ": gradient of unattended keys";
    }
  }
}

TEST_P(EmptyProblems, StillChecksWindowParameters) {
  Params params = GetParam().problem.params;
  params.axis[0].kernel_size = 0;
  EXPECT_THROW(forward(params, t.forward_args()), Error);
  params = GetParam().problem.params;
  params.axis[1].stride = 4;  // > kernel 3
  EXPECT_THROW(forward(params, t.forward_args()), Error);
}

INSTANTIATE_TEST_SUITE_P(Core, EmptyProblems, ::testing::ValuesIn(empty_cases()),
                         [](const ::testing::TestParamInfo<EmptyCase>& info) {
                           std::string name = info.param.name;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

// numpy and torch give empty arrays zero strides: an empty output is not an
// aliased one.
TEST(EmptyOutputs, ZeroStridesOfAnEmptyOutputAreAccepted) {
  float dummy = 0.0f;
  auto empty = [&](std::initializer_list<int64_t> shape, DType dtype) {
    TensorView t = TensorView::contiguous(&dummy, dtype, shape);
    for (int i = 0; i < t.ndim; ++i) t.stride[i] = 0;
    return t;
  };
  Params params;
  params.rank = 1;
  ForwardArgs args;
  args.query = args.key = args.value = empty({1, 0, 2, 4}, DType::f32);
  args.output = empty({1, 0, 2, 4}, DType::f32);
  args.lse = empty({1, 0, 2}, DType::f32);
  EXPECT_EQ(forward(params, args), test::auto_cpu_backend(DType::f32));
  // A non-empty output with a zero stride still is an error.
  args = ForwardArgs{};
  std::vector<float> data(64, 0.0f), out(64, 0.0f);
  args.query = args.key = args.value = TensorView::contiguous(data.data(), DType::f32, {1, 4, 2, 4});
  args.output = TensorView::contiguous(out.data(), DType::f32, {1, 4, 2, 4});
  args.output.stride[2] = 0;
  EXPECT_THROW(forward(params, args), Error);
}

}  // namespace
}  // namespace gna
