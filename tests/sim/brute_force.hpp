// A brute-force tile count for the simulator's tests: explicit boxes of
// tokens, the oracle's T x T mask (built from docs/semantics.md, not from
// window.hpp), and every (query, key) pair of every tile pair looked at.
#pragma once

#include <cstdint>
#include <vector>

#include "gna/problem.hpp"
#include "gna/tiles.hpp"

namespace gna::simtest {

struct BruteCounts {
  int64_t q_tiles = 0;
  int64_t visited = 0;          // KV tiles holding a visible pair, plus extra KV tiles
  int64_t masked = 0;           // of those, tiles with an invisible or out-of-range pair
  int64_t extra = 0;            // additional KV tiles
  int64_t empty_candidates = 0; // covering tiles with no visible pair (never visited)
  int64_t useful = 0;           // visible pairs + tokens * extra_kv
  // (visited, masked) of every query tile, sorted.
  std::vector<std::pair<int64_t, int64_t>> per_query_tile;
};

BruteCounts brute_force(const Problem& problem, const TileConfig& tiles);

}  // namespace gna::simtest
