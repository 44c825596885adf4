// Problems of thousands of tokens: many query rows per head, windows of
// hundreds of keys, several tiles of a fused kernel per axis.
#include "gpu_test.hpp"

namespace gna::gpu_test {
namespace {

using Large = GpuTest;

TEST_P(Large, OneDimensional) {
  Problem p = window_problem({8192}, {1023});
  p.heads = 1;
  p.head_dim = p.head_dim_v = 128;
  check_both(p, {DType::f16});
  p = window_problem({4096}, {512}, {128});
  check_both(p, {DType::bf16});
  p = window_problem({4096}, {300}, {64}, {2}, {true});
  check_both(p, {DType::f16});
  // Several additional-KV tiles (the last partial), each cut into splits.
  p = window_problem({4096}, {127});
  p.heads = 4;
  p.kv_heads = 2;
  p.extra_kv = 300;
  check_both(p, {DType::f16});
  p = window_problem({6000}, {2048}, {2048});
  p.head_dim = p.head_dim_v = 32;
  check_both(p, {DType::bf16});
  GNA_SKIP_IF_NOTHING_RAN();
}

TEST_P(Large, TwoDimensional) {
  Problem p = window_problem({64, 64}, {15, 15});
  check_both(p, {DType::f16});
  p = window_problem({80, 80}, {21, 21}, {4, 4});
  p.extra_kv = 16;
  check_both(p, {DType::bf16});
  GNA_SKIP_IF_NOTHING_RAN();
}

TEST_P(Large, ThreeDimensional) {
  Problem p = window_problem({12, 20, 20}, {5, 7, 7}, {2, 3, 3}, {1, 2, 1});
  check_both(p, {DType::f16});
  p = window_problem({10, 16, 24}, {4, 8, 8}, {1, 4, 2}, {}, {true, false, false});
  p.heads = 4;
  p.kv_heads = 2;
  check_both(p, {DType::f16});
  GNA_SKIP_IF_NOTHING_RAN();
}

GNA_GPU_INSTANTIATE(Large);

}  // namespace
}  // namespace gna::gpu_test
