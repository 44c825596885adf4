// Token coordinates and neighborhoods on the device. Which keys a query sees
// (and which queries see a key) comes only from core/window.hpp: a
// neighborhood is the Cartesian product of per-axis ranges, i.e. a box of
// absolute indices first + step * i, i < count, per axis.
#pragma once

#include <cstdint>

#include "core/window.hpp"
#include "cuda/generic/params.hpp"

namespace gna::cuda_generic {

// Spatial coordinates of token t (row-major over the three padded axes).
__device__ __forceinline__ void token_coords(const Shape& s, int64_t t, int64_t* x) {
  x[2] = t % s.axis[2].length;
  t /= s.axis[2].length;
  x[1] = t % s.axis[1].length;
  x[0] = t / s.axis[1].length;
}

// Advances coordinates x to the next token in row-major order.
__device__ __forceinline__ void next_token(const Shape& s, int64_t* x) {
  if (++x[2] < s.axis[2].length) return;
  x[2] = 0;
  if (++x[1] < s.axis[1].length) return;
  x[1] = 0;
  ++x[0];
}

__device__ __forceinline__ int64_t token_index(const Shape& s, const int64_t* x) {
  return (x[0] * s.axis[1].length + x[1]) * s.axis[2].length + x[2];
}

// Work item `row` in [0, B * T * H) of the per-query passes is the query
// (batch b, token t, head h); heads vary fastest so that neighboring warps
// read the same K/V rows (GQA).
struct QueryAt {
  int64_t b, t, h, hk;
  int64_t x[kMaxSpatialRank];  // coordinates of token t
};

__device__ __forceinline__ QueryAt query_at(const Shape& s, int64_t row) {
  QueryAt q;
  q.h = row % s.heads;
  q.t = (row / s.heads) % s.tokens;
  q.b = row / (s.heads * s.tokens);
  q.hk = q.h / s.group;
  token_coords(s, q.t, q.x);
  return q;
}

struct Box3 {
  int64_t first[kMaxSpatialRank];
  int64_t step[kMaxSpatialRank];
  int64_t count[kMaxSpatialRank];  // 0 on some axis: the box is empty
};

// kInverse = false: the keys token x sees (window::key_range per axis).
// kInverse = true: the queries that see key x (window::query_range per axis).
template <bool kInverse>
__device__ __forceinline__ Box3 neighborhood(const Shape& s, const int64_t* x) {
  Box3 box;
#pragma unroll
  for (int a = 0; a < kMaxSpatialRank; ++a) {
    const window::Axis& ax = s.axis[a];
    const int64_t g = window::group_of(ax, x[a]);
    const int64_t p = window::position_of(ax, x[a]);
    const int64_t m = window::group_length(ax, g);
    const window::Range r = kInverse ? window::query_range(ax, p, m) : window::key_range(ax, p, m);
    box.first[a] = window::index_of(ax, g, r.lo);
    box.step[a] = ax.dilation;
    box.count[a] = r.size();
  }
  return box;
}

// Calls visit(y) for every token y of the box, row-major. The trip counts
// depend only on the box, so a warp that shares the box stays converged.
template <typename Visit>
__device__ __forceinline__ void for_each_in_box(const Box3& box, Visit&& visit) {
  int64_t y[kMaxSpatialRank];
#pragma unroll 1
  for (int64_t i0 = 0; i0 < box.count[0]; ++i0) {
    y[0] = box.first[0] + box.step[0] * i0;
#pragma unroll 1
    for (int64_t i1 = 0; i1 < box.count[1]; ++i1) {
      y[1] = box.first[1] + box.step[1] * i1;
#pragma unroll 1
      for (int64_t i2 = 0; i2 < box.count[2]; ++i2) {
        y[2] = box.first[2] + box.step[2] * i2;
        visit(static_cast<const int64_t*>(y));
      }
    }
  }
}

}  // namespace gna::cuda_generic
