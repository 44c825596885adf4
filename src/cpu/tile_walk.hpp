// The tile structure of the cpu backend, in the in-group coordinates of
// src/core/window.hpp (each dilation group is its own sub-problem, as in the
// simulator's src/sim/axis_tiles.*).
//
// A tile is a box of `lanes` tokens of one dilation group per axis, one token
// per SIMD lane. A query tile looks at its keys (forward, dQ); a key tile at
// the queries that see it (dK, dV). Along each axis the lanes together reach
// one contiguous range (window ranges are monotone), which is cut into
// chunks; a box of chunks is one step of the flash loop. A step whose every
// lane reaches every token on every axis is clean and needs no mask.
#pragma once

#include <cstdint>
#include <vector>

#include "core/window.hpp"
#include "gna/problem.hpp"

namespace gna::cpu {

// SIMD lanes of the widest vector a target can have (SVE 2048 bits of fp32).
constexpr int kMaxLanes = 64;

// Added to the score of a (query, key) pair the window excludes. Finite, so
// that a lane which has seen nothing yet computes 0 * garbage, not NaN.
constexpr float kMasked = -1e30f;

enum class Looks { at_keys, at_queries };

// Along one axis, the in-group range every absolute index reaches: the keys
// a query sees (at_keys) or the queries that see a key (at_queries).
// Tabulated once per call; query_range is a binary search.
struct AxisReach {
  window::Axis axis;
  std::vector<window::Range> reach;

  AxisReach(const window::Axis& a, Looks looks);
  window::Range of(int64_t group, int64_t position) const {
    return reach[static_cast<size_t>(window::index_of(axis, group, position))];
  }
};

// A tile's extent along one axis: in-group positions [first, last] of
// dilation group `group`, which holds `length` tokens.
struct AxisSpan {
  int64_t group = 0, first = 0, last = 0, length = 1;
};

// Heads sharing one vector (a head group): rows regrouped by heads hold
// kHeadBlock floats per element, the group's heads (repeated if it has
// fewer), so one 128-bit broadcast gives every lane its own head's element.
constexpr int kHeadBlock = 4;

// How one call cuts the token grid into tiles.
struct Tiling {
  int rank = 1;
  int lanes = 1;       // tokens per tile
  int head_group = 1;  // heads per tile: vector lane l holds token l / head_group
                       // and head l % head_group of the tile's group of heads
  Looks looks = Looks::at_keys;
  int64_t extent[kMaxSpatialRank] = {1, 1, 1};  // tile extent per axis
  std::vector<AxisSpan> spans[kMaxSpatialRank];  // every tile along each axis
  std::vector<AxisReach> reach;                  // per axis

  int64_t count() const;  // tiles per (batch, head)
  void spans_of(int64_t tile, AxisSpan* out) const;
};

// Of the tile shapes of `lanes` / head_group tokens, the one whose tiles
// together reach the fewest tokens (every reached token costs a vector per
// head dim), with a fixed cost per tile for packing its lanes. `lanes`:
// the vector's; head_group divides it.
Tiling make_tiling(const Problem& p, int lanes, Looks looks, int head_group = 1);

// The tiling of the head group (1 or kHeadBlock) that costs least for
// `lanes` vector lanes. Small windows waste most of a tile of many tokens (a 4x4 tile
// reaches 10x10 keys of a 7x7 window: 49% useful), a group of heads on
// fewer tokens reaches fewer keys per lane (2x2 tokens x 4 heads: 77%).
// Groups only where every head has its own kv head and there is no
// additional KV; 1 on vectors of fewer than kHeadBlock lanes.
Tiling best_tiling(const Problem& p, int lanes, Looks looks);

// Along one axis, a chunk of reached in-group positions [lo, hi].
struct Chunk {
  int64_t lo = 0, hi = -1;
  bool clean = false;  // every lane reaches every position of it
  int64_t size() const { return hi - lo + 1; }
};

// One tile: its lanes and the chunks of what they reach.
class TileWalk {
 public:
  // Tile `tile` of the tiling; `step_tokens` caps the tokens of one step.
  void start(const Tiling& tiling, int64_t tile, int64_t step_tokens);

  int rank() const { return rank_; }
  // Vector lanes: tokens x heads of the tile's head group.
  int lanes() const { return lanes_; }
  int head_group() const { return head_group_; }
  const AxisSpan& span(int a) const { return span_[a]; }
  // Absolute coordinate of lane l along axis a. Lanes past the tile's end
  // (a short group) repeat its last token, so they compute something valid.
  int64_t coord(int a, int l) const { return coord_[a][l]; }
  bool valid(int l) const { return valid_[l]; }
  const bool* valid_lanes() const { return valid_; }
  const std::vector<Chunk>& chunks(int a) const { return chunks_[a]; }
  // Steps of the flash loop: boxes of one chunk per axis.
  int64_t steps() const {
    int64_t n = 1;
    for (int a = 0; a < rank_; ++a) n *= static_cast<int64_t>(chunks_[a].size());
    return n;
  }
  // Absolute index of in-group position j of this tile's group along axis a.
  int64_t index(int a, int64_t j) const { return span_[a].group + dilation_[a] * j; }
  int64_t dilation(int a) const { return dilation_[a]; }

  // out[l] = sum over axes of coord(a, l) * spatial_stride[a]: the spatial
  // part of lane l's element offset in a tensor with those strides.
  void lane_offsets(const int64_t* spatial_stride, int64_t* out) const;
  // Whether this walk is `other` moved along the grid: a tile of the same
  // tiling whose chunks, and every lane's reach, are other's shifted by one
  // amount per axis (interior tiles of small windows), so its steps gather
  // the same tokens, moved, with the same masks. shift[a]: how far, in
  // absolute indices along axis a.
  bool shifted_copy_of(const TileWalk& other, int64_t* shift) const;
  // The in-group range lane l reaches along axis a, as lane arrays.
  const int32_t* reach_lo(int a) const { return reach_lo_[a]; }
  const int32_t* reach_hi(int a) const { return reach_hi_[a]; }

 private:
  int rank_ = 1, lanes_ = 1, head_group_ = 1;
  AxisSpan span_[kMaxSpatialRank];
  int64_t dilation_[kMaxSpatialRank] = {1, 1, 1};
  int64_t coord_[kMaxSpatialRank][kMaxLanes] = {};
  alignas(64) int32_t reach_lo_[kMaxSpatialRank][kMaxLanes] = {};
  alignas(64) int32_t reach_hi_[kMaxSpatialRank][kMaxLanes] = {};
  bool valid_[kMaxLanes] = {};
  Looks looks_ = Looks::at_keys;
  const Tiling* tiling_ = nullptr;
  std::vector<Chunk> chunks_[kMaxSpatialRank];
};

// One step of a tile's flash loop: a box of one chunk per axis.
struct Step {
  const Chunk* chunk[kMaxSpatialRank] = {nullptr, nullptr, nullptr};
  bool clean = true;
  int64_t tokens = 1;
};

// Calls f(step) for every box of the tile's chunks, row-major.
template <typename F>
void for_each_step(const TileWalk& w, F&& f) {
  static const Chunk kWhole{0, 0, true};  // the one position of an unused axis
  size_t count[kMaxSpatialRank] = {1, 1, 1};
  for (int a = 0; a < w.rank(); ++a) {
    count[a] = w.chunks(a).size();
    if (count[a] == 0) return;
  }
  Step s;
  for (size_t i0 = 0; i0 < count[0]; ++i0) {
    for (size_t i1 = 0; i1 < count[1]; ++i1) {
      for (size_t i2 = 0; i2 < count[2]; ++i2) {
        const size_t i[kMaxSpatialRank] = {i0, i1, i2};
        s.clean = true;
        s.tokens = 1;
        for (int a = 0; a < kMaxSpatialRank; ++a) {
          s.chunk[a] = a < w.rank() ? &w.chunks(a)[i[a]] : &kWhole;
          s.clean = s.clean && s.chunk[a]->clean;
          s.tokens *= s.chunk[a]->size();
        }
        f(static_cast<const Step&>(s));
      }
    }
  }
}

// Calls f(y, j, count) for every run of the step's tokens along its last
// axis, in row-major order: y the absolute coordinates and j the in-group
// positions of the run's first token; the run's tokens are `count`
// consecutive in-group positions (one dilation step apart in the grid).
template <typename F>
void for_each_run(const TileWalk& w, const Step& s, F&& f) {
  const int last = w.rank() - 1;
  int64_t y[kMaxSpatialRank] = {0, 0, 0}, j[kMaxSpatialRank] = {0, 0, 0};
  const Chunk* const* c = s.chunk;
  j[last] = c[last]->lo;
  y[last] = w.index(last, j[last]);
  const int64_t count = c[last]->size();
  const int64_t* yc = y;
  const int64_t* jc = j;
  if (last == 0) {
    f(yc, jc, count);
    return;
  }
  for (j[0] = c[0]->lo; j[0] <= c[0]->hi; ++j[0]) {
    y[0] = w.index(0, j[0]);
    if (last == 1) {
      f(yc, jc, count);
      continue;
    }
    for (j[1] = c[1]->lo; j[1] <= c[1]->hi; ++j[1]) {
      y[1] = w.index(1, j[1]);
      f(yc, jc, count);
    }
  }
}

}  // namespace gna::cpu
