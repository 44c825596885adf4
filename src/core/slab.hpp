// One slab of an axis split across devices (gna.distributed): which keys its
// queries see, and the smaller grid on which one ordinary neighborhood
// attention call gives those queries exactly their whole-axis windows.
//
// Host-only arithmetic on top of window.hpp, so the halo follows the same
// rules as every backend (docs/distributed.md explains the grid rule).
#pragma once

#include <cstdint>

#include "core/window.hpp"

namespace gna::slab {

struct Plan {
  // Absolute indices [key_lo, key_hi] of every key some query of the slab sees
  // (all dilation groups together); empty (lo > hi) for an empty slab.
  window::Range keys;
  // The local grid [lo, hi] (absolute indices) to compute on. It holds `keys`;
  // its start is a multiple of stride * dilation, so runs and dilation groups
  // line up with the whole axis; it ends at the axis end or past the end of
  // every causal run of the slab; it is at least kernel * dilation long. Its
  // tokens outside `keys` are never seen by the slab's queries.
  window::Range grid;
};

// Plan for the queries [first, last] (absolute indices) of axis `a`, whose
// length is the whole axis.
inline Plan plan(const window::Axis& a, int64_t first, int64_t last) {
  Plan p;
  if (first > last) return p;
  const int64_t d = a.dilation;
  int64_t keys_lo = a.length, keys_hi = -1, need_hi = -1;
  for (int64_t g = 0; g < d; ++g) {
    // In-group positions of the slab's queries in group g.
    const int64_t p_first = window::floor_div(first - g + d - 1, d);
    const int64_t p_last = window::floor_div(last - g, d);
    if (p_first > p_last) continue;
    const int64_t m = window::group_length(a, g);
    const window::Range k = window::key_range_union(a, p_first, p_last, m);
    keys_lo = window::min64(keys_lo, window::index_of(a, g, k.lo));
    keys_hi = window::max64(keys_hi, window::index_of(a, g, k.hi));
    need_hi = window::max64(need_hi, window::index_of(a, g, k.hi));
    if (a.causal) {
      // A causal run's window starts from its last query, which may lie past
      // the slab: the local grid must hold it for the local run to agree.
      const int64_t run_end = (p_last / a.stride) * a.stride + a.stride - 1;
      need_hi = window::max64(need_hi, window::index_of(a, g, window::min64(run_end, m - 1)));
    }
  }
  p.keys = window::Range{keys_lo, keys_hi};
  const int64_t align = a.stride * d;
  int64_t lo = (keys_lo / align) * align;
  int64_t hi = window::min64(need_hi, a.length - 1);
  // The local call must itself be a valid problem: kernel * dilation tokens.
  const int64_t least = a.kernel * d;
  if (hi - lo + 1 < least) hi = window::min64(a.length - 1, lo + least - 1);
  if (hi - lo + 1 < least) lo = window::max64(0, ((hi - least + 1) / align) * align);
  p.grid = window::Range{lo, hi};
  return p;
}

}  // namespace gna::slab
