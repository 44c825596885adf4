// The simulator's counts equal a brute-force count over explicit masks.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "brute_force.hpp"
#include "gna/error.hpp"
#include "gna/sim.hpp"
#include "random_tiles.hpp"

namespace gna::sim {
namespace {

using simtest::brute_force;

// (visited, masked) of every query tile, expanded from the simulator's loads.
std::vector<std::pair<int64_t, int64_t>> per_query_tile(const SimResult& r) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const TileLoad& l : r.loads) out.insert(out.end(), l.count, {l.visited, l.masked});
  std::sort(out.begin(), out.end());
  return out;
}

void expect_matches_brute_force(const Problem& p, const TileConfig& t) {
  SCOPED_TRACE(p.describe() + " | " + t.describe());
  const SimResult r = simulate(p, t);
  const simtest::BruteCounts b = brute_force(p, t);
  EXPECT_EQ(b.empty_candidates, 0) << "a covering KV tile holds no visible pair";
  EXPECT_EQ(r.q_tiles, b.q_tiles);
  EXPECT_EQ(r.visited_kv_tiles, b.visited);
  EXPECT_EQ(r.masked_kv_tiles, b.masked);
  EXPECT_EQ(r.extra_kv_tiles, b.extra);
  EXPECT_EQ(r.useful_work, b.useful);
  EXPECT_EQ(r.work_done, b.visited * t.q_tokens() * t.kv_tokens());
  EXPECT_EQ(per_query_tile(r), b.per_query_tile);
  EXPECT_EQ(r.min_visited, b.per_query_tile.empty() ? 0 : std::min_element(
      b.per_query_tile.begin(), b.per_query_tile.end())->first);
  EXPECT_EQ(r.max_visited, b.per_query_tile.empty() ? 0 : b.per_query_tile.back().first);
  EXPECT_GE(r.work_done, r.useful_work);
  EXPECT_LE(r.tile_bound, r.flop_bound + 1e-12);
}

TEST(sim_brute_force, random_small_problems) {
  std::mt19937_64 rng(20240601);
  for (int i = 0; i < 600 && !HasFailure(); ++i) {
    const Problem p = simtest::random_small_problem(rng);
    expect_matches_brute_force(p, simtest::random_tiles(rng, p.rank()));
  }
}

TEST(sim_brute_force, both_tilings_of_the_same_problem) {
  std::mt19937_64 rng(77);
  for (int i = 0; i < 150 && !HasFailure(); ++i) {
    const Problem p = simtest::random_small_problem(rng);
    TileConfig t = simtest::random_tiles(rng, p.rank());
    for (KvTiling tiling : {KvTiling::window_start, KvTiling::fixed_grid}) {
      t.kv_tiling = tiling;
      expect_matches_brute_force(p, t);
    }
  }
}

// Longer 1-D axes: many interior tiles, strides and dilations that do not
// divide the tiles, causal borders.
TEST(sim_brute_force, one_dimensional_sweep) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 200 && !HasFailure(); ++i) {
    Problem p;
    p.extent[0] = std::uniform_int_distribution<int64_t>(1, 300)(rng);
    AxisParams& ax = p.params.axis[0];
    ax.dilation = std::uniform_int_distribution<int64_t>(1, std::min<int64_t>(5, p.extent[0]))(rng);
    ax.kernel_size = std::uniform_int_distribution<int64_t>(1, p.extent[0] / ax.dilation)(rng);
    ax.stride = std::uniform_int_distribution<int64_t>(1, ax.kernel_size)(rng);
    ax.is_causal = rng() % 3 == 0;
    p.extra_kv = rng() % 4 == 0 ? std::uniform_int_distribution<int64_t>(1, 40)(rng) : 0;
    TileConfig t;
    t.q_tile[0] = std::uniform_int_distribution<int64_t>(1, 40)(rng);
    t.kv_tile[0] = std::uniform_int_distribution<int64_t>(1, 40)(rng);
    t.kv_tiling = rng() % 2 ? KvTiling::window_start : KvTiling::fixed_grid;
    expect_matches_brute_force(p, t);
  }
}

TEST(sim_figures, self_attention_is_dense) {
  Problem p;
  p.params.rank = 2;
  p.extent[0] = p.extent[1] = 16;
  p.params.axis[0].kernel_size = p.params.axis[1].kernel_size = 16;
  TileConfig t;
  t.rank = 2;
  t.q_tile[0] = t.q_tile[1] = t.kv_tile[0] = t.kv_tile[1] = 4;
  for (KvTiling tiling : {KvTiling::window_start, KvTiling::fixed_grid}) {
    t.kv_tiling = tiling;
    const SimResult r = simulate(p, t);
    EXPECT_EQ(r.q_tiles, 16);
    EXPECT_EQ(r.visited_kv_tiles, 256);
    EXPECT_EQ(r.masked_kv_tiles, 0);
    EXPECT_DOUBLE_EQ(r.flop_bound, 1.0);
    EXPECT_DOUBLE_EQ(r.tile_bound, 1.0);
  }
}

TEST(sim_figures, rejects_tiles_of_another_rank) {
  Problem p;
  p.extent[0] = 8;
  p.params.axis[0].kernel_size = 3;
  TileConfig t;
  t.rank = 2;
  EXPECT_THROW(simulate(p, t), Error);
  t.rank = 1;
  t.kv_tile[0] = 0;
  EXPECT_THROW(simulate(p, t), Error);
}

Problem video_problem() {
  Problem p;
  p.params.rank = 3;
  const int64_t extent[] = {30, 48, 80}, window[] = {18, 24, 24};
  for (int a = 0; a < 3; ++a) {
    p.extent[a] = extent[a];
    p.params.axis[a].kernel_size = window[a];
  }
  p.heads = p.kv_heads = 24;
  p.head_dim = p.head_dim_v = 128;
  return p;
}

TEST(sim_speed, video_case_well_under_a_second) {
  const Problem p = video_problem();
  TileConfig t;
  t.rank = 3;
  const int64_t q[] = {2, 8, 8};
  std::copy(q, q + 3, t.q_tile);
  std::copy(q, q + 3, t.kv_tile);
  const auto start = std::chrono::steady_clock::now();
  const SimResult r = simulate(p, t);
  const double simulate_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.q_tiles, 15 * 6 * 10);
  EXPECT_NEAR(r.flop_bound, 11.11, 0.01);
  EXPECT_LT(simulate_s, 1.0);
  // The whole chooser (thousands of configurations) also answers in time.
  const auto chooser_start = std::chrono::steady_clock::now();
  choose_tiles(p);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - chooser_start).count(),
            1.0);
}

}  // namespace
}  // namespace gna::sim
