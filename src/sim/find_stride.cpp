// Mask-free strides. The mask condition factorizes over axes, so each axis'
// smallest mask-free stride is found alone, and depends only on that axis'
// tile extents and tiling.
#include <map>
#include <tuple>
#include <vector>

#include "core/axes.hpp"
#include "core/check.hpp"
#include "gna/sim.hpp"
#include "sim/axis_tiles.hpp"
#include "sim/tile_checks.hpp"

namespace gna::sim {
namespace {

// Tries strides 1..k, each until its first masked query tile (an O(1) test
// per tile), so a search costs about k plus the query tiles of the answer;
// kMaxStrideSearch query tiles in all bound it.
int64_t axis_stride(window::Axis axis, int64_t q_extent, int64_t kv_extent, KvTiling tiling) {
  int64_t budget = kMaxStrideSearch;
  for (int64_t s = 1; s <= axis.kernel; ++s) {
    axis.stride = s;
    if (detail::axis_mask_free(axis, q_extent, kv_extent, tiling, budget)) return s;
    if (budget < 0) {
      gna::detail::fail(ErrorKind::value, "kernel_size", axis.kernel,
                        gna::detail::concat("the mask-free stride search looks at most ",
                                            kMaxStrideSearch, " query tiles per axis and ran out "
                                            "at stride ", s, " (axis length ", axis.length,
                                            ", query tile ", q_extent, ", KV tile ", kv_extent,
                                            "): use larger tiles or a smaller problem"));
    }
  }
  return 0;
}

}  // namespace

std::vector<int64_t> block_sparse_strides(const Problem& p, const TileConfig& tiles) {
  validate(p);
  check_tiles(p, tiles);
  std::vector<int64_t> strides(static_cast<size_t>(p.rank()), 0);
  if (p.empty()) return strides;
  for (int a = 0; a < p.rank(); ++a) {
    strides[static_cast<size_t>(a)] = axis_stride(gna::detail::axis_of(p, a), tiles.q_tile[a],
                                                  tiles.kv_tile[a], tiles.kv_tiling);
  }
  return strides;
}

std::optional<BlockSparsePick> sm90_block_sparse(const Problem& p, const CostModel& cost) {
  validate(p);
  if (p.empty()) return std::nullopt;
  // Candidates share per-axis shapes; search each (axis, q, kv, tiling) once.
  std::map<std::tuple<int, int64_t, int64_t, KvTiling>, int64_t> memo;
  std::vector<BlockSparsePick> best;
  int64_t best_product = 0;
  for (const TileConfig& t : sm90_candidates(p)) {
    BlockSparsePick pick{t, {}, 0.0};
    int64_t product = 1;
    for (int a = 0; a < p.rank() && product > 0; ++a) {
      const auto key = std::make_tuple(a, t.q_tile[a], t.kv_tile[a], t.kv_tiling);
      auto it = memo.find(key);
      if (it == memo.end()) {
        it = memo.emplace(key, axis_stride(gna::detail::axis_of(p, a), t.q_tile[a],
                                           t.kv_tile[a], t.kv_tiling)).first;
      }
      pick.strides.push_back(it->second);
      product *= it->second;
    }
    if (product == 0 || (best_product && product > best_product)) continue;
    if (product < best_product || !best_product) best.clear();
    best_product = product;
    best.push_back(pick);
  }
  std::optional<BlockSparsePick> out;
  for (BlockSparsePick& pick : best) {
    Problem strided = p;
    for (int a = 0; a < p.rank(); ++a) strided.params.axis[a].stride = pick.strides[a];
    pick.predicted_s = predict_seconds(strided, pick.tiles, simulate(strided, pick.tiles), cost);
    if (!out || pick.predicted_s < out->predicted_s) out = pick;
  }
  return out;
}

}  // namespace gna::sim
