// The tile chooser: the sm90 kernel's tile shapes as data, ranked by the
// cost model.
#include <algorithm>
#include <string>
#include <vector>

#include "core/axes.hpp"
#include "core/check.hpp"
#include "cuda/sm90/config.hpp"
#include "gna/sim.hpp"
#include "sim/shapes.hpp"

namespace gna::sim {
namespace {

int64_t next_pow2(int64_t n) {
  int64_t p = 1;
  while (p < n) p *= 2;
  return p;
}

// Every way to write `tokens` as a product of `rank` powers of two.
void factorizations(int64_t tokens, int rank, Extents& prefix, std::vector<Extents>& out) {
  if (static_cast<int>(prefix.size()) == rank - 1) {
    prefix.push_back(tokens);
    out.push_back(prefix);
    prefix.pop_back();
    return;
  }
  for (int64_t e = 1; e <= tokens; e *= 2) {
    if (tokens % e) break;
    prefix.push_back(e);
    factorizations(tokens / e, rank, prefix, out);
    prefix.pop_back();
  }
}

}  // namespace

std::vector<Extents> tile_shapes(const Problem& p, int64_t tokens, int64_t max_tma_span) {
  std::vector<Extents> all, loadable, snug;
  Extents prefix;
  factorizations(tokens, p.rank(), prefix, all);
  for (const Extents& e : all) {
    bool fits_tma = true, fits_axes = true;
    for (int a = 0; a < p.rank(); ++a) {
      const window::Axis ax = gna::detail::axis_of(p, a);
      // The kernel loads axis 0 as several boxes when one would be too long.
      fits_tma &= a == 0 || ax.dilation <= max_tma_span / e[a];  // e * d <= span, no overflow
      fits_axes &= e[a] <= next_pow2(window::group_length(ax, 0));
    }
    if (!fits_tma) continue;
    loadable.push_back(e);
    if (fits_axes) snug.push_back(e);
  }
  return snug.empty() ? loadable : snug;
}

Sm90Tiles sm90_tiles(const Problem& p) {
  // The kernel's own tile sizes (a plain header, present in CPU-only builds).
  Sm90Tiles t;
  t.q_tokens = sm90::kQueryTileTokens;
  t.kv_tokens = sm90::kv_tile_tokens(static_cast<int>(std::max(p.head_dim, p.head_dim_v)));
  return t;
}

std::vector<TileConfig> sm90_candidates(const Problem& p) {
  const Sm90Tiles t = sm90_tiles(p);
  std::vector<TileConfig> out;
  for (const Extents& q : tile_shapes(p, t.q_tokens, t.max_tma_span)) {
    for (const Extents& kv : tile_shapes(p, t.kv_tokens, t.max_tma_span)) {
      for (KvTiling tiling : {KvTiling::window_start, KvTiling::fixed_grid}) {
        TileConfig c;
        c.rank = p.rank();
        std::copy(q.begin(), q.end(), c.q_tile);
        std::copy(kv.begin(), kv.end(), c.kv_tile);
        c.kv_tiling = tiling;
        out.push_back(c);
      }
    }
  }
  return out;
}

std::vector<RankedTiles> rank_tiles(const Problem& p, const std::vector<TileConfig>& candidates,
                                    const CostModel& cost) {
  std::vector<RankedTiles> ranked;
  for (const TileConfig& c : candidates) {
    RankedTiles r;
    r.tiles = c;
    r.sim = simulate(p, c);
    r.predicted_s = predict_seconds(p, c, r.sim, cost);
    const double dense_s = predict_dense_seconds(p, c, cost);
    r.predicted_speedup = r.predicted_s > 0 ? dense_s / r.predicted_s : 1.0;
    ranked.push_back(r);
  }
  std::sort(ranked.begin(), ranked.end(), [](const RankedTiles& x, const RankedTiles& y) {
    if (x.predicted_s != y.predicted_s) return x.predicted_s < y.predicted_s;
    if (x.sim.masked_kv_tiles != y.sim.masked_kv_tiles) {
      return x.sim.masked_kv_tiles < y.sim.masked_kv_tiles;
    }
    return x.tiles.describe() < y.tiles.describe();
  });
  return ranked;
}

RankedTiles choose_tiles(const Problem& p, const CostModel& cost) {
  const std::vector<TileConfig> candidates = sm90_candidates(p);
  if (candidates.empty()) {
    const Sm90Tiles t = sm90_tiles(p);
    gna::detail::fail_unsupported(
        "sm90", gna::detail::concat("no tile of ", t.q_tokens, " query tokens fits the TMA box "
                                    "limit (tile extent * dilation <= ", t.max_tma_span,
                                    " on axes after the first); lower the dilation"));
  }
  return rank_tiles(p, candidates, cost).front();
}

}  // namespace gna::sim
