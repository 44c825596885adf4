#include "brute_force.hpp"

#include <algorithm>

#include "harness/oracle.hpp"

namespace gna::simtest {
namespace {

// Tokens of one dilation-group combination, in in-group positions per axis.
struct Group {
  int rank = 1;
  int64_t g[kMaxSpatialRank] = {0, 0, 0};
  int64_t d[kMaxSpatialRank] = {1, 1, 1};
  int64_t m[kMaxSpatialRank] = {1, 1, 1};
  int64_t n[kMaxSpatialRank] = {1, 1, 1};

  bool in_range(const int64_t* pos) const {
    for (int a = 0; a < rank; ++a) {
      if (pos[a] < 0 || pos[a] >= m[a]) return false;
    }
    return true;
  }
  int64_t flat(const int64_t* pos) const {  // row-major absolute token index
    int64_t i = 0;
    for (int a = 0; a < rank; ++a) i = i * n[a] + g[a] + d[a] * pos[a];
    return i;
  }
};

// Calls body(pos) for every position of the box [lo, lo + size) per axis.
template <typename Body>
void for_box(int rank, const int64_t* lo, const int64_t* size, Body&& body) {
  int64_t pos[kMaxSpatialRank] = {0, 0, 0};
  int64_t i[kMaxSpatialRank] = {0, 0, 0};
  const int64_t total = size[0] * (rank > 1 ? size[1] : 1) * (rank > 2 ? size[2] : 1);
  for (int64_t t = 0; t < total; ++t) {
    int64_t rest = t;
    for (int a = rank - 1; a >= 0; --a) {
      i[a] = rest % size[a];
      rest /= size[a];
      pos[a] = lo[a] + i[a];
    }
    body(static_cast<const int64_t*>(pos));
  }
}

struct Counter {
  const Problem& p;
  const TileConfig& t;
  const std::vector<bool>& mask;
  int64_t T;
  BruteCounts out;

  void query_tile(const Group& grp, const int64_t* q_lo) {
    int64_t q_size[kMaxSpatialRank] = {1, 1, 1};
    for (int a = 0; a < p.rank(); ++a) q_size[a] = std::min(t.q_tile[a], grp.m[a] - q_lo[a]);
    std::vector<int64_t> queries;
    for_box(p.rank(), q_lo, q_size, [&](const int64_t* pos) { queries.push_back(grp.flat(pos)); });

    // Bounding box, in in-group positions, of every key a query of the tile sees.
    int64_t lo[kMaxSpatialRank], hi[kMaxSpatialRank];
    std::fill(lo, lo + kMaxSpatialRank, INT64_MAX);
    std::fill(hi, hi + kMaxSpatialRank, INT64_MIN);
    for (int64_t j = 0; j < T; ++j) {
      bool seen = false;
      for (int64_t i : queries) seen = seen || mask[static_cast<size_t>(i * T + j)];
      if (!seen) continue;
      int64_t rest = j;
      for (int a = p.rank() - 1; a >= 0; --a) {
        const int64_t x = rest % p.extent[a];
        rest /= p.extent[a];
        lo[a] = std::min(lo[a], x / grp.d[a]);
        hi[a] = std::max(hi[a], x / grp.d[a]);
      }
    }
    // KV tile starts per axis; every box of their product is a candidate.
    int64_t first[kMaxSpatialRank] = {0, 0, 0}, count[kMaxSpatialRank] = {1, 1, 1};
    for (int a = 0; a < p.rank(); ++a) {
      const int64_t kv = t.kv_tile[a];
      first[a] = t.kv_tiling == KvTiling::window_start ? lo[a] : lo[a] / kv * kv;
      count[a] = (hi[a] - first[a]) / kv + 1;
    }
    int64_t visited = 0, masked = 0;
    const int64_t zero[kMaxSpatialRank] = {0, 0, 0};
    for_box(p.rank(), zero, count, [&](const int64_t* index) {
      int64_t kv_lo[kMaxSpatialRank] = {0, 0, 0};
      for (int a = 0; a < p.rank(); ++a) kv_lo[a] = first[a] + index[a] * t.kv_tile[a];
      bool any = false, all = true;
      for_box(p.rank(), kv_lo, t.kv_tile, [&](const int64_t* pos) {
        if (!grp.in_range(pos)) {
          all = false;
          return;
        }
        const int64_t j = grp.flat(pos);
        for (int64_t i : queries) {
          const bool v = mask[static_cast<size_t>(i * T + j)];
          any = any || v;
          all = all && v;
        }
      });
      if (!any) {
        ++out.empty_candidates;
        return;
      }
      ++visited;
      if (!all) ++masked;
    });
    const int64_t kv_tokens = t.kv_tokens();
    const int64_t extra = (p.extra_kv + kv_tokens - 1) / kv_tokens;
    visited += extra;
    masked += p.extra_kv % kv_tokens ? 1 : 0;
    ++out.q_tiles;
    out.visited += visited;
    out.masked += masked;
    out.extra += extra;
    out.per_query_tile.emplace_back(visited, masked);
  }

  void group(const Group& grp) {
    int64_t tiles[kMaxSpatialRank] = {1, 1, 1};
    for (int a = 0; a < p.rank(); ++a) tiles[a] = (grp.m[a] + t.q_tile[a] - 1) / t.q_tile[a];
    const int64_t zero[kMaxSpatialRank] = {0, 0, 0};
    for_box(p.rank(), zero, tiles, [&](const int64_t* index) {
      int64_t q_lo[kMaxSpatialRank] = {0, 0, 0};
      for (int a = 0; a < p.rank(); ++a) q_lo[a] = index[a] * t.q_tile[a];
      query_tile(grp, q_lo);
    });
  }
};

}  // namespace

BruteCounts brute_force(const Problem& p, const TileConfig& t) {
  const std::vector<bool> mask = harness::oracle_mask(p);
  Counter c{p, t, mask, p.tokens(), {}};
  int64_t groups[kMaxSpatialRank] = {1, 1, 1};
  for (int a = 0; a < p.rank(); ++a) groups[a] = p.params.axis[a].dilation;
  const int64_t zero[kMaxSpatialRank] = {0, 0, 0};
  for_box(p.rank(), zero, groups, [&](const int64_t* g) {
    Group grp;
    grp.rank = p.rank();
    for (int a = 0; a < p.rank(); ++a) {
      grp.g[a] = g[a];
      grp.d[a] = p.params.axis[a].dilation;
      grp.n[a] = p.extent[a];
      grp.m[a] = (p.extent[a] - g[a] + grp.d[a] - 1) / grp.d[a];  // docs/semantics.md, rule 1
    }
    c.group(grp);
  });
  for (bool v : mask) c.out.useful += v ? 1 : 0;
  c.out.useful += p.tokens() * p.extra_kv;
  std::sort(c.out.per_query_tile.begin(), c.out.per_query_tile.end());
  return c.out;
}

}  // namespace gna::simtest
