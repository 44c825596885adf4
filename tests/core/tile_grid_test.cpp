// The kernels' index splitting against plain division: `grid_cell` (which
// dilation group and tile a linear tile index falls in; it skips the
// division when the index lies in its group's first tile run) and the
// window rules' `quotient` / `modulo` (which skip it for a divisor of 1).
#include <gtest/gtest.h>

#include <random>

#include "core/window.hpp"
#include "cuda/sm90/params.hpp"

namespace gna {
namespace {

TEST(TileGrid, GridCellAgreesWithDivisionOnRandomGrids) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> groups(0, 6), tiles(1, 9);
  for (int trial = 0; trial < 2000 && !HasFailure(); ++trial) {
    sm90::TileGrid g;
    g.big_groups = groups(rng);
    const int32_t small_groups = groups(rng) + (g.big_groups == 0 ? 1 : 0);
    g.tiles_big = tiles(rng);
    g.tiles_small = tiles(rng);
    g.tiles = g.big_groups * g.tiles_big + small_groups * g.tiles_small;
    const int32_t in_big = g.big_groups * g.tiles_big;
    for (int32_t u = 0; u < g.tiles; ++u) {
      const int32_t want_group =
          u < in_big ? u / g.tiles_big : g.big_groups + (u - in_big) / g.tiles_small;
      const int32_t want_tile = u < in_big ? u % g.tiles_big : (u - in_big) % g.tiles_small;
      int32_t group = -1, tile = -1;
      sm90::grid_cell(g, u, group, tile);
      ASSERT_EQ(group, want_group) << "u " << u << " big groups " << g.big_groups;
      ASSERT_EQ(tile, want_tile) << "u " << u << " big groups " << g.big_groups;
    }
  }
}

TEST(TileGrid, QuotientAndModuloAgreeWithDivision) {
  std::mt19937_64 rng(6);
  std::uniform_int_distribution<int64_t> value(0, int64_t{1} << 40), divisor(1, 40);
  for (int trial = 0; trial < 20000; ++trial) {
    const int64_t a = value(rng), b = trial % 3 == 0 ? 1 : divisor(rng);
    ASSERT_EQ(window::quotient(a, b), a / b) << a << " / " << b;
    ASSERT_EQ(window::modulo(a, b), a % b) << a << " % " << b;
    // Rounded down: -a / b is -ceil(a / b).
    ASSERT_EQ(window::floor_div(-a, b), -((a + b - 1) / b)) << -a << " / " << b;
    ASSERT_EQ(window::floor_div(a, b), a / b) << a << " / " << b;
  }
}

}  // namespace
}  // namespace gna
