// The window arithmetic of src/core/window.hpp (and its tile-granular form,
// core/tile_walk.hpp): hand-worked examples from docs/semantics.md, then
// properties checked by brute force over random axes.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/tile_walk.hpp"
#include "core/window.hpp"
#include "harness/oracle.hpp"
#include "support.hpp"

namespace gna {
namespace {

using window::Axis;
using window::Range;

Axis axis(int64_t n, int64_t k, int64_t s = 1, int64_t d = 1, bool causal = false) {
  return Axis{n, k, s, d, causal};
}

// key_range of in-group position p, with m taken from p's dilation group 0.
Range keys(const Axis& a, int64_t p) {
  return window::key_range(a, p, window::group_length(a, 0));
}

void expect_range(Range r, int64_t lo, int64_t hi) {
  EXPECT_EQ(r.lo, lo);
  EXPECT_EQ(r.hi, hi);
}

// ---- Hand-worked examples ---------------------------------------------------

TEST(WindowExamples, OddWindowIsCentered) {
  const Axis a = axis(10, 5);
  EXPECT_EQ(window::left_reach(a), 2);
  EXPECT_EQ(window::right_reach(a), 2);
  expect_range(keys(a, 5), 3, 7);
}

TEST(WindowExamples, EvenWindowReachesRLeftAndRMinusOneRight) {
  const Axis a = axis(10, 4);  // k = 2r with r = 2
  EXPECT_EQ(window::left_reach(a), 2);
  EXPECT_EQ(window::right_reach(a), 1);
  expect_range(keys(a, 5), 3, 6);
  expect_range(keys(a, 2), 0, 3);
}

TEST(WindowExamples, BorderShiftsWindowInwardWithoutShrinking) {
  const Axis odd = axis(10, 5);
  expect_range(keys(odd, 0), 0, 4);
  expect_range(keys(odd, 1), 0, 4);
  expect_range(keys(odd, 8), 5, 9);
  expect_range(keys(odd, 9), 5, 9);
  const Axis even = axis(10, 4);
  expect_range(keys(even, 0), 0, 3);
  expect_range(keys(even, 1), 0, 3);
  expect_range(keys(even, 8), 6, 9);  // center clamps to m - 1 - R = 8
  expect_range(keys(even, 9), 6, 9);
}

TEST(WindowExamples, StrideRunsShareTheirMiddleLeadersWindow) {
  // Runs {0,1,2} {3,4,5} {6,7,8} {9}; leaders 1, 4, 7 and min(10, 9) = 9.
  const Axis a = axis(10, 4, 3);
  for (int64_t p : {0, 1, 2}) expect_range(keys(a, p), 0, 3);  // leader 1 clamped to L = 2
  for (int64_t p : {3, 4, 5}) expect_range(keys(a, p), 2, 5);
  for (int64_t p : {6, 7, 8}) expect_range(keys(a, p), 5, 8);
  expect_range(keys(a, 9), 6, 9);
  // Stride 4, window 4: the leader of run {4..7} is 4 + 2 = 6.
  const Axis blocked = axis(11, 4, 4);
  for (int64_t p : {4, 5, 6, 7}) expect_range(keys(blocked, p), 4, 7);
  // Run {8, 9, 10} is partial: leader min(10, 10) = 10, window shifted to 7..10.
  for (int64_t p : {8, 9, 10}) expect_range(keys(blocked, p), 7, 10);
}

TEST(WindowExamples, CausalLeaderIsLastOfRun) {
  const Axis a = axis(10, 4, 3, 1, true);
  expect_range(keys(a, 0), 0, 0);  // leader 2: keys max(2 - 3, 0) .. p
  expect_range(keys(a, 1), 0, 1);
  expect_range(keys(a, 2), 0, 2);
  expect_range(keys(a, 3), 2, 3);  // leader 5: keys 2 .. p
  expect_range(keys(a, 5), 2, 5);
  expect_range(keys(a, 6), 5, 6);  // leader 8
  // Partial last run {9}: leader min(11, 9) = 9, so keys 6 .. 9 (k of them).
  expect_range(keys(a, 9), 6, 9);
}

TEST(WindowExamples, CausalEarlyQueriesSeeFewerKeys) {
  const Axis a = axis(7, 3, 1, 1, true);
  EXPECT_EQ(window::keys_seen(a, 0), 1);
  EXPECT_EQ(window::keys_seen(a, 1), 2);
  EXPECT_EQ(window::keys_seen(a, 2), 3);
  EXPECT_EQ(window::keys_seen(a, 6), 3);
  expect_range(keys(a, 6), 4, 6);
}

TEST(WindowExamples, DilationGroupsWhenLengthIsNotAMultiple) {
  // n = 11, d = 3: groups {0,3,6,9}, {1,4,7,10}, {2,5,8}.
  const Axis a = axis(11, 3, 1, 3);
  EXPECT_EQ(window::group_length(a, 0), 4);
  EXPECT_EQ(window::group_length(a, 1), 4);
  EXPECT_EQ(window::group_length(a, 2), 3);
  EXPECT_EQ(window::group_of(a, 8), 2);
  EXPECT_EQ(window::position_of(a, 8), 2);
  EXPECT_EQ(window::index_of(a, 2, 2), 8);
  auto seen_by = [&](int64_t i) {
    std::vector<int64_t> js;
    for (int64_t j = 0; j < a.length; ++j) {
      if (window::visible(a, i, j)) js.push_back(j);
    }
    return js;
  };
  EXPECT_EQ(seen_by(8), (std::vector<int64_t>{2, 5, 8}));   // m = 3: whole group
  EXPECT_EQ(seen_by(10), (std::vector<int64_t>{4, 7, 10}));  // border shift in group 1
  EXPECT_EQ(seen_by(0), (std::vector<int64_t>{0, 3, 6}));
  EXPECT_EQ(seen_by(4), (std::vector<int64_t>{1, 4, 7}));
  // n = 7, d = 2: groups {0,2,4,6} (m = 4) and {1,3,5} (m = 3).
  const Axis b = axis(7, 2, 1, 2);
  EXPECT_EQ(window::group_length(b, 0), 4);
  EXPECT_EQ(window::group_length(b, 1), 3);
  EXPECT_EQ(window::keys_seen(b, 5), 2);
  // Query 5 is p = 2 of m = 3; L = 1, R = 0, center 2: keys 3 and 5.
  EXPECT_TRUE(window::visible(b, 5, 3));
  EXPECT_TRUE(window::visible(b, 5, 5));
  EXPECT_FALSE(window::visible(b, 5, 1));
  EXPECT_FALSE(window::visible(b, 5, 4));
}

// ---- Brute-force properties over random axes ---------------------------------

// Random valid axes of every kind: even/odd/1/full windows, every stride,
// dilation with lengths that are not multiples of it, causal or not.
std::vector<Axis> random_axes(int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  std::vector<Axis> axes;
  for (int i = 0; i < count; ++i) {
    Axis a;
    a.length = uniform(1, 40);
    a.dilation = uniform(0, 2) == 0 ? uniform(1, std::min<int64_t>(5, a.length)) : 1;
    const int64_t kmax = a.length / a.dilation;
    const int64_t kind = uniform(0, 3);
    a.kernel = kind == 0 ? 1 : kind == 1 ? kmax : uniform(1, kmax);
    const int64_t skind = uniform(0, 2);
    a.stride = skind == 0 ? 1 : skind == 1 ? a.kernel : uniform(1, a.kernel);
    a.causal = uniform(0, 2) == 0;
    axes.push_back(a);
  }
  return axes;
}

std::string describe(const Axis& a) {
  return "n=" + std::to_string(a.length) + " k=" + std::to_string(a.kernel) +
         " s=" + std::to_string(a.stride) + " d=" + std::to_string(a.dilation) +
         (a.causal ? " causal" : "");
}

TEST(WindowProperties, QueryRangeIsExactInverseOfKeyRange) {
  for (const Axis& a : random_axes(600, 1)) {
    SCOPED_TRACE(describe(a));
    for (int64_t g = 0; g < a.dilation; ++g) {
      const int64_t m = window::group_length(a, g);
      for (int64_t q = 0; q < m; ++q) {
        const Range queries = window::query_range(a, q, m);
        for (int64_t p = 0; p < m; ++p) {
          ASSERT_EQ(queries.contains(p), window::key_range(a, p, m).contains(q))
              << "group " << g << " query " << p << " key " << q;
        }
      }
    }
  }
}

// The closed forms of first_query_reaching / last_query_starting_by against
// their definitions, searched for (both ends of key_range are monotone in p).
TEST(WindowProperties, QueryRangeClosedFormMatchesBinarySearch) {
  for (const Axis& a : random_axes(600, 7)) {
    SCOPED_TRACE(describe(a));
    for (int64_t g = 0; g < a.dilation; ++g) {
      const int64_t m = window::group_length(a, g);
      for (int64_t q = -3; q < m + 3; ++q) {
        int64_t lo = 0, hi = m;  // first p with key_range(p).hi >= q
        while (lo < hi) {
          const int64_t mid = lo + (hi - lo) / 2;
          if (window::key_range(a, mid, m).hi >= q) hi = mid; else lo = mid + 1;
        }
        ASSERT_EQ(window::first_query_reaching(a, q, m), lo) << "key " << q;
        lo = 0;
        hi = m;  // first p with key_range(p).lo > q
        while (lo < hi) {
          const int64_t mid = lo + (hi - lo) / 2;
          if (window::key_range(a, mid, m).lo > q) hi = mid; else lo = mid + 1;
        }
        ASSERT_EQ(window::last_query_starting_by(a, q, m), lo - 1) << "key " << q;
      }
    }
  }
}

TEST(WindowProperties, QueryRangeUnionAgreesWithBruteForce) {
  std::mt19937_64 rng(8);
  for (const Axis& a : random_axes(300, 9)) {
    SCOPED_TRACE(describe(a));
    const int64_t m = window::group_length(a, 0);
    for (int trial = 0; trial < 20; ++trial) {
      const int64_t key_lo = std::uniform_int_distribution<int64_t>(0, m - 1)(rng);
      const int64_t key_hi = std::uniform_int_distribution<int64_t>(key_lo, m - 1)(rng);
      const Range u = window::query_range_union(a, key_lo, key_hi, m);
      for (int64_t p = 0; p < m; ++p) {
        const Range r = window::key_range(a, p, m);
        const bool sees_some = r.lo <= key_hi && r.hi >= key_lo;
        ASSERT_EQ(u.contains(p), sees_some) << "query " << p << " keys " << key_lo << ".." << key_hi;
      }
    }
  }
}

TEST(WindowProperties, WindowSizesFollowTheRules) {
  for (const Axis& a : random_axes(600, 2)) {
    SCOPED_TRACE(describe(a));
    for (int64_t g = 0; g < a.dilation; ++g) {
      const int64_t m = window::group_length(a, g);
      for (int64_t p = 0; p < m; ++p) {
        const Range r = window::key_range(a, p, m);
        ASSERT_GE(r.lo, 0);
        ASSERT_LE(r.hi, m - 1);
        if (a.causal) {
          ASSERT_EQ(r.hi, p);  // never after itself
          ASSERT_LE(r.size(), a.kernel);
        } else {
          ASSERT_EQ(r.size(), a.kernel);  // shifted at borders, never shrunk
        }
        // Every query of a run shares its window (causal: its start).
        const Range first_of_run = window::key_range(a, (p / a.stride) * a.stride, m);
        ASSERT_EQ(r.lo, first_of_run.lo);
        if (!a.causal) {
          ASSERT_EQ(r.hi, first_of_run.hi);
        }
      }
    }
  }
}

// window::visible against the independent oracle's mask of a 1-D problem.
TEST(WindowProperties, VisibleAgreesWithOracleMask) {
  for (const Axis& a : random_axes(300, 3)) {
    SCOPED_TRACE(describe(a));
    const Problem p =
        test::problem_of({a.length}, {AxisParams{a.kernel, a.stride, a.dilation, a.causal}});
    const std::vector<bool> mask = harness::oracle_mask(p);
    for (int64_t i = 0; i < a.length; ++i) {
      for (int64_t j = 0; j < a.length; ++j) {
        ASSERT_EQ(window::visible(a, i, j), mask[i * a.length + j])
            << "query " << i << " key " << j;
      }
    }
  }
}

TEST(WindowProperties, KeyRangeUnionAndSeesAllAgreeWithBruteForce) {
  std::mt19937_64 rng(4);
  for (const Axis& a : random_axes(300, 5)) {
    SCOPED_TRACE(describe(a));
    const int64_t m = window::group_length(a, 0);
    for (int trial = 0; trial < 20; ++trial) {
      auto pick = [&](int64_t lo, int64_t hi) {
        return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
      };
      const int64_t first = pick(0, m - 1), last = pick(first, m - 1);
      std::vector<bool> any(m, false), all(m, true);
      for (int64_t p = first; p <= last; ++p) {
        const Range r = window::key_range(a, p, m);
        for (int64_t q = 0; q < m; ++q) {
          any[q] = any[q] || r.contains(q);
          all[q] = all[q] && r.contains(q);
        }
      }
      const Range u = window::key_range_union(a, first, last, m);
      for (int64_t q = 0; q < m; ++q) ASSERT_EQ(u.contains(q), any[q]) << "key " << q;
      const int64_t key_lo = pick(0, m - 1), key_hi = pick(key_lo, m - 1);
      bool expected = true;
      for (int64_t q = key_lo; q <= key_hi; ++q) expected = expected && all[q];
      ASSERT_EQ(window::sees_all(a, first, last, key_lo, key_hi, m), expected)
          << "queries " << first << ".." << last << " keys " << key_lo << ".." << key_hi;
    }
  }
}

// ---- Tile granularity (core/tile_walk.hpp) ------------------------------------

// Random axes with power-of-two query and KV tile extents 1..32.
struct Case {
  Axis axis;
  int64_t q_extent, kv_extent;
};

std::vector<Case> random_cases(int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Case> cases;
  for (const Axis& a : random_axes(count, seed)) {
    const int64_t q = int64_t{1} << std::uniform_int_distribution<int>(0, 5)(rng);
    const int64_t kv = int64_t{1} << std::uniform_int_distribution<int>(0, 5)(rng);
    cases.push_back({a, q, kv});
  }
  return cases;
}

std::string describe(const Case& c) {
  return describe(c.axis) + " q_tile=" + std::to_string(c.q_extent) +
         " kv_tile=" + std::to_string(c.kv_extent);
}

// Every query tile with a visible pair is visited, no other; "full" exactly
// when every existing query sees every key of an in-group KV tile.
TEST(TileWalk, QueryTilesSeeingAKvTileAreExact) {
  for (const Case& c : random_cases(800, 21)) {
    SCOPED_TRACE(describe(c));
    const Axis& a = c.axis;
    for (int64_t g = 0; g < a.dilation; ++g) {
      const int64_t m = window::group_length(a, g);
      const int64_t q_tiles = (m + c.q_extent - 1) / c.q_extent;
      for (int64_t k0 = 0; k0 < m; k0 += c.kv_extent) {
        const window::QueryTileSpan span =
            window::query_tiles_seeing(a, k0, c.kv_extent, c.q_extent, m);
        for (int64_t t = 0; t < q_tiles; ++t) {
          bool any = false, all = true;
          for (int64_t p = t * c.q_extent; p < std::min(m, (t + 1) * c.q_extent); ++p) {
            const window::Range keys = window::key_range(a, p, m);
            for (int64_t k = k0; k < k0 + c.kv_extent; ++k) {
              const bool seen = k < m && keys.contains(k);
              any = any || seen;
              all = all && seen;
            }
          }
          ASSERT_EQ(span.first <= t && t <= span.last, any) << "KV tile at " << k0 << ", query tile " << t;
          ASSERT_EQ(span.is_full(t), any && all) << "KV tile at " << k0 << ", query tile " << t;
        }
        ASSERT_GE(span.count(), 1) << "every key is seen by some query";
      }
    }
  }
}

// The inverse map (KV tiles a query tile visits) agrees with the walk.
TEST(TileWalk, KvTilesSeenByAQueryTileInvertTheWalk) {
  for (const Case& c : random_cases(800, 22)) {
    SCOPED_TRACE(describe(c));
    const Axis& a = c.axis;
    for (int64_t g = 0; g < a.dilation; ++g) {
      const int64_t m = window::group_length(a, g);
      const int64_t kv_tiles = (m + c.kv_extent - 1) / c.kv_extent;
      for (int64_t first = 0; first < m; first += c.q_extent) {
        const int64_t t = first / c.q_extent;
        const window::Range seen = window::kv_tiles_seen_by(a, first, c.q_extent, c.kv_extent, m);
        for (int64_t kv = 0; kv < kv_tiles; ++kv) {
          const window::QueryTileSpan span =
              window::query_tiles_seeing(a, kv * c.kv_extent, c.kv_extent, c.q_extent, m);
          ASSERT_EQ(seen.contains(kv), span.first <= t && t <= span.last)
              << "query tile " << t << ", KV tile " << kv;
        }
      }
    }
  }
}

}  // namespace
}  // namespace gna
