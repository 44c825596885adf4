// Deterministic mode (Options::deterministic): gradients bitwise equal across
// runs, and still right against the reference. The problems make many KV
// tiles add into each query tile's dQ (long windows, GQA, additional KV in
// several splits), where unordered additions would differ in rounding.
#include <cstring>
#include <random>
#include <vector>

#include "gpu_test.hpp"

namespace gna::gpu_test {
namespace {

using harness::Tensors;

class Determinism : public GpuTest {
 protected:
  std::vector<Problem> problems() const {
    std::vector<Problem> out;
    Problem p = window_problem({4096}, {1024});
    p.heads = 4;
    p.kv_heads = 2;
    p.extra_kv = 200;
    out.push_back(p);
    p = window_problem({48, 40}, {17, 13}, {2, 1}, {1, 2});
    p.head_dim = p.head_dim_v = 128;
    p.dtype = DType::bf16;
    out.push_back(p);
    p = window_problem({8, 16, 24}, {5, 9, 9}, {1, 2, 3}, {}, {true, false, false});
    p.head_dim = p.head_dim_v = 32;
    p.batch = 2;
    out.push_back(p);
    return out;
  }

  // The gradients of one deterministic backward, as host bytes.
  std::vector<std::vector<unsigned char>> gradients(const Tensors& forward_done,
                                                    const Problem& p) {
    Tensors t(p, device_, harness::Layout::contiguous);
    t.copy_from(forward_done);
    t.poison_outputs();
    t.copy_forward_results_from(forward_done);
    Options options;
    options.backend = backend_;
    options.deterministic = true;
    EXPECT_EQ(gna::backward(p.params, t.backward_args(), options), backend_);
    harness::synchronize(device_);
    std::vector<std::vector<unsigned char>> out;
    for (Tensors::Slot s : {Tensors::dq, Tensors::dk, Tensors::dv, Tensors::dxk, Tensors::dxv}) {
      std::vector<unsigned char> host;
      if (t.view(s).defined()) t.host_view(s, host);
      out.push_back(std::move(host));
    }
    return out;
  }
};

TEST_P(Determinism, RepeatedRunsAreBitwiseEqual) {
  for (const Problem& p : problems()) {
    if (!reason(p, Pass::backward).empty()) {
      ++skipped_;
      skip_reason_ = reason(p, Pass::backward);
      continue;
    }
    ++ran_;
    std::mt19937_64 rng(11);
    Tensors t(p, device_, harness::Layout::contiguous);
    t.randomize_inputs(rng);
    Options options;
    options.backend = "auto";
    gna::forward(p.params, t.forward_args(), options);
    harness::synchronize(device_);
    const auto first = gradients(t, p);
    for (int run = 0; run < 3; ++run) {
      const auto again = gradients(t, p);
      for (size_t i = 0; i < first.size(); ++i) {
        ASSERT_EQ(first[i].size(), again[i].size());
        EXPECT_EQ(std::memcmp(first[i].data(), again[i].data(), first[i].size()), 0)
            << p.describe() << ": gradient " << i << " differs in run " << run + 2;
      }
    }
  }
  GNA_SKIP_IF_NOTHING_RAN();
}

TEST_P(Determinism, MatchesTheReference) {
  for (const Problem& p : problems()) {
    harness::CaseSpec spec;
    spec.problem = p;
    spec.pass = Pass::backward;
    spec.seed = 3;
    spec.deterministic = true;
    const harness::CaseResult r = harness::run_case(spec, backend_, device_);
    if (!r.ran) {
      ++skipped_;
      skip_reason_ = r.skipped;
      continue;
    }
    ++ran_;
    EXPECT_TRUE(r.passed) << p.describe() << ": worst error/tolerance " << r.worst << " in "
                          << r.worst_tensor << "; " << r.detail;
  }
  GNA_SKIP_IF_NOTHING_RAN();
}

GNA_GPU_INSTANTIATE(Determinism);

}  // namespace
}  // namespace gna::gpu_test
