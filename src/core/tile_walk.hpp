// Window arithmetic at tile granularity for the KV-tile-parallel backward:
// which query tiles a KV tile must visit, which of those visits need no
// element mask, and (the inverse, for ordered dQ accumulation) which KV
// tiles visit a query tile. Per axis and in in-group positions, like
// window.hpp; a box of tiles is the product of its axes (a tile pair holds
// a visible pair iff every axis does, and needs no mask iff no axis does).
// Query and KV tiles both lie on grids anchored at 0 of their dilation
// group; the last tile of a group may stick out past its m tokens.
// The sm90 backward kernel and the simulator (src/sim) both use this.
#pragma once

#include "core/window.hpp"

namespace gna::window {

// Query tiles, by index along the axis, seen from one KV tile.
struct QueryTileSpan {
  int64_t first = 0, last = -1;            // every tile with a visible pair
  int64_t full_first = 0, full_last = -1;  // of those, the ones needing no mask
  GNA_HD int64_t count() const { return last - first + 1; }
  GNA_HD int64_t full_count() const {
    return full_last >= full_first ? full_last - full_first + 1 : 0;
  }
  GNA_HD bool is_full(int64_t tile) const { return full_first <= tile && tile <= full_last; }
};

// The KV tile holds keys [k0, k0 + kv_extent) of a group of m tokens (keys
// past m are padding); query tiles hold q_extent positions each.
GNA_HD QueryTileSpan query_tiles_seeing(const Axis& a, int64_t k0, int64_t kv_extent,
                                        int64_t q_extent, int64_t m) {
  QueryTileSpan span;
  const int64_t k_end = k0 + kv_extent - 1;
  const Range queries = query_range_union(a, k0, min64(k_end, m - 1), m);
  if (queries.empty()) return span;
  span.first = queries.lo / q_extent;
  span.last = queries.hi / q_extent;
  // Padded keys must be masked out, so a tile sticking out is never full.
  if (k_end > m - 1) return span;
  // Tile i is full iff its first query's window reaches k_end and its last
  // existing query's window starts at or before k0 (both ends monotone).
  const int64_t reach = first_query_reaching(a, k_end, m);
  const int64_t start = last_query_starting_by(a, k0, m);
  span.full_first = max64(span.first, (reach + q_extent - 1) / q_extent);
  const int64_t full_last =
      start >= m - 1 ? span.last : floor_div(start + 1, q_extent) - 1;
  span.full_last = min64(span.last, full_last);
  return span;
}

// KV tiles (kv_extent keys each) that the query tile starting at position
// `first` (q_extent positions, those past m padding) visits.
GNA_HD Range kv_tiles_seen_by(const Axis& a, int64_t first, int64_t q_extent, int64_t kv_extent,
                              int64_t m) {
  const Range keys = key_range_union(a, first, min64(first + q_extent - 1, m - 1), m);
  return Range{keys.lo / kv_extent, keys.hi / kv_extent};
}

}  // namespace gna::window
