#include "sim/axis_tiles.hpp"

#include <map>
#include <utility>

#include "core/tile_walk.hpp"

namespace gna::sim::detail {

int64_t AxisGroups::q_tiles() const {
  int64_t n = 0;
  for (const AxisLoad& l : loads) n += l.count;
  return n;
}

namespace {

// First KV tile start for a query tile whose keys span `keys`.
int64_t first_kv_start(window::Range keys, int64_t kv_extent, KvTiling tiling) {
  return tiling == KvTiling::window_start ? keys.lo : keys.lo / kv_extent * kv_extent;
}

std::vector<AxisLoad> group_loads(const window::Axis& axis, int64_t m, int64_t q_extent,
                                  int64_t kv_extent, KvTiling tiling) {
  std::map<std::pair<int64_t, int64_t>, int64_t> histogram;
  for (int64_t first = 0; first < m; first += q_extent) {
    // Padded query rows past the group's end do not exist; they force nothing.
    const int64_t last = window::min64(first + q_extent - 1, m - 1);
    const window::Range keys = window::key_range_union(axis, first, last, m);
    int64_t visited = 0, clean = 0;
    for (int64_t lo = first_kv_start(keys, kv_extent, tiling); lo <= keys.hi; lo += kv_extent) {
      const int64_t hi = lo + kv_extent - 1;
      ++visited;
      // Keys past the group's end are TMA zero fill and must be masked out
      // (sees_all alone would say so too: no window reaches past m - 1).
      if (hi <= m - 1 && window::sees_all(axis, first, last, lo, hi, m)) ++clean;
    }
    ++histogram[{visited, clean}];
  }
  std::vector<AxisLoad> loads;
  for (const auto& [key, count] : histogram) loads.push_back({key.first, key.second, count});
  return loads;
}

}  // namespace

std::vector<AxisGroups> axis_tiles(const window::Axis& axis, int64_t q_extent,
                                   int64_t kv_extent, KvTiling tiling) {
  // Groups differ only in length, and there are at most two lengths.
  std::map<int64_t, int64_t> groups_of_length;
  for (int64_t g = 0; g < axis.dilation; ++g) ++groups_of_length[window::group_length(axis, g)];
  std::vector<AxisGroups> out;
  for (const auto& [m, groups] : groups_of_length) {
    if (m <= 0) continue;
    out.push_back({m, groups, group_loads(axis, m, q_extent, kv_extent, tiling)});
  }
  return out;
}

std::vector<AxisGroups> backward_axis_tiles(const window::Axis& axis, int64_t q_extent,
                                            int64_t kv_extent) {
  std::map<int64_t, int64_t> groups_of_length;
  for (int64_t g = 0; g < axis.dilation; ++g) ++groups_of_length[window::group_length(axis, g)];
  std::vector<AxisGroups> out;
  for (const auto& [m, groups] : groups_of_length) {
    if (m <= 0) continue;
    std::map<std::pair<int64_t, int64_t>, int64_t> histogram;
    for (int64_t k0 = 0; k0 < m; k0 += kv_extent) {
      const window::QueryTileSpan span = window::query_tiles_seeing(axis, k0, kv_extent, q_extent, m);
      ++histogram[{span.count(), span.full_count()}];
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
          next[{vc.first * l.visited, vc.second * l.clean}] += count * g.groups * l.count;
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
