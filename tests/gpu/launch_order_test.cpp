// The sm90 backward's launch order (longest walks first): host arithmetic
// only, so it runs without a GPU too. On random problems with the backward's
// own tiles, each ordered axis is a permutation of its KV tile cells by
// non-increasing walk length, ties in natural order, where a cell's walk
// length is counted here key by key from window::query_range: the query
// tiles from the first one any of its keys is seen by to the last.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "cuda/sm90/host.hpp"
#include "gna/sim.hpp"
#include "harness/tensors.hpp"

namespace gna::sm90 {
namespace {

int64_t walk_length(const Problem& p, const TileConfig& tiles, int a, int32_t cell) {
  const TileGrid grid = tile_grid(p, tiles.kv_tile[a], a);
  int32_t group = 0, tile = 0;
  grid_cell(grid, cell, group, tile);
  const window::Axis ax = window_axis(axis_geometry(p, tiles, a));
  const int64_t length = window::group_length(ax, group);
  const int64_t q_extent = tiles.q_tile[a], kv_extent = tiles.kv_tile[a];
  int64_t first = INT64_MAX, last = -1;
  for (int64_t k = tile * kv_extent; k < std::min((tile + 1) * kv_extent, length); ++k) {
    const window::Range seen = window::query_range(ax, k, length);
    if (seen.empty()) continue;
    first = std::min(first, seen.lo / q_extent);
    last = std::max(last, seen.hi / q_extent);
  }
  return last < 0 ? 0 : last - first + 1;
}

TEST(LaunchOrder, LongestWalksFirstOnEveryAxis) {
  std::mt19937_64 rng(20261202);
  harness::RandomSpec spec;
  spec.max_extent = 700;  // a few hundred KV tile cells on a 1-D axis
  spec.max_tokens = 20000;
  spec.head_dims = {32, 64, 128};
  spec.different_value_dim = false;
  int checked_axes = 0;
  for (int i = 0; i < 300; ++i) {
    Problem p = harness::random_problem(rng, spec);
    p.dtype = DType::f16;
    const TileConfig tiles = sim::choose_backward_tiles(p).tiles;
    const LaunchOrder order = longest_walks_first(p, tiles);
    for (int a = 0; a < p.rank(); ++a) {
      const int32_t cells = tile_grid(p, tiles.kv_tile[a], a).tiles;
      SCOPED_TRACE(p.describe() + " axis " + std::to_string(a));
      if (cells > LaunchOrder::capacity(a)) {
        EXPECT_EQ(order.ordered_axes >> a & 1, 0);
        continue;
      }
      ASSERT_EQ(order.ordered_axes >> a & 1, 1);
      std::vector<bool> seen(cells, false);
      for (int32_t position = 0; position < cells; ++position) {
        const int32_t cell = order.cell(a, position);
        ASSERT_GE(cell, 0);
        ASSERT_LT(cell, cells);
        EXPECT_FALSE(seen[cell]) << "cell " << cell << " launched twice";
        seen[cell] = true;
        if (position == 0) continue;
        const int32_t before = order.cell(a, position - 1);
        const int64_t now = walk_length(p, tiles, a, cell);
        const int64_t then = walk_length(p, tiles, a, before);
        EXPECT_GE(then, now) << "position " << position;
        if (then == now) {
          EXPECT_LT(before, cell) << "ties keep the natural order";
        }
      }
      ++checked_axes;
    }
  }
  EXPECT_GT(checked_axes, 300);
}

TEST(LaunchOrder, AxesPastTheirCapacityKeepTheNaturalOrder) {
  Problem p;
  p.extent[0] = 1025 * 128;  // 1025 KV tiles of 128 tokens: one past axis 0's capacity
  p.params.axis[0].kernel_size = 255;
  p.head_dim = p.head_dim_v = 128;
  const TileConfig tiles = sim::choose_backward_tiles(p).tiles;
  ASSERT_GT(tile_grid(p, tiles.kv_tile[0], 0).tiles, LaunchOrder::capacity(0));
  EXPECT_EQ(longest_walks_first(p, tiles).ordered_axes, 0);
  p.extent[0] = 1024 * 128;
  EXPECT_EQ(longest_walks_first(p, sim::choose_backward_tiles(p).tiles).ordered_axes, 1);
}

}  // namespace
}  // namespace gna::sm90
