#include "cpu/tile_walk.hpp"

#include <algorithm>
#include <limits>
#include <utility>

#include "core/axes.hpp"

namespace gna::cpu {

AxisReach::AxisReach(const window::Axis& a, Looks looks) : axis(a) {
  reach.resize(static_cast<size_t>(a.length));
  for (int64_t i = 0; i < a.length; ++i) {
    const int64_t g = window::group_of(a, i);
    const int64_t m = window::group_length(a, g);
    const int64_t p = window::position_of(a, i);
    reach[static_cast<size_t>(i)] =
        looks == Looks::at_keys ? window::key_range(a, p, m) : window::query_range(a, p, m);
  }
}

int64_t Tiling::count() const {
  int64_t n = 1;
  for (int a = 0; a < rank; ++a) n *= static_cast<int64_t>(spans[a].size());
  return n;
}

void Tiling::spans_of(int64_t tile, AxisSpan* out) const {
  for (int a = rank - 1; a >= 0; --a) {
    const int64_t n = static_cast<int64_t>(spans[a].size());
    out[a] = spans[a][static_cast<size_t>(tile % n)];
    tile /= n;
  }
}

namespace {

std::vector<AxisSpan> spans_along(const window::Axis& axis, int64_t extent) {
  std::vector<AxisSpan> spans;
  for (int64_t g = 0; g < axis.dilation; ++g) {
    const int64_t m = window::group_length(axis, g);
    for (int64_t first = 0; first < m; first += extent) {
      spans.push_back({g, first, std::min(first + extent - 1, m - 1), m});
    }
  }
  return spans;
}

// The in-group range all lanes of `span` reach together: both ends of every
// window range are monotone in the position.
window::Range union_of(const AxisReach& r, const AxisSpan& span) {
  return {r.of(span.group, span.first).lo, r.of(span.group, span.last).hi};
}

// Tokens reached by all tiles along one axis, and how many tiles there are.
struct AxisCost {
  double reached = 0.0;
  double tiles = 0.0;
};

AxisCost axis_cost(const AxisReach& r, int64_t extent) {
  AxisCost c;
  for (const AxisSpan& s : spans_along(r.axis, extent)) {
    c.reached += static_cast<double>(std::max<int64_t>(0, union_of(r, s).size()));
    c.tiles += 1.0;
  }
  return c;
}

// Every way to give the axes extents whose product is at most `lanes`,
// extents not beyond the longest dilation group (more lanes there would only
// repeat the last token).
void shapes(int rank, int lanes, const int64_t* longest, int a, int64_t* extent,
            std::vector<std::vector<int64_t>>& out) {
  if (a == rank || a == kMaxSpatialRank) {
    out.emplace_back(extent, extent + rank);
    return;
  }
  int64_t used = 1;
  for (int b = 0; b < a; ++b) used *= extent[b];
  for (int64_t e = 1; e * used <= lanes && e <= longest[a]; ++e) {
    extent[a] = e;
    shapes(rank, lanes, longest, a + 1, extent, out);
  }
}

}  // namespace

namespace {

// Per (batch, head): reached tokens plus the per-tile packing cost of the
// tiling, and the work of regrouping rows by heads (one pass over them).
double tiling_cost(const Tiling& t, int vector_lanes) {
  double reached = 1.0, tiles = 1.0;
  for (int a = 0; a < t.rank; ++a) {
    double r = 0.0;
    for (const AxisSpan& s : t.spans[a]) {
      r += static_cast<double>(std::max<int64_t>(0, union_of(t.reach[static_cast<size_t>(a)], s).size()));
    }
    reached *= r;
    tiles *= static_cast<double>(t.spans[a].size());
  }
  const double per_tile = 0.5 * vector_lanes + 4.0;
  double cost = (reached + per_tile * tiles) / t.head_group;
  if (t.head_group > 1) {
    double tokens = 1.0;
    for (int a = 0; a < t.rank; ++a) tokens *= static_cast<double>(t.reach[static_cast<size_t>(a)].axis.length);
    cost += tokens;
  }
  return cost;
}

}  // namespace

Tiling best_tiling(const Problem& p, int lanes, Looks looks) {
  Tiling best = make_tiling(p, lanes, looks, 1);
  if (lanes < kHeadBlock || lanes % kHeadBlock != 0) return best;
  if (p.heads != p.kv_heads || p.extra_kv > 0) return best;
  const double single = tiling_cost(best, lanes);
  // Groups of 2 (2x4 tokens on 16 lanes) hardly ever pay for regrouping
  // the rows (measured at about a token's work per token and head): 4 only.
  if (p.heads % kHeadBlock != 0) return best;
  Tiling grouped = make_tiling(p, lanes, looks, kHeadBlock);
  // Regrouped rows are read through 128-bit broadcasts and the tiles are
  // smaller: only a clear saving pays for that.
  if (tiling_cost(grouped, lanes) < 0.9 * single) return grouped;
  return best;
}

Tiling make_tiling(const Problem& p, int vector_lanes, Looks looks, int head_group) {
  Tiling t;
  const int lanes = vector_lanes / head_group;
  t.rank = p.rank();
  t.lanes = lanes;
  t.head_group = head_group;
  t.looks = looks;
  int64_t longest[kMaxSpatialRank] = {1, 1, 1};
  for (int a = 0; a < t.rank; ++a) {
    const window::Axis ax = detail::axis_of(p, a);
    t.reach.emplace_back(ax, looks);
    longest[a] = std::max<int64_t>(1, window::group_length(ax, 0));
  }
  std::vector<std::vector<int64_t>> candidates;
  int64_t scratch[kMaxSpatialRank] = {1, 1, 1};
  shapes(t.rank, lanes, longest, 0, scratch, candidates);

  // Packing a tile's lanes and writing them back costs about what reaching
  // lanes / 2 more tokens does (scalar element moves against vector FMAs).
  const double per_tile = 0.5 * vector_lanes + 4.0;
  double best = std::numeric_limits<double>::infinity();
  std::vector<int64_t> chosen(static_cast<size_t>(t.rank), 1);
  for (const std::vector<int64_t>& e : candidates) {
    double reached = 1.0, tiles = 1.0;
    for (int a = 0; a < t.rank; ++a) {
      const AxisCost c = axis_cost(t.reach[static_cast<size_t>(a)], e[a]);
      reached *= c.reached;
      tiles *= c.tiles;
    }
    const double cost = reached + per_tile * tiles;
    if (cost < best) {
      best = cost;
      chosen = e;
    }
  }
  for (int a = 0; a < t.rank; ++a) {
    t.extent[a] = chosen[static_cast<size_t>(a)];
    t.spans[a] = spans_along(t.reach[static_cast<size_t>(a)].axis, t.extent[a]);
  }
  return t;
}

namespace {

// Cuts [u.lo, u.hi] into chunks of nearly equal size, at most `cap` each.
void cut(window::Range u, int64_t cap, std::vector<Chunk>& out) {
  out.clear();
  if (u.empty()) return;
  const int64_t n = u.size();
  if (n <= cap) {  // one chunk (small windows): no divisions, a visible cost per tile
    out.push_back({u.lo, u.hi, false});
    return;
  }
  const int64_t pieces = (n + cap - 1) / cap;
  const int64_t size = (n + pieces - 1) / pieces;
  for (int64_t lo = u.lo; lo <= u.hi; lo += size) {
    out.push_back({lo, std::min(lo + size - 1, u.hi), false});
  }
}

}  // namespace

void TileWalk::start(const Tiling& tiling, int64_t tile, int64_t step_tokens) {
  tiling_ = &tiling;
  rank_ = tiling.rank;
  head_group_ = tiling.head_group;
  lanes_ = tiling.lanes * head_group_;
  looks_ = tiling.looks;
  tiling.spans_of(tile, span_);
  for (int a = 0; a < rank_; ++a) dilation_[a] = tiling.reach[static_cast<size_t>(a)].axis.dilation;

  for (int l = 0; l < lanes_; ++l) {
    if (l % head_group_ != 0) {  // the heads of a token share its lane data
      const int first = l - l % head_group_;
      for (int a = 0; a < rank_; ++a) {
        coord_[a][l] = coord_[a][first];
        reach_lo_[a][l] = reach_lo_[a][first];
        reach_hi_[a][l] = reach_hi_[a][first];
      }
      valid_[l] = valid_[first];
      continue;
    }
    // Row-major offsets inside the tile; lanes past the tile's token count
    // (extents whose product is below `lanes`) run past the last axis.
    int64_t rest = l / head_group_;
    bool valid = true;
    for (int a = rank_ - 1; a >= 0; --a) {
      const int64_t e = tiling.extent[a];
      int64_t offset = a == 0 ? rest : rest % e;
      rest = a == 0 ? 0 : rest / e;
      const int64_t position = span_[a].first + offset;
      valid = valid && position <= span_[a].last;
      const int64_t clamped = std::min(position, span_[a].last);
      coord_[a][l] = index(a, clamped);
      const window::Range r =
          tiling.reach[static_cast<size_t>(a)].reach[static_cast<size_t>(coord_[a][l])];
      reach_lo_[a][l] = static_cast<int32_t>(r.lo);
      reach_hi_[a][l] = static_cast<int32_t>(r.hi);
    }
    valid_[l] = valid;
  }

  // Chunk extents from the last axis (contiguous in memory) outwards.
  int64_t budget = std::max<int64_t>(1, step_tokens);
  for (int a = rank_ - 1; a >= 0; --a) {
    const AxisReach& r = tiling.reach[static_cast<size_t>(a)];
    const window::Range u = union_of(r, span_[a]);
    cut(u, budget, chunks_[a]);
    int64_t widest = 1;
    for (Chunk& c : chunks_[a]) {
      const AxisSpan& s = span_[a];
      c.clean = looks_ == Looks::at_keys
                    ? window::sees_all(r.axis, s.first, s.last, c.lo, c.hi, s.length)
                    : window::sees_all(r.axis, c.lo, c.hi, s.first, s.last, s.length);
      widest = std::max(widest, c.size());
    }
    budget = std::max<int64_t>(1, budget / widest);
  }
}

bool TileWalk::shifted_copy_of(const TileWalk& other, int64_t* shift) const {
  if (tiling_ != other.tiling_ || tiling_ == nullptr) return false;
  for (int a = 0; a < rank_; ++a) {
    const std::vector<Chunk>& mine = chunks_[a];
    const std::vector<Chunk>& theirs = other.chunks_[a];
    if (mine.empty() || mine.size() != theirs.size()) return false;
    const int64_t delta = mine[0].lo - theirs[0].lo;  // in-group positions
    for (size_t i = 0; i < mine.size(); ++i) {
      if (mine[i].lo - theirs[i].lo != delta || mine[i].hi - theirs[i].hi != delta ||
          mine[i].clean != theirs[i].clean) {
        return false;
      }
    }
    for (int l = 0; l < lanes_; ++l) {
      if (reach_lo_[a][l] - other.reach_lo_[a][l] != delta ||
          reach_hi_[a][l] - other.reach_hi_[a][l] != delta) {
        return false;
      }
    }
    shift[a] = index(a, mine[0].lo) - other.index(a, theirs[0].lo);
  }
  return true;
}

void TileWalk::lane_offsets(const int64_t* spatial_stride, int64_t* out) const {
  for (int l = 0; l < lanes_; ++l) out[l] = coord_[0][l] * spatial_stride[0];
  for (int a = 1; a < rank_; ++a) {
    for (int l = 0; l < lanes_; ++l) out[l] += coord_[a][l] * spatial_stride[a];
  }
}

}  // namespace gna::cpu
