// Randomized sweeps against the CPU reference over every parameter the
// backend claims (harness::spec_for_backend): rank, extents, window, stride,
// dilation, causal per axis, GQA/MQA, Dv != D, additional KV, custom scale,
// dtypes and memory layouts (non-contiguous ones included).
#include <random>

#include "gpu_test.hpp"

namespace gna::gpu_test {
namespace {

class Sweep : public GpuTest {
 protected:
  void run(Pass pass, int cases, uint64_t seed) {
    std::mt19937_64 rng(seed);
    const harness::RandomSpec spec = harness::spec_for_backend(backend_);
    for (int i = 0; i < cases; ++i) {
      const Problem p = harness::random_problem(rng, spec);
      check(p, pass, harness::random_layout(rng, backend_ != "sm90"));
    }
  }
};

TEST_P(Sweep, ForwardSmall) {
  run(Pass::forward, 60, 101);
  GNA_SKIP_IF_NOTHING_RAN();
}

TEST_P(Sweep, BackwardSmall) {
  run(Pass::backward, 60, 202);
  GNA_SKIP_IF_NOTHING_RAN();
}

GNA_GPU_INSTANTIATE(Sweep);

}  // namespace
}  // namespace gna::gpu_test
