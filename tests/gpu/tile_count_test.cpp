// The simulator against the sm90 forward kernel: on random problems, with
// the tiles the chooser picks and with other candidates, the KV tiles the
// kernel visits and masks (counted by the kernel itself, see
// sm90::count_forward_tiles) equal the simulator's counts times batch and
// heads. The persistent kernel's items cover every (query tile, head,
// batch) exactly once only if these agree.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cuda/sm90/host.hpp"
#include "gna/gna.hpp"
#include "gna/sim.hpp"
#include "harness/buffer.hpp"
#include "harness/check.hpp"
#include "harness/tensors.hpp"

namespace gna::sm90 {
namespace {

// Turns the kernel's counting on for the lifetime of the object.
class CountingOn {
 public:
  explicit CountingOn(Device device) : counts_(device, 2 * sizeof(unsigned long long)) {
    counts_.fill_byte(0);
    count_forward_tiles(static_cast<unsigned long long*>(counts_.data()));
  }
  ~CountingOn() { count_forward_tiles(nullptr); }
  CountingOn(const CountingOn&) = delete;
  CountingOn& operator=(const CountingOn&) = delete;

  void read(unsigned long long (&out)[2]) const { counts_.download(out, sizeof(out)); }

 private:
  harness::Buffer counts_;
};

std::string sm90_reason(const Problem& p, Device device) {
  for (const BackendInfo& info : backends(p, Pass::forward, device)) {
    if (info.name == "sm90") return info.reason;
  }
  return "sm90 is not built into this library";
}

TEST(Sm90TileCount, KernelVisitsWhatTheSimulatorCounts) {
  if (gna::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
  const std::optional<Device> device = harness::device_for_backend("sm90");
  if (!device) GTEST_SKIP() << "sm90 is not built into this library";
  Problem probe;
  probe.extent[0] = 64;
  probe.params.axis[0].kernel_size = 7;
  probe.dtype = DType::f16;
  probe.head_dim = probe.head_dim_v = 64;
  const std::string why = sm90_reason(probe, *device);
  if (!why.empty()) GTEST_SKIP() << "sm90 cannot run here: " << why;

  std::mt19937_64 rng(20261203);
  harness::RandomSpec spec;
  spec.max_extent = 300;
  spec.max_tokens = 3000;
  spec.head_dims = {32, 64, 128};
  spec.different_value_dim = false;
  spec.dtypes = {DType::f16, DType::bf16};
  int ran = 0;
  for (int i = 0; i < 40; ++i) {
    const Problem p = harness::random_problem(rng, spec);
    if (!sm90_reason(p, *device).empty()) continue;
    // The chooser's pick on even cases, another candidate on odd ones.
    const std::vector<TileConfig> candidates = sim::sm90_candidates(p);
    ASSERT_FALSE(candidates.empty()) << p.describe();
    const TileConfig tiles = i % 2 == 0 ? sim::choose_tiles(p).tiles
                                        : candidates[rng() % candidates.size()];
    SCOPED_TRACE(p.describe() + " tiles " + tiles.describe());
    const sim::SimResult want = sim::simulate(p, tiles);

    harness::Tensors t(p, *device, harness::Layout::contiguous);
    t.randomize_inputs(rng);
    Options options;
    options.backend = "sm90";
    options.tiles = tiles;
    unsigned long long got[2] = {0, 0};
    {
      const CountingOn counting(*device);
      ASSERT_EQ(gna::forward(p.params, t.forward_args(), options), "sm90");
      harness::synchronize(*device);
      counting.read(got);
    }
    const int64_t copies = p.batch * p.heads;
    EXPECT_EQ(static_cast<int64_t>(got[0]), want.visited_kv_tiles * copies) << "visited";
    EXPECT_EQ(static_cast<int64_t>(got[1]), want.masked_kv_tiles * copies) << "masked";
    ++ran;
  }
  EXPECT_GE(ran, 20);
}

}  // namespace
}  // namespace gna::sm90
