// slab::plan (src/core/slab.hpp), the halo rule of gna.distributed, by brute
// force: for random axes and random slabs, the planned keys are exactly the
// union of the slab's windows, and one call on the planned local grid gives
// every query of the slab exactly its whole-axis window.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "core/slab.hpp"
#include "core/window.hpp"

namespace gna {
namespace {

using window::Axis;

std::string describe(const Axis& a, int64_t first, int64_t last) {
  return "n=" + std::to_string(a.length) + " k=" + std::to_string(a.kernel) +
         " s=" + std::to_string(a.stride) + " d=" + std::to_string(a.dilation) +
         (a.causal ? " causal" : "") + " slab " + std::to_string(first) + ".." +
         std::to_string(last);
}

TEST(SlabPlan, LocalGridReproducesWholeAxisWindows) {
  std::mt19937_64 rng(10);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (int trial = 0; trial < 4000; ++trial) {
    Axis a;
    a.length = uniform(1, 48);
    a.dilation = uniform(0, 2) == 0 ? uniform(1, std::min<int64_t>(5, a.length)) : 1;
    const int64_t kmax = a.length / a.dilation;
    a.kernel = uniform(0, 3) == 0 ? kmax : uniform(1, kmax);
    const int64_t skind = uniform(0, 2);
    a.stride = skind == 0 ? 1 : skind == 1 ? a.kernel : uniform(1, a.kernel);
    a.causal = uniform(0, 2) == 0;
    const int64_t first = uniform(0, a.length - 1);
    const int64_t last = uniform(0, 3) == 0 ? first : uniform(first, a.length - 1);
    SCOPED_TRACE(describe(a, first, last));

    const slab::Plan p = slab::plan(a, first, last);
    // The keys: exactly from the first to the last key any query sees.
    int64_t lo = a.length, hi = -1;
    for (int64_t i = first; i <= last; ++i) {
      for (int64_t j = 0; j < a.length; ++j) {
        if (window::visible(a, i, j)) lo = std::min(lo, j), hi = std::max(hi, j);
      }
    }
    ASSERT_EQ(p.keys.lo, lo);
    ASSERT_EQ(p.keys.hi, hi);
    // The grid: inside the axis, around the keys, aligned, a valid problem.
    ASSERT_GE(p.grid.lo, 0);
    ASSERT_LE(p.grid.hi, a.length - 1);
    ASSERT_LE(p.grid.lo, p.keys.lo);
    ASSERT_GE(p.grid.hi, p.keys.hi);
    ASSERT_EQ(p.grid.lo % (a.stride * a.dilation), 0);
    ASSERT_GE(p.grid.size(), a.kernel * a.dilation);
    // One call on the grid alone: the same visible keys for every query.
    Axis local = a;
    local.length = p.grid.size();
    for (int64_t i = first; i <= last; ++i) {
      for (int64_t j = p.grid.lo; j <= p.grid.hi; ++j) {
        ASSERT_EQ(window::visible(local, i - p.grid.lo, j - p.grid.lo), window::visible(a, i, j))
            << "query " << i << " key " << j;
      }
    }
  }
}

TEST(SlabPlan, EmptySlabHasNoKeys) {
  const slab::Plan p = slab::plan(Axis{10, 3, 1, 1, false}, 4, 3);
  EXPECT_TRUE(p.keys.empty());
  EXPECT_TRUE(p.grid.empty());
}

}  // namespace
}  // namespace gna
