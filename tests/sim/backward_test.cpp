// The backward simulator's counts equal a brute-force count over the
// oracle's explicit mask: every KV tile (fixed grid per dilation group)
// against every query tile (fixed grid), all pairs looked at.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <utility>
#include <vector>

#include "gna/sim.hpp"
#include "harness/oracle.hpp"
#include "random_tiles.hpp"

namespace gna::sim {
namespace {

// Absolute token index of in-group positions `pos` of group combination `g`,
// or -1 past a group's end.
int64_t token(const Problem& p, const int64_t* g, const int64_t* pos) {
  int64_t t = 0;
  for (int a = 0; a < p.rank(); ++a) {
    const int64_t x = g[a] + p.params.axis[a].dilation * pos[a];
    if (x >= p.extent[a]) return -1;
    t = t * p.extent[a] + x;
  }
  return t;
}

// Tokens of the box [first, first + size) per axis (-1 for padding).
std::vector<int64_t> box_tokens(const Problem& p, const int64_t* g, const int64_t* first,
                                const int64_t* size) {
  std::vector<int64_t> out;
  int64_t n = 1;
  for (int a = 0; a < p.rank(); ++a) n *= size[a];
  for (int64_t i = 0; i < n; ++i) {
    int64_t pos[3] = {0, 0, 0}, rest = i;
    for (int a = p.rank() - 1; a >= 0; --a) {
      pos[a] = first[a] + rest % size[a];
      rest /= size[a];
    }
    out.push_back(token(p, g, pos));
  }
  return out;
}

// (steps, masked steps) of every neighborhood CTA, sorted.
std::vector<std::pair<int64_t, int64_t>> brute_force(const Problem& p, const TileConfig& t) {
  const std::vector<bool> mask = harness::oracle_mask(p);
  const int64_t T = p.tokens(), group = p.heads / p.kv_heads;
  std::vector<std::pair<int64_t, int64_t>> ctas;
  // Every combination of dilation groups, then every KV tile and query tile.
  int64_t combos = 1;
  for (int a = 0; a < p.rank(); ++a) combos *= p.params.axis[a].dilation;
  for (int64_t c = 0; c < combos; ++c) {
    int64_t g[3] = {0, 0, 0}, m[3] = {1, 1, 1}, rest = c;
    for (int a = p.rank() - 1; a >= 0; --a) {
      const int64_t d = p.params.axis[a].dilation;
      g[a] = rest % d;
      rest /= d;
      m[a] = (p.extent[a] - g[a] + d - 1) / d;
    }
    int64_t kv_count[3] = {1, 1, 1}, q_count[3] = {1, 1, 1};
    for (int a = 0; a < p.rank(); ++a) {
      kv_count[a] = (m[a] + t.kv_tile[a] - 1) / t.kv_tile[a];
      q_count[a] = (m[a] + t.q_tile[a] - 1) / t.q_tile[a];
    }
    const int64_t zero[3] = {0, 0, 0};
    const std::vector<int64_t> kv_index = box_tokens(p, zero, zero, kv_count);
    for (size_t k = 0; k < kv_index.size(); ++k) {
      int64_t kv_first[3] = {0, 0, 0}, r = static_cast<int64_t>(k);
      for (int a = p.rank() - 1; a >= 0; --a) {
        kv_first[a] = (r % kv_count[a]) * t.kv_tile[a];
        r /= kv_count[a];
      }
      const std::vector<int64_t> keys = box_tokens(p, g, kv_first, t.kv_tile);
      int64_t visited = 0, masked = 0;
      for (int64_t q = 0; q < q_count[0] * q_count[1] * q_count[2]; ++q) {
        int64_t q_first[3] = {0, 0, 0}, rq = q;
        for (int a = p.rank() - 1; a >= 0; --a) {
          q_first[a] = (rq % q_count[a]) * t.q_tile[a];
          rq /= q_count[a];
        }
        bool any = false, all = true;
        for (int64_t i : box_tokens(p, g, q_first, t.q_tile)) {
          if (i < 0) continue;  // padded queries force nothing
          for (int64_t j : keys) {
            const bool seen = j >= 0 && mask[static_cast<size_t>(i * T + j)];
            any = any || seen;
            all = all && seen;
          }
        }
        if (!any) continue;
        ++visited;
        if (!all) ++masked;
      }
      ctas.emplace_back(group * visited, group * masked);
    }
  }
  std::sort(ctas.begin(), ctas.end());
  return ctas;
}

TileConfig random_backward_tiles(std::mt19937_64& rng, int rank) {
  TileConfig t = simtest::random_tiles(rng, rank);
  t.kv_tiling = KvTiling::fixed_grid;
  return t;
}

TEST(sim_backward, counts_match_brute_force) {
  std::mt19937_64 rng(31337);
  for (int i = 0; i < 400 && !HasFailure(); ++i) {
    const Problem p = simtest::random_small_problem(rng);
    if (p.empty()) continue;
    const TileConfig t = random_backward_tiles(rng, p.rank());
    SCOPED_TRACE(p.describe() + " | " + t.describe());
    const BackwardSimResult r = simulate_backward(p, t);
    int64_t steps = 0, masked = 0;
    const std::vector<std::pair<int64_t, int64_t>> want = brute_force(p, t);
    for (const auto& w : want) {
      steps += w.first;
      masked += w.second;
    }
    EXPECT_EQ(r.kv_ctas, static_cast<int64_t>(want.size()));
    EXPECT_EQ(r.steps, steps);
    EXPECT_EQ(r.masked_steps, masked);
    EXPECT_EQ(r.min_steps, want.empty() ? 0 : std::min_element(want.begin(), want.end())->first);
    EXPECT_EQ(r.max_steps, want.empty() ? 0 : std::max_element(want.begin(), want.end())->first);
  }
}

TEST(sim_backward, additional_kv_splits_cover_every_step_once) {
  std::mt19937_64 rng(99);
  for (int i = 0; i < 200 && !HasFailure(); ++i) {
    Problem p = simtest::random_small_problem(rng);
    if (p.empty()) continue;
    p.extra_kv = std::uniform_int_distribution<int64_t>(1, 300)(rng);
    const TileConfig t = random_backward_tiles(rng, p.rank());
    SCOPED_TRACE(p.describe() + " | " + t.describe());
    const BackwardSimResult r = simulate_backward(p, t);
    const int64_t per_tile = (p.heads / p.kv_heads) * r.q_tiles;
    EXPECT_EQ(r.extra_tiles, (p.extra_kv + t.kv_tokens() - 1) / t.kv_tokens());
    EXPECT_GE(r.extra_splits, 1);
    EXPECT_GE(r.steps_per_split * r.extra_splits, per_tile);
    EXPECT_LT(r.steps_per_split * (r.extra_splits - 1), per_tile);  // no empty split
    EXPECT_EQ(r.extra_steps, r.extra_tiles * per_tile);
    int64_t ctas = 0, steps = 0;
    for (const TileLoad& l : r.loads) {
      ctas += l.count;
      steps += l.visited * l.count;
    }
    EXPECT_EQ(ctas, r.kv_ctas + r.extra_tiles * r.extra_splits);
    EXPECT_EQ(steps, r.steps + r.extra_steps);
  }
}

TEST(sim_backward, chooser_picks_a_runnable_configuration) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 100; ++i) {
    Problem p = simtest::random_small_problem(rng);
    if (p.empty()) continue;
    p.head_dim = p.head_dim_v = i % 3 == 0 ? 128 : 64;
    const Sm90Tiles limits = sm90_backward_tiles(p);
    const RankedBackwardTiles pick = choose_backward_tiles(p);
    EXPECT_EQ(pick.tiles.q_tokens(), limits.q_tokens);
    EXPECT_EQ(pick.tiles.kv_tokens(), limits.kv_tokens);
    for (int a = 1; a < p.rank(); ++a) {
      EXPECT_LE(pick.tiles.q_tile[a] * p.params.axis[a].dilation, limits.max_tma_span);
      EXPECT_LE(pick.tiles.kv_tile[a] * p.params.axis[a].dilation, limits.max_tma_span);
    }
    EXPECT_GT(pick.predicted_s, 0.0);
  }
}

}  // namespace
}  // namespace gna::sim
