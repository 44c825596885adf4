// Shared fixture of the GPU tests. Every test is parameterized by backend
// name ("cuda-generic", "sm90") and instantiated with the prefix "gpu", so
// `ctest -R gpu` selects them and names read gpu/Suite.TestSmall/cuda_generic.
// Tests named *Small* form the compute-sanitizer subset:
//   gna_gpu_tests --gtest_filter='*Small*'
//
// A test skips, with the reason, when no CUDA device is visible, when the
// backend is not built, or when it cannot run a plain fp16 problem on this
// device (sm90 off Hopper). Inside a test, cases the backend refuses (sm90:
// backward, fp32, other head dims) are counted as skipped; cuda-generic
// must run every case.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "gna/gna.hpp"
#include "harness/check.hpp"
#include "harness/tensors.hpp"

namespace gna::gpu_test {

// Backend names as test-name suffixes: "cuda-generic" -> "cuda_generic".
std::string param_name(const ::testing::TestParamInfo<std::string>& info);

// A problem with one entry per axis; empty stride/dilation/causal mean 1/1/false.
// Defaults: batch 1, 2 heads, 1 kv head, D = Dv = 64, fp16.
Problem window_problem(std::vector<int64_t> extent, std::vector<int64_t> kernel,
                       std::vector<int64_t> stride = {}, std::vector<int64_t> dilation = {},
                       std::vector<bool> causal = {});

// Options that select one backend, on the default stream.
Options options_for(const std::string& backend);

class GpuTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override;

  // Why the backend under test cannot run `p` (empty: it can).
  std::string reason(const Problem& p, Pass pass) const;

  // Runs one case against the reference and records the outcome.
  void check(const Problem& p, Pass pass, harness::Layout layout = harness::Layout::contiguous);
  // Forward and backward, for each dtype of `dtypes`.
  void check_both(Problem p,
                  std::initializer_list<DType> dtypes = {DType::f16, DType::bf16, DType::f32},
                  harness::Layout layout = harness::Layout::contiguous);

  // Ends a test that ran nothing (every case refused) as skipped, with why.
  std::string nothing_ran() const;

  std::string backend_;
  Device device_{};
  int ran_ = 0;
  int skipped_ = 0;
  std::string skip_reason_;
  uint64_t seed_ = 1;
};

// Use at the end of a test body: a test whose every case was refused skips.
#define GNA_SKIP_IF_NOTHING_RAN()                 \
  do {                                            \
    if (ran_ == 0) GTEST_SKIP() << nothing_ran(); \
  } while (0)

#define GNA_GPU_INSTANTIATE(Suite)                                                \
  INSTANTIATE_TEST_SUITE_P(gpu, Suite, ::testing::Values("cuda-generic", "sm90"), \
                           ::gna::gpu_test::param_name)

}  // namespace gna::gpu_test
