// Runs one forward pass through the installed library: 1-D, 5 tokens,
// window 3, one head. With zero queries and keys the softmax is uniform, so
// each output is the mean of the values its window covers; values are the
// token indices, and border windows shift inward: 1, 1, 2, 3, 3.
#include <gna/gna.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

int main() {
  if (std::strcmp(gna::version(), PACKAGE_VERSION) != 0) {
    std::printf("gna::version() = %s but the package says %s\n", gna::version(), PACKAGE_VERSION);
    return 1;
  }
  const int64_t tokens = 5, dim = 2;
  std::vector<float> qk(tokens * dim, 0.0f), value(tokens), output(tokens, -1.0f);
  for (int64_t i = 0; i < tokens; ++i) value[i] = static_cast<float>(i);

  gna::Params params;
  params.rank = 1;
  params.axis[0] = {3, 1, 1, false};  // kernel_size, stride, dilation, is_causal
  gna::ForwardArgs args;
  args.query = gna::TensorView::contiguous(qk.data(), gna::DType::f32, {1, tokens, 1, dim});
  args.key = args.query;
  args.value = gna::TensorView::contiguous(value.data(), gna::DType::f32, {1, tokens, 1, 1});
  args.output = gna::TensorView::contiguous(output.data(), gna::DType::f32, {1, tokens, 1, 1});
  const std::string backend = gna::forward(params, args, {"reference"});

  const float expected[] = {1, 1, 2, 3, 3};
  for (int64_t i = 0; i < tokens; ++i) {
    if (std::fabs(output[i] - expected[i]) > 1e-6f) {
      std::printf("output[%lld] = %g, expected %g\n", static_cast<long long>(i), output[i],
                  expected[i]);
      return 1;
    }
  }
  // A bad argument is a gna::Error that names it.
  params.axis[0].kernel_size = 9;
  try {
    gna::forward(params, args, {"reference"});
    std::printf("a window of 9 over 5 tokens was accepted\n");
    return 1;
  } catch (const gna::Error& e) {
    if (e.argument() != "kernel_size[0]") {
      std::printf("error names '%s', expected kernel_size[0]\n", e.argument().c_str());
      return 1;
    }
  }
  std::printf("gna %s, backend %s: ok\n", gna::version(), backend.c_str());
  return 0;
}
