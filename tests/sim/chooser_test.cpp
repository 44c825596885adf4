// The tile chooser returns a configuration the sm90 kernel can run.
#include <gtest/gtest.h>

#include <random>

#include "gna/error.hpp"
#include "gna/sim.hpp"
#include "random_tiles.hpp"

namespace gna::sim {
namespace {

Problem problem_of(std::vector<int64_t> extent, std::vector<int64_t> window,
                   std::vector<int64_t> stride, int64_t head_dim) {
  Problem p;
  p.params.rank = static_cast<int>(extent.size());
  for (int a = 0; a < p.rank(); ++a) {
    p.extent[a] = extent[a];
    p.params.axis[a].kernel_size = window[a];
    p.params.axis[a].stride = stride[a];
  }
  p.head_dim = p.head_dim_v = head_dim;
  return p;
}

void expect_runnable(const Problem& p, const TileConfig& t) {
  SCOPED_TRACE(p.describe() + " | " + t.describe());
  const Sm90Tiles limits = sm90_tiles(p);
  EXPECT_EQ(t.rank, p.rank());
  EXPECT_EQ(t.q_tokens(), limits.q_tokens);
  EXPECT_EQ(t.kv_tokens(), limits.kv_tokens);
  for (int a = 1; a < p.rank(); ++a) {  // axis 0 may be loaded as several boxes
    EXPECT_LE(t.q_tile[a] * p.params.axis[a].dilation, limits.max_tma_span);
    EXPECT_LE(t.kv_tile[a] * p.params.axis[a].dilation, limits.max_tma_span);
  }
}

TEST(sim_chooser, picks_a_runnable_config_and_ranks_by_time) {
  const Problem cases[] = {
      problem_of({32768}, {2048}, {256}, 128),
      problem_of({256, 256}, {80, 80}, {16, 16}, 64),
      problem_of({30, 48, 80}, {18, 24, 24}, {1, 1, 1}, 256),
      problem_of({16, 44, 80}, {16, 32, 48}, {1, 8, 16}, 32),
  };
  for (const Problem& p : cases) {
    const std::vector<TileConfig> candidates = sm90_candidates(p);
    ASSERT_FALSE(candidates.empty());
    const std::vector<RankedTiles> ranked = rank_tiles(p, candidates);
    ASSERT_EQ(ranked.size(), candidates.size());
    for (size_t i = 1; i < ranked.size(); ++i) {
      EXPECT_LE(ranked[i - 1].predicted_s, ranked[i].predicted_s);
    }
    const RankedTiles best = choose_tiles(p);
    expect_runnable(p, best.tiles);
    EXPECT_EQ(best.tiles.describe(), ranked.front().tiles.describe());
    EXPECT_GT(best.predicted_s, 0.0);
    EXPECT_GE(best.sim.tile_bound, 1.0);
  }
}

TEST(sim_chooser, enumerates_every_power_of_two_factorization) {
  // 128 = 2^7 over three axes: C(9, 2) = 36 shapes, squared, two tilings.
  const Problem p = problem_of({256, 256, 256}, {9, 9, 9}, {1, 1, 1}, 128);
  EXPECT_EQ(sm90_candidates(p).size(), 36u * 36u * 2u);
  // Short axes cap the extents at their next power of two.
  const Problem flat = problem_of({3, 256}, {3, 9}, {1, 1}, 128);
  for (const TileConfig& t : sm90_candidates(flat)) EXPECT_LE(t.q_tile[0], 4);
}

TEST(sim_chooser, random_problems_get_runnable_configs) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100; ++i) {
    Problem p = simtest::random_small_problem(rng);
    if (p.empty()) continue;
    if (sm90_candidates(p).empty()) {
      EXPECT_THROW(choose_tiles(p), Error);
      continue;
    }
    expect_runnable(p, choose_tiles(p).tiles);
  }
}

TEST(sim_chooser, whole_waves_of_ctas) {
  // Self attention on 128-token tiles: every CTA visits every KV tile, none
  // masked; one CTA more than the SMs costs a second wave.
  const CostModel cost;
  for (int64_t ctas : {int64_t{cost.sms}, int64_t{cost.sms} + 1}) {
    const Problem p = problem_of({128 * ctas}, {128 * ctas}, {1}, 128);
    TileConfig t;
    t.q_tile[0] = t.kv_tile[0] = 128;
    const SimResult r = simulate(p, t);
    ASSERT_EQ(r.masked_kv_tiles, 0);
    const double mma_s = 2.0 * 128 * 128 * 256 / (cost.peak_flops / cost.sms);
    const double cta_s = cost.per_query_tile_s + ctas * (mma_s + cost.per_kv_tile_s);
    const double waves = ctas > cost.sms ? 2.0 : 1.0;
    EXPECT_NEAR(predict_seconds(p, t, r, cost), waves * cta_s, 1e-12);
    EXPECT_NEAR(predict_dense_seconds(p, t, cost), waves * cta_s, 1e-12);
  }
}

TEST(sim_chooser, dilation_beyond_the_tma_box_is_refused_with_a_reason) {
  // Axis 0 may be loaded as several boxes: a long dilated 1-D tile is fine.
  Problem p1 = problem_of({4096}, {7}, {1}, 128);
  p1.params.axis[0].dilation = 3;  // 128 tokens * 3 > 256, split in two boxes
  EXPECT_FALSE(sm90_candidates(p1).empty());
  // An inner axis cannot be split: one token there already spans 300 elements.
  Problem p = problem_of({4, 600}, {1, 2}, {1, 1}, 128);
  p.params.axis[1].dilation = 300;
  EXPECT_TRUE(sm90_candidates(p).empty());
  try {
    choose_tiles(p);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("TMA"), std::string::npos);
  }
}

}  // namespace
}  // namespace gna::sim
