// One test per input rule of docs/semantics.md: the call throws gna::Error of the
// right kind, naming the argument (and its value) in the message.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "support.hpp"

namespace gna {
namespace {

using harness::Tensors;

const char* kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::value: return "value";
    case ErrorKind::type: return "type";
    case ErrorKind::unsupported: return "unsupported";
    case ErrorKind::runtime: return "runtime";
  }
  return "?";
}

// `call` must throw gna::Error of `kind` for `argument`, and the message must
// contain `text` (by default the argument's name).
template <typename Call>
void expect_error(Call&& call, ErrorKind kind, const std::string& argument,
                  std::string text = "") {
  if (text.empty()) text = argument;
  try {
    call();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_STREQ(kind_name(e.kind()), kind_name(kind)) << message;
    EXPECT_EQ(e.argument(), argument) << message;
    EXPECT_NE(message.find(text), std::string::npos) << "'" << text << "' not in: " << message;
    return;
  }
  ADD_FAILURE() << "no gna::Error naming " << argument;
}

// Valid float32 tensors of a small problem; each test breaks one thing.
class InputRules : public ::testing::Test {
 protected:
  static Problem valid_problem(int rank = 2) {
    Problem p = rank == 3 ? test::problem_of({4, 5, 6}, {{3}, {3}, {3}})
                          : test::problem_of({6, 5}, {{3}, {3}});
    p.batch = 1;
    p.heads = 4;
    p.kv_heads = 2;
    p.head_dim = 4;
    p.head_dim_v = 3;
    p.extra_kv = 2;
    p.dtype = DType::f32;
    return p;
  }

  // Tensors for any problem, valid or not (their shapes follow it).
  static Tensors tensors_for(const Problem& p) {
    return Tensors(p, Device{}, harness::Layout::contiguous);
  }

  static std::string run_forward(const Params& params, const ForwardArgs& args,
                                 const std::string& backend = "auto") {
    Options o;
    o.backend = backend;
    return forward(params, args, o);
  }
  static std::string run_backward(const Params& params, const BackwardArgs& args) {
    return backward(params, args);
  }

  Problem p = valid_problem();
  Tensors t = tensors_for(p);
  ForwardArgs fwd = t.forward_args();
  BackwardArgs bwd = t.backward_args();
};

TEST_F(InputRules, ValidProblemRuns) {
  const std::string expected = test::auto_cpu_backend(p.dtype);
  EXPECT_EQ(run_forward(p.params, fwd), expected);
  EXPECT_EQ(run_backward(p.params, bwd), expected);
  fwd.lse = TensorView{};  // LSE is optional in the forward
  EXPECT_EQ(run_forward(p.params, fwd), expected);
}

TEST_F(InputRules, RankOutOfRange) {
  for (int rank : {0, 4, -1}) {
    Params params = p.params;
    params.rank = rank;
    expect_error([&] { run_forward(params, fwd); }, ErrorKind::value, "rank",
                 "rank = " + std::to_string(rank));
    expect_error([&] { run_backward(params, bwd); }, ErrorKind::value, "rank");
  }
}

TEST_F(InputRules, KernelSizeBelowOne) {
  p.params.axis[1].kernel_size = 0;
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::value, "kernel_size[1]",
               "kernel_size[1] = 0");
}

TEST_F(InputRules, StrideBelowOne) {
  p.params.axis[0].stride = 0;
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::value, "stride[0]", "stride[0] = 0");
}

TEST_F(InputRules, DilationBelowOne) {
  const Problem p3 = valid_problem(3);
  Tensors t3 = tensors_for(p3);
  Params params = p3.params;
  params.axis[2].dilation = 0;
  expect_error([&] { run_forward(params, t3.forward_args()); }, ErrorKind::value, "dilation[2]",
               "dilation[2] = 0");
}

TEST_F(InputRules, StrideLargerThanKernel) {
  p.params.axis[0].stride = 4;  // kernel 3
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::value, "stride[0]", "stride[0] = 4");
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::value, "stride[0]",
               "kernel_size[0]");
}

TEST_F(InputRules, KernelTimesDilationLargerThanAxis) {
  p.params.axis[1].dilation = 2;  // 3 * 2 > 5
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::value, "kernel_size[1]",
               "kernel_size[1] = 3");
  p.params.axis[1].dilation = 1;
  p.params.axis[0].kernel_size = 7;  // 7 > 6
  p.params.axis[0].stride = 1;
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::value, "kernel_size[0]",
               "kernel_size[0] = 7");
}

TEST_F(InputRules, QueryHeadsNotAMultipleOfKvHeads) {
  Problem bad = p;
  bad.heads = 3;  // kv_heads 2
  Tensors tb = tensors_for(bad);
  expect_error([&] { run_forward(bad.params, tb.forward_args()); }, ErrorKind::value, "kv_heads",
               "kv_heads = 2");
  expect_error([&] { run_backward(bad.params, tb.backward_args()); }, ErrorKind::value, "kv_heads");
}

TEST_F(InputRules, ZeroKvHeads) {
  Problem bad = p;
  bad.kv_heads = 0;
  Tensors tb = tensors_for(bad);
  expect_error([&] { run_forward(bad.params, tb.forward_args()); }, ErrorKind::value, "kv_heads",
               "kv_heads = 0");
}

TEST_F(InputRules, QueryRankDoesNotMatchSpatialRank) {
  fwd.query.ndim = 4;  // a 2-D problem needs 5
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::type, "query.ndim",
               "query.ndim = 4");
}

TEST_F(InputRules, KeyExtentDiffersFromQuery) {
  fwd.key.shape[2] = 4;  // query's X1 is 5
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::value, "key.shape[2]",
               "key.shape[2] = 4");
}

TEST_F(InputRules, ValueDtypeDiffersFromQuery) {
  fwd.value.dtype = DType::f16;
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::type, "value.dtype",
               "value.dtype = float16");
}

TEST_F(InputRules, UnknownQueryDtype) {
  fwd.query.dtype = static_cast<DType>(42);
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::type, "query.dtype");
}

TEST_F(InputRules, LseMustBeFloat32) {
  fwd.lse.dtype = DType::f64;
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::type, "lse.dtype",
               "lse.dtype = float64");
  bwd.lse.dtype = DType::f16;
  expect_error([&] { run_backward(p.params, bwd); }, ErrorKind::type, "lse.dtype");
}

TEST_F(InputRules, OutputWithZeroStrideWouldAlias) {
  fwd.output.stride[1] = 0;
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::value, "output.stride[1]",
               "output.stride[1] = 0");
  bwd.grad_key.stride[3] = 0;
  expect_error([&] { run_backward(p.params, bwd); }, ErrorKind::value, "grad_key.stride[3]");
}

TEST_F(InputRules, NegativeStride) {
  fwd.key.stride[0] = -1;
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::value, "key.stride[0]");
}

TEST_F(InputRules, NegativeExtent) {
  fwd.query.shape[1] = -2;
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::value, "query.shape[1]",
               "query.shape[1] = -2");
}

TEST_F(InputRules, MissingMemory) {
  fwd.key.data = nullptr;
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::value, "key.data");
}

TEST_F(InputRules, RequiredTensorMissing) {
  fwd.output = TensorView{};
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::type, "output");
  bwd.grad_query = TensorView{};
  expect_error([&] { run_backward(p.params, bwd); }, ErrorKind::type, "grad_query");
}

TEST_F(InputRules, AdditionalKeysAndValuesComeTogether) {
  ForwardArgs keys_only = fwd;
  keys_only.extra_value = TensorView{};
  expect_error([&] { run_forward(p.params, keys_only); }, ErrorKind::value, "additional_values");
  ForwardArgs values_only = fwd;
  values_only.extra_key = TensorView{};
  expect_error([&] { run_forward(p.params, values_only); }, ErrorKind::value, "additional_keys");
}

TEST_F(InputRules, AdditionalValuesHeadDimMustMatchValue) {
  fwd.extra_value.shape[3] = 4;  // value's head_dim_v is 3
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::value, "additional_values.shape[3]");
}

TEST_F(InputRules, BackwardWithAdditionalKvNeedsTheirGradients) {
  bwd.grad_extra_key = TensorView{};
  expect_error([&] { run_backward(p.params, bwd); }, ErrorKind::type, "grad_additional_keys");
}

TEST_F(InputRules, GradLseMustBeFloat32) {
  bwd.grad_lse = t.view(Tensors::lse);
  bwd.grad_lse.dtype = DType::f16;
  expect_error([&] { run_backward(p.params, bwd); }, ErrorKind::type, "grad_lse.dtype");
}

TEST_F(InputRules, GradOutputShapeMustMatchOutput) {
  bwd.grad_output.shape[4] = 4;  // Dv is 3
  expect_error([&] { run_backward(p.params, bwd); }, ErrorKind::value, "grad_output.shape[4]");
}

TEST_F(InputRules, ScaleMustBeFinite) {
  for (double bad : {NAN, INFINITY, -INFINITY}) {
    p.params.scale = bad;
    expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::value, "scale", "scale = ");
  }
}

TEST_F(InputRules, UnknownBackendName) {
  expect_error([&] { run_forward(p.params, fwd, "turbo"); }, ErrorKind::value, "backend",
               "backend = turbo");
  expect_error([&] { run_forward(p.params, fwd, "turbo"); }, ErrorKind::value, "backend",
               "reference");  // the message lists the known names
}

TEST_F(InputRules, GpuBackendCannotRunOnCpuTensors) {
  for (const std::string name : {"cuda-generic", "sm90"}) {
    SCOPED_TRACE(name);
    bool built = false;
    for (const std::string& n : backend_names()) built |= n == name;
    if (built) {
      expect_error([&] { run_forward(p.params, fwd, name); }, ErrorKind::unsupported, "backend",
                   "backend = " + name);
    } else {
      expect_error([&] { run_forward(p.params, fwd, name); }, ErrorKind::value, "backend",
                   "not built");
    }
  }
}

TEST_F(InputRules, ReferenceCannotRunOnCudaTensors) {
  // Tensors claim to live on a GPU; nothing may touch their memory.
  for (TensorView* v : {&fwd.query, &fwd.key, &fwd.value, &fwd.output, &fwd.lse, &fwd.extra_key,
                        &fwd.extra_value}) {
    v->device = Device{DeviceType::cuda, 0};
  }
  expect_error([&] { run_forward(p.params, fwd, "reference"); }, ErrorKind::unsupported, "backend",
               "backend = reference");
}

TEST_F(InputRules, TensorsOnDifferentDevices) {
  fwd.key.device = Device{DeviceType::cuda, 0};
  expect_error([&] { run_forward(p.params, fwd); }, ErrorKind::type, "key.device",
               "key.device = cuda:0");
  bwd.grad_value.device = Device{DeviceType::cuda, 1};
  expect_error([&] { run_backward(p.params, bwd); }, ErrorKind::type, "grad_value.device");
}

TEST_F(InputRules, NeighborhoodQueryMustLieInsideTheProblem) {
  expect_error([&] { neighborhood(p, {2, 5}); }, ErrorKind::value, "query[1]", "query[1] = 5");
  expect_error([&] { neighborhood(p, {-1, 0}); }, ErrorKind::value, "query[0]");
  expect_error([&] { neighborhood(p, {1}); }, ErrorKind::value, "query");
}

TEST_F(InputRules, ContiguousViewRank) {
  expect_error([] { TensorView::contiguous(nullptr, DType::f32, {}); }, ErrorKind::value, "ndim");
  expect_error([] { TensorView::contiguous(nullptr, DType::f32, {1, 1, 1, 1, 1, 1, 1}); },
               ErrorKind::value, "ndim", "ndim = 7");
}

}  // namespace
}  // namespace gna
