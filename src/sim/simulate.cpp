// simulate(): combines the per-axis walks of axis_tiles into the figures of
// the whole problem.
#include <algorithm>
#include <cstdint>
#include <map>
#include <utility>

#include "core/axes.hpp"
#include "core/check.hpp"
#include "core/checked.hpp"
#include "gna/sim.hpp"
#include "sim/axis_tiles.hpp"
#include "sim/tile_checks.hpp"

namespace gna::sim {

double SimResult::mean_visited() const {
  return q_tiles ? static_cast<double>(visited_kv_tiles) / static_cast<double>(q_tiles) : 0.0;
}

namespace {

using detail::LoadMap;

LoadMap forward_loads(const Problem& p, const TileConfig& tiles) {
  std::vector<std::vector<detail::AxisGroups>> axes;
  for (int a = 0; a < p.rank(); ++a) {
    axes.push_back(detail::axis_tiles(gna::detail::axis_of(p, a), tiles.q_tile[a],
                                      tiles.kv_tile[a], tiles.kv_tiling));
  }
  return detail::combine_axes(axes);
}

}  // namespace

SimResult simulate(const Problem& p, const TileConfig& tiles) {
  validate(p);
  check_tiles(p, tiles);
  SimResult r;
  r.flop_bound = r.tile_bound = 1.0;
  if (p.empty()) return r;

  // Additional KV is one flat run of tokens after the neighborhood; only its
  // ragged last tile needs the mask.
  const int64_t kv_tokens = tiles.kv_tokens();
  const int64_t extra_masked = p.extra_kv % kv_tokens ? 1 : 0;
  const int64_t extra_tiles = p.extra_kv / kv_tokens + extra_masked;
  // Every figure is a count: one past 2^62 is an error naming the problem.
  auto mul = [](int64_t a, int64_t b) {
    return gna::detail::checked_mul(a, b, "extent", "a simulated work figure");
  };
  auto add = [](int64_t a, int64_t b) {
    return gna::detail::checked_add(a, b, "extent", "a simulated work figure");
  };

  r.min_visited = INT64_MAX;
  for (const auto& [vc, count] : forward_loads(p, tiles)) {
    TileLoad load{add(vc.first, extra_tiles), vc.first - vc.second + extra_masked, count};
    r.q_tiles = add(r.q_tiles, count);
    r.visited_kv_tiles = add(r.visited_kv_tiles, mul(load.visited, count));
    r.masked_kv_tiles = add(r.masked_kv_tiles, mul(load.masked, count));
    r.extra_kv_tiles = add(r.extra_kv_tiles, mul(extra_tiles, count));
    r.min_visited = std::min(r.min_visited, load.visited);
    r.max_visited = std::max(r.max_visited, load.visited);
    r.loads.push_back(load);
  }
  std::sort(r.loads.begin(), r.loads.end(), [](const TileLoad& x, const TileLoad& y) {
    return x.visited != y.visited ? x.visited > y.visited : x.masked > y.masked;
  });

  const int64_t tokens = p.tokens();
  r.useful_work = add(p.visible_pairs(), mul(tokens, p.extra_kv));
  r.work_done = mul(mul(r.visited_kv_tiles, tiles.q_tokens()), kv_tokens);
  r.dense_work = mul(tokens, add(tokens, p.extra_kv));
  r.flop_bound = static_cast<double>(r.dense_work) / static_cast<double>(r.useful_work);
  r.tile_bound = static_cast<double>(r.dense_work) / static_cast<double>(r.work_done);
  return r;
}

}  // namespace gna::sim
