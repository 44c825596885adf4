// The cpu backend's tile geometry (src/cpu/tile_walk.hpp) against the
// brute-force oracle's mask, which does not use src/core/window.hpp: tiles
// cover every token once as a valid lane; per lane, the tokens of its steps
// that it reaches are exactly the tokens the mask pairs it with, each in one
// step; a step marked clean is reached by every lane.
#include <random>
#include <set>
#include <vector>

#include "cpu/tile_walk.hpp"
#include "cpu_test.hpp"
#include "harness/oracle.hpp"

namespace gna::cpu_test {
namespace {

using cpu::Looks;

int64_t token_of(const Problem& p, const int64_t* x) {
  int64_t t = 0;
  for (int a = 0; a < p.rank(); ++a) t = t * p.extent[a] + x[a];
  return t;
}

// lanes: vector lanes, `group` heads of a token each (every token is then
// the valid lane of `group` lanes).
void expect_geometry_matches_mask(const Problem& p, int lanes, Looks looks, int64_t step_tokens,
                                  int group = 1) {
  const std::vector<bool> mask = harness::oracle_mask(p);
  const int64_t T = p.tokens();
  const cpu::Tiling tiling = cpu::make_tiling(p, lanes, looks, group);
  std::vector<int> owners(static_cast<size_t>(T), 0);
  cpu::TileWalk w;
  for (int64_t tile = 0; tile < tiling.count(); ++tile) {
    w.start(tiling, tile, step_tokens);
    std::vector<std::multiset<int64_t>> reached(static_cast<size_t>(lanes));
    cpu::for_each_step(w, [&](const cpu::Step& step) {
      EXPECT_LE(step.tokens, step_tokens) << "a step larger than asked for";
      cpu::for_each_run(w, step, [&](const int64_t* y, const int64_t* j, int64_t count) {
        for (int64_t i = 0; i < count; ++i) {
          int64_t x[kMaxSpatialRank] = {y[0], y[1], y[2]};
          int64_t pos[kMaxSpatialRank] = {j[0], j[1], j[2]};
          x[p.rank() - 1] = w.index(p.rank() - 1, j[p.rank() - 1] + i);
          pos[p.rank() - 1] += i;
          for (int l = 0; l < lanes; ++l) {
            bool in = true;
            for (int a = 0; a < p.rank(); ++a) {
              in = in && w.reach_lo(a)[l] <= pos[a] && pos[a] <= w.reach_hi(a)[l];
            }
            if (in) reached[static_cast<size_t>(l)].insert(token_of(p, x));
            if (step.clean) {
              EXPECT_TRUE(in) << "a clean step holds a token lane " << l << " misses";
            }
          }
        }
      });
    });
    for (int l = 0; l < lanes; ++l) {
      if (!w.valid(l)) continue;
      int64_t x[kMaxSpatialRank] = {0, 0, 0};
      for (int a = 0; a < p.rank(); ++a) x[a] = w.coord(a, l);
      const int64_t me = token_of(p, x);
      ++owners[static_cast<size_t>(me)];
      std::multiset<int64_t> expected;
      for (int64_t other = 0; other < T; ++other) {
        const bool seen = looks == Looks::at_keys ? mask[me * T + other] : mask[other * T + me];
        if (seen) expected.insert(other);
      }
      ASSERT_EQ(reached[static_cast<size_t>(l)], expected)
          << p.describe() << " lanes " << lanes << " tile " << tile << " lane " << l
          << (looks == Looks::at_keys ? " (keys of a query)" : " (queries of a key)");
    }
  }
  for (int64_t t = 0; t < T; ++t) {
    ASSERT_EQ(owners[static_cast<size_t>(t)], group) << "token " << t;
  }
}

TEST(CpuTiling, StepsReachExactlyTheMask) {
  std::mt19937_64 rng(31);
  harness::RandomSpec spec = harness::spec_for_backend("cpu");
  spec.max_tokens = 300;
  for (int i = 0; i < 60; ++i) {
    const Problem p = harness::random_problem(rng, spec);
    for (int lanes : {1, 3, 4, 16}) {  // 3: the lane counts of 384-bit SVE machines
      for (Looks looks : {Looks::at_keys, Looks::at_queries}) {
        expect_geometry_matches_mask(p, lanes, looks, i % 2 ? 5 : 128);
        if (HasFailure()) return;
        for (int group : {2, 4}) {  // heads in one vector: lanes of one token share its data
          if (lanes % group == 0) expect_geometry_matches_mask(p, lanes, looks, 128, group);
          if (HasFailure()) return;
        }
      }
    }
  }
}

// Of all tile shapes, a square one wastes least on a square window.
TEST(CpuTiling, ChoosesCompactTiles) {
  const cpu::Tiling t = cpu::make_tiling(problem({56, 56}, {axis(7), axis(7)}), 16, Looks::at_keys);
  EXPECT_EQ(t.extent[0], 4);
  EXPECT_EQ(t.extent[1], 4);
  const cpu::Tiling line = cpu::make_tiling(problem({4096}, {axis(512)}), 16, Looks::at_keys);
  EXPECT_EQ(line.extent[0], 16);
}

// With 4 heads, 2x2 tokens x 4 heads reach 8x8 keys of a 7x7 window (77%
// of the lanes' work useful, against 49% for 4x4 tokens); a wide 1-D
// window gains too little from groups to pay for regrouping the rows.
TEST(CpuTiling, GroupsHeadsWhereWindowsAreSmall) {
  Problem p = problem({56, 56}, {axis(7), axis(7)});
  p.heads = p.kv_heads = 4;
  const cpu::Tiling t = cpu::best_tiling(p, 16, Looks::at_keys);
  EXPECT_EQ(t.head_group, 4);
  EXPECT_EQ(t.extent[0], 2);
  EXPECT_EQ(t.extent[1], 2);
  Problem gqa = p;
  gqa.kv_heads = 2;  // groups need a kv head per query head
  EXPECT_EQ(cpu::best_tiling(gqa, 16, Looks::at_keys).head_group, 1);
  Problem line = problem({4096}, {axis(512)});
  line.heads = line.kv_heads = 4;
  EXPECT_EQ(cpu::best_tiling(line, 16, Looks::at_keys).head_group, 1);
}

// Interior tiles of a small window walk the same steps moved (their
// gathering is reused, src/cpu/steps-inl.h); a tile whose windows are
// pushed in by the border does not, nor one of another dilation group.
TEST(CpuTiling, InteriorWalksAreShiftedCopies) {
  for (const int64_t dilation : {1, 2}) {
    const Problem p = problem({56, 56}, {axis(7, 1, dilation), axis(7, 1, dilation)});
    const cpu::Tiling t = cpu::make_tiling(p, 16, Looks::at_keys);
    const int64_t across = static_cast<int64_t>(t.spans[1].size());
    cpu::TileWalk a, b;
    int64_t shift[kMaxSpatialRank] = {};
    a.start(t, 2 * across + 2, 256);  // interior tiles, one apart along axis 1
    b.start(t, 2 * across + 3, 256);
    ASSERT_TRUE(b.shifted_copy_of(a, shift));
    EXPECT_EQ(shift[0], 0);
    EXPECT_EQ(shift[1], t.extent[1] * dilation);
    b.start(t, 3 * across + 2, 256);  // one tile down
    ASSERT_TRUE(b.shifted_copy_of(a, shift));
    EXPECT_EQ(shift[0], t.extent[0] * dilation);
    EXPECT_EQ(shift[1], 0);
    b.start(t, 2 * across, 256);  // at the border: windows pushed in
    EXPECT_FALSE(b.shifted_copy_of(a, shift));
  }
}

}  // namespace
}  // namespace gna::cpu_test
