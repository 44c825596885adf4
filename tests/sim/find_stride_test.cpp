// block_sparse_strides: the stride found leaves no masked tile, one less
// does, and "none" means no stride works.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "brute_force.hpp"
#include "gna/error.hpp"
#include "gna/sim.hpp"
#include "random_tiles.hpp"

namespace gna::sim {
namespace {

Problem with_stride(Problem p, int axis, int64_t stride) {
  p.params.axis[axis].stride = stride;
  return p;
}

TEST(sim_find_stride, found_strides_are_the_smallest_mask_free_ones) {
  std::mt19937_64 rng(11);
  int fully_sparse = 0;
  for (int i = 0; i < 400 && !HasFailure(); ++i) {
    Problem p = simtest::random_small_problem(rng);
    p.extra_kv = 0;
    const TileConfig t = simtest::random_tiles(rng, p.rank());
    SCOPED_TRACE(p.describe() + " | " + t.describe());
    const std::vector<int64_t> strides = block_sparse_strides(p, t);
    bool all_found = true;
    for (int64_t s : strides) all_found &= s > 0;
    if (!all_found) {
      // An axis with no stride: every stride on it leaves some mask (the
      // other axes at a stride of their own that works, where one exists).
      for (int a = 0; a < p.rank(); ++a) {
        if (strides[a] > 0) p = with_stride(p, a, strides[a]);
      }
      for (int a = 0; a < p.rank(); ++a) {
        if (strides[a] > 0) continue;
        for (int64_t s = 1; s <= p.params.axis[a].kernel_size; ++s) {
          EXPECT_GT(simulate(with_stride(p, a, s), t).masked_kv_tiles, 0);
        }
      }
      continue;
    }
    ++fully_sparse;
    for (int a = 0; a < p.rank(); ++a) p = with_stride(p, a, strides[a]);
    EXPECT_EQ(simulate(p, t).masked_kv_tiles, 0);
    EXPECT_EQ(simtest::brute_force(p, t).masked, 0);
    for (int a = 0; a < p.rank(); ++a) {
      if (strides[a] == 1) continue;
      const Problem smaller = with_stride(p, a, strides[a] - 1);
      EXPECT_GT(simulate(smaller, t).masked_kv_tiles, 0) << "axis " << a;
      EXPECT_GT(simtest::brute_force(smaller, t).masked, 0) << "axis " << a;
    }
  }
  EXPECT_GT(fully_sparse, 20) << "too few block-sparse cases to test the claim";
}

TEST(sim_find_stride, blocked_attention_on_aligned_tiles) {
  // Window 2048 on 128-token tiles: a query tile sharing one window needs
  // stride 128, and its 16 dynamic KV tiles are then all fully visible.
  Problem p;
  p.extent[0] = 32768;
  p.params.axis[0].kernel_size = 2048;
  TileConfig t;
  t.q_tile[0] = t.kv_tile[0] = 128;
  EXPECT_EQ(block_sparse_strides(p, t), std::vector<int64_t>{128});
}

TEST(sim_find_stride, sm90_shape_with_the_smallest_mask_free_strides) {
  Problem p;
  p.params.rank = 3;
  const int64_t extent[] = {30, 48, 80}, window[] = {18, 24, 24};
  for (int a = 0; a < 3; ++a) {
    p.extent[a] = extent[a];
    p.params.axis[a].kernel_size = window[a];
  }
  const std::optional<BlockSparsePick> pick = sm90_block_sparse(p);
  ASSERT_TRUE(pick.has_value());
  int64_t product = 1;
  for (int a = 0; a < 3; ++a) {
    ASSERT_GT(pick->strides[a], 0);
    product *= pick->strides[a];
    p.params.axis[a].stride = pick->strides[a];
  }
  EXPECT_EQ(simulate(p, pick->tiles).masked_kv_tiles, 0);
  // No sm90 shape gets away with smaller strides.
  for (const TileConfig& t : sm90_candidates(p)) {
    const std::vector<int64_t> s = block_sparse_strides(p, t);
    if (s[0] && s[1] && s[2]) {
      EXPECT_GE(s[0] * s[1] * s[2], product) << t.describe();
    }
  }
}

}  // namespace
}  // namespace gna::sim

namespace gna::sim {
namespace {

// The search is bounded: 2^31 one-token query tiles are more than it looks
// at, so it refuses, naming kernel_size, instead of walking for minutes.
TEST(sim_find_stride, search_past_its_bound_is_a_named_error) {
  Problem p;
  p.params.rank = 1;
  p.extent[0] = int64_t{1} << 31;
  p.params.axis[0].kernel_size = 3;
  TileConfig t;
  t.rank = 1;
  t.q_tile[0] = t.kv_tile[0] = 1;
  try {
    block_sparse_strides(p, t);
    ADD_FAILURE() << "no error past the search bound";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "kernel_size");
    EXPECT_NE(std::string(e.what()).find("at most"), std::string::npos) << e.what();
  }
  // Within the bound the same search answers (every one-token tile is clean).
  p.extent[0] = int64_t{1} << 20;
  EXPECT_EQ(block_sparse_strides(p, t), std::vector<int64_t>{1});
}

// The simulator's walk is bounded the same way, naming the extent.
TEST(sim_simulate, walk_past_its_bound_is_a_named_error) {
  Problem p;
  p.params.rank = 1;
  p.extent[0] = int64_t{1} << 31;
  p.params.axis[0].kernel_size = 3;
  TileConfig t;
  t.rank = 1;
  t.q_tile[0] = t.kv_tile[0] = 128;  // 2^24 query tiles: the most it walks
  EXPECT_EQ(simulate(p, t).q_tiles, int64_t{1} << 24);
  t.q_tile[0] = 64;  // 2^25
  try {
    simulate(p, t);
    ADD_FAILURE() << "no error past the walk bound";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "extent");
    EXPECT_NE(std::string(e.what()).find("at most 16777216 query tiles"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace gna::sim
