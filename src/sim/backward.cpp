// The simulator, time model and tile chooser of the sm90 backward kernel.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/axes.hpp"
#include "core/check.hpp"
#include "core/checked.hpp"
#include "cuda/sm90/config.hpp"
#include "gna/sim.hpp"
#include "sim/axis_tiles.hpp"
#include "sim/makespan.hpp"
#include "sim/shapes.hpp"
#include "sim/tile_checks.hpp"

namespace gna::sim {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

// Every figure is a count: one past 2^62 is an error naming the problem.
int64_t mul(int64_t a, int64_t b) {
  return gna::detail::checked_mul(a, b, "extent", "a simulated work figure");
}
int64_t add(int64_t a, int64_t b) {
  return gna::detail::checked_add(a, b, "extent", "a simulated work figure");
}

// Query tiles of one query head: per axis, the tiles of every dilation group
// (of two lengths: length / dilation and one more).
int64_t query_tiles(const Problem& p, const TileConfig& tiles) {
  int64_t total = 1;
  for (int a = 0; a < p.rank(); ++a) {
    const window::Axis ax = gna::detail::axis_of(p, a);
    const int64_t shorter = ax.length / ax.dilation, longer = ax.length % ax.dilation;
    const int64_t along = add(mul(ax.dilation - longer, ceil_div(shorter, tiles.q_tile[a])),
                              mul(longer, ceil_div(shorter + 1, tiles.q_tile[a])));
    total = mul(total, along);
  }
  return total;
}

double step_mma_seconds(const Problem& p, const TileConfig& tiles, const BackwardCostModel& cost) {
  const double flops = 2.0 * static_cast<double>(tiles.q_tokens() * tiles.kv_tokens()) *
                       static_cast<double>(3 * p.head_dim + 2 * p.head_dim_v);
  return flops / (cost.peak_flops / cost.sms);
}

}  // namespace

BackwardSimResult simulate_backward(const Problem& p, const TileConfig& tiles) {
  validate(p);
  check_tiles(p, tiles);
  BackwardSimResult r;
  r.tile_bound = 1.0;
  if (p.empty() || p.kv_heads == 0) return r;
  const int64_t group = p.heads / p.kv_heads;

  std::vector<std::vector<detail::AxisGroups>> axes;
  for (int a = 0; a < p.rank(); ++a) {
    axes.push_back(
        detail::backward_axis_tiles(gna::detail::axis_of(p, a), tiles.q_tile[a], tiles.kv_tile[a]));
  }
  r.min_steps = INT64_MAX;
  for (const auto& [vc, count] : detail::combine_axes(axes)) {
    const TileLoad load{mul(group, vc.first), mul(group, vc.first - vc.second), count};
    r.kv_ctas = add(r.kv_ctas, count);
    r.steps = add(r.steps, mul(load.visited, count));
    r.masked_steps = add(r.masked_steps, mul(load.masked, count));
    r.min_steps = std::min(r.min_steps, load.visited);
    r.max_steps = std::max(r.max_steps, load.visited);
    r.loads.push_back(load);
  }

  // Additional KV: each tile's (query head, query tile) steps are cut into
  // splits about as long as the longest neighborhood CTA, so that they do not
  // form the tail, and at least 16 steps long, so that partial sums stay few.
  r.q_tiles = query_tiles(p, tiles);
  r.extra_tiles = ceil_div(p.extra_kv, tiles.kv_tokens());
  if (r.extra_tiles > 0) {
    const int64_t per_tile = mul(group, r.q_tiles);
    const int64_t target = std::max<int64_t>(16, r.max_steps);
    r.extra_splits = ceil_div(per_tile, target);
    r.steps_per_split = ceil_div(per_tile, r.extra_splits);
    r.extra_splits = ceil_div(per_tile, r.steps_per_split);
    r.extra_steps = mul(r.extra_tiles, per_tile);
    const bool ragged = p.extra_kv % tiles.kv_tokens() != 0;
    const int64_t last = per_tile - (r.extra_splits - 1) * r.steps_per_split;
    for (int64_t t = 0; t < r.extra_tiles; ++t) {
      const bool masked = ragged && t + 1 == r.extra_tiles;
      r.loads.push_back({r.steps_per_split, masked ? r.steps_per_split : 0, r.extra_splits - 1});
      r.loads.push_back({last, masked ? last : 0, 1});
    }
  }
  std::sort(r.loads.begin(), r.loads.end(), [](const TileLoad& x, const TileLoad& y) {
    return x.visited != y.visited ? x.visited > y.visited : x.masked > y.masked;
  });

  const int64_t tokens = p.tokens();
  r.useful_work = mul(group, add(p.visible_pairs(), mul(tokens, p.extra_kv)));
  r.work_done = mul(mul(add(r.steps, r.extra_steps), tiles.q_tokens()), tiles.kv_tokens());
  const int64_t dense = mul(mul(group, tokens), add(tokens, p.extra_kv));
  r.tile_bound = r.work_done > 0 ? static_cast<double>(dense) / static_cast<double>(r.work_done) : 1.0;
  return r;
}

double predict_backward_seconds(const Problem& p, const TileConfig& tiles,
                                const BackwardSimResult& r, const BackwardCostModel& cost) {
  const double mma_s = step_mma_seconds(p, tiles, cost);
  std::vector<CtaCost> ctas;
  for (const TileLoad& l : r.loads) {
    const double seconds = cost.per_cta_s + static_cast<double>(l.visited) * (mma_s + cost.per_step_s) +
                           static_cast<double>(l.masked) * cost.mask_fraction * mma_s;
    ctas.push_back({seconds, l.count * p.batch * p.kv_heads});
  }
  return ctas.empty() ? 0.0 : makespan(std::move(ctas), cost.sms);
}

Sm90Tiles sm90_backward_tiles(const Problem& p) {
  Sm90Tiles t;
  t.q_tokens = sm90::backward_query_tile_tokens(static_cast<int>(p.head_dim));
  t.kv_tokens = sm90::kBackwardKvTileTokens;
  return t;
}

std::vector<TileConfig> sm90_backward_candidates(const Problem& p) {
  const Sm90Tiles t = sm90_backward_tiles(p);
  std::vector<TileConfig> out;
  for (const Extents& q : tile_shapes(p, t.q_tokens, t.max_tma_span)) {
    for (const Extents& kv : tile_shapes(p, t.kv_tokens, t.max_tma_span)) {
      TileConfig c;
      c.rank = p.rank();
      std::copy(q.begin(), q.end(), c.q_tile);
      std::copy(kv.begin(), kv.end(), c.kv_tile);
      c.kv_tiling = KvTiling::fixed_grid;
      out.push_back(c);
    }
  }
  return out;
}

std::vector<RankedBackwardTiles> rank_backward_tiles(const Problem& p,
                                                     const std::vector<TileConfig>& candidates,
                                                     const BackwardCostModel& cost) {
  std::vector<RankedBackwardTiles> ranked;
  for (const TileConfig& c : candidates) {
    RankedBackwardTiles r;
    r.tiles = c;
    r.sim = simulate_backward(p, c);
    r.predicted_s = predict_backward_seconds(p, c, r.sim, cost);
    ranked.push_back(std::move(r));
  }
  std::sort(ranked.begin(), ranked.end(), [](const RankedBackwardTiles& x, const RankedBackwardTiles& y) {
    if (x.predicted_s != y.predicted_s) return x.predicted_s < y.predicted_s;
    if (x.sim.masked_steps != y.sim.masked_steps) return x.sim.masked_steps < y.sim.masked_steps;
    return x.tiles.describe() < y.tiles.describe();
  });
  return ranked;
}

RankedBackwardTiles choose_backward_tiles(const Problem& p, const BackwardCostModel& cost) {
  const std::vector<TileConfig> candidates = sm90_backward_candidates(p);
  if (candidates.empty()) {
    const Sm90Tiles t = sm90_backward_tiles(p);
    gna::detail::fail_unsupported(
        "sm90", gna::detail::concat("no backward tile of ", t.q_tokens, " query tokens fits the TMA "
                                    "box limit (tile extent * dilation <= ", t.max_tma_span,
                                    " on axes after the first); lower the dilation"));
  }
  return rank_backward_tiles(p, candidates, cost).front();
}

}  // namespace gna::sim
