#include "sim/axis_tiles.hpp"

#include <map>
#include <utility>

#include "core/checked.hpp"
#include "core/tile_walk.hpp"

namespace gna::sim::detail {

int64_t AxisGroups::q_tiles() const {
  int64_t n = 0;
  for (const AxisLoad& l : loads) n += l.count;
  return n;
}

namespace {

using gna::detail::checked_add;
using gna::detail::checked_mul;

// First KV tile start for a query tile whose keys span `keys`.
int64_t first_kv_start(window::Range keys, int64_t kv_extent, KvTiling tiling) {
  return tiling == KvTiling::window_start ? keys.lo : window::floor_div(keys.lo, kv_extent) * kv_extent;
}

int64_t ceil_div(int64_t a, int64_t b) { return -window::floor_div(-a, b); }

// Visited and clean KV tiles of the query tile [first, last] in O(1). Tile j
// covers [lo + j*kv, lo + j*kv + kv - 1]; it is clean when every query of the
// tile sees all of it, i.e. it starts at or after the last query's window
// start and ends by the first query's window end (both ends of key_range are
// nondecreasing), and lies inside the group: keys past m - 1 are TMA zero
// fill and must be masked out.
AxisLoad tile_load(const window::Axis& axis, int64_t first, int64_t last, int64_t m,
                   int64_t kv_extent, KvTiling tiling) {
  const window::Range keys = window::key_range_union(axis, first, last, m);
  const int64_t lo = first_kv_start(keys, kv_extent, tiling);
  AxisLoad load;
  load.visited = ceil_div(keys.hi - lo + 1, kv_extent);
  const int64_t clean_from = window::key_range(axis, last, m).lo;
  const int64_t clean_to = window::min64(window::key_range(axis, first, m).hi, m - 1);
  const int64_t j_lo = window::max64(0, ceil_div(clean_from - lo, kv_extent));
  const int64_t j_hi = window::min64(load.visited - 1,
                                     window::floor_div(clean_to - kv_extent + 1 - lo, kv_extent));
  load.clean = window::max64(0, j_hi - j_lo + 1);
  load.count = 1;
  return load;
}

// The walk visits every query tile of a group: at most kMaxWalkTiles of
// them, so that one simulation answers in well under a second.
void check_walk(const window::Axis& axis, int64_t m, int64_t tile, const char* what) {
  const int64_t tiles = ceil_div(m, tile);
  if (tiles > kMaxWalkTiles) {
    gna::detail::fail(ErrorKind::value, "extent", axis.length,
                      gna::detail::concat("the simulator walks at most ", kMaxWalkTiles, " ", what,
                                          " per axis; this axis has ", tiles, " of ", tile,
                                          " tokens: use larger tiles or a shorter axis"));
  }
}

std::vector<AxisLoad> group_loads(const window::Axis& axis, int64_t m, int64_t q_extent,
                                  int64_t kv_extent, KvTiling tiling) {
  check_walk(axis, m, q_extent, "query tiles");
  std::map<std::pair<int64_t, int64_t>, int64_t> histogram;
  for (int64_t first = 0; first < m; first += q_extent) {
    // Padded query rows past the group's end do not exist; they force nothing.
    const int64_t last = window::min64(first + q_extent - 1, m - 1);
    const AxisLoad load = tile_load(axis, first, last, m, kv_extent, tiling);
    ++histogram[{load.visited, load.clean}];
    if (first > m - 1 - q_extent) break;  // the next start would pass m (or overflow)
  }
  std::vector<AxisLoad> loads;
  for (const auto& [key, count] : histogram) loads.push_back({key.first, key.second, count});
  return loads;
}

// The (at most two) in-group lengths of an axis and how many groups have
// each, without a loop over the dilation.
std::vector<std::pair<int64_t, int64_t>> group_lengths(const window::Axis& axis) {
  const int64_t shorter = axis.length / axis.dilation, longer = axis.length % axis.dilation;
  std::vector<std::pair<int64_t, int64_t>> out;
  if (shorter > 0) out.emplace_back(shorter, axis.dilation - longer);
  if (longer > 0) out.emplace_back(shorter + 1, longer);
  return out;
}

}  // namespace

std::vector<AxisGroups> axis_tiles(const window::Axis& axis, int64_t q_extent,
                                   int64_t kv_extent, KvTiling tiling) {
  std::vector<AxisGroups> out;
  for (const auto& [m, groups] : group_lengths(axis)) {
    out.push_back({m, groups, group_loads(axis, m, q_extent, kv_extent, tiling)});
  }
  return out;
}

bool axis_mask_free(const window::Axis& axis, int64_t q_extent, int64_t kv_extent,
                    KvTiling tiling, int64_t& budget) {
  for (const auto& [m, groups] : group_lengths(axis)) {
    for (int64_t first = 0; first < m; first += q_extent) {
      if (--budget < 0) return false;
      const int64_t last = window::min64(first + q_extent - 1, m - 1);
      const AxisLoad load = tile_load(axis, first, last, m, kv_extent, tiling);
      if (load.clean != load.visited) return false;
      if (first > m - 1 - q_extent) break;
    }
  }
  return true;
}

std::vector<AxisGroups> backward_axis_tiles(const window::Axis& axis, int64_t q_extent,
                                            int64_t kv_extent) {
  std::vector<AxisGroups> out;
  for (const auto& [m, groups] : group_lengths(axis)) {
    check_walk(axis, m, kv_extent, "KV tiles");
    std::map<std::pair<int64_t, int64_t>, int64_t> histogram;
    for (int64_t k0 = 0; k0 < m; k0 += kv_extent) {
      const window::QueryTileSpan span = window::query_tiles_seeing(axis, k0, kv_extent, q_extent, m);
      ++histogram[{span.count(), span.full_count()}];
      if (k0 > m - 1 - kv_extent) break;
    }
    AxisGroups g{m, groups, {}};
    for (const auto& [key, count] : histogram) g.loads.push_back({key.first, key.second, count});
    out.push_back(g);
  }
  return out;
}

LoadMap combine_axes(const std::vector<std::vector<AxisGroups>>& axes) {
  LoadMap acc{{{1, 1}, 1}};
  for (const std::vector<AxisGroups>& groups : axes) {
    LoadMap next;
    for (const auto& [vc, count] : acc) {
      for (const AxisGroups& g : groups) {
        for (const AxisLoad& l : g.loads) {
          const char* what = "simulated tile count";
          const int64_t boxes = checked_mul(checked_mul(count, g.groups, "extent", what), l.count,
                                            "extent", what);
          int64_t& slot = next[{checked_mul(vc.first, l.visited, "extent", what),
                                checked_mul(vc.second, l.clean, "extent", what)}];
          slot = checked_add(slot, boxes, "extent", what);
        }
      }
    }
    acc = std::move(next);
  }
  return acc;
}

bool axis_block_sparse(const std::vector<AxisGroups>& groups) {
  for (const AxisGroups& g : groups) {
    for (const AxisLoad& l : g.loads) {
      if (l.clean != l.visited) return false;
    }
  }
  return true;
}

}  // namespace gna::sim::detail
