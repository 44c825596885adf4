// Boxes of tokens: a query's neighborhood (or a key's inverse neighborhood)
// is a Cartesian product of per-axis ranges, i.e. a box with a per-axis step
// (the dilation). Host code enumerates neighborhoods through this.
#pragma once

#include <cstdint>

#include "core/axes.hpp"
#include "core/window.hpp"
#include "gna/problem.hpp"

namespace gna::detail {

// Per axis the absolute indices first + step * i for i < count.
struct Box {
  int rank = 1;
  int64_t first[kMaxSpatialRank] = {0, 0, 0};
  int64_t step[kMaxSpatialRank] = {1, 1, 1};
  int64_t count[kMaxSpatialRank] = {1, 1, 1};

  // Sets axis a to the in-group positions `r` of dilation group `group`.
  void set(int a, const window::Axis& axis, int64_t group, window::Range r) {
    first[a] = window::index_of(axis, group, r.lo);
    step[a] = axis.dilation;
    count[a] = r.size();
  }
  int64_t size() const {
    int64_t n = 1;
    for (int a = 0; a < rank; ++a) n *= count[a];
    return n;
  }
};

template <typename Body>
void for_each_token(const Box& box, Body&& body) {
  int64_t x[kMaxSpatialRank] = {0, 0, 0};
  const int64_t c1 = box.rank > 1 ? box.count[1] : 1;
  const int64_t c2 = box.rank > 2 ? box.count[2] : 1;
  for (int64_t i0 = 0; i0 < box.count[0]; ++i0) {
    x[0] = box.first[0] + box.step[0] * i0;
    for (int64_t i1 = 0; i1 < c1; ++i1) {
      x[1] = box.first[1] + box.step[1] * i1;
      for (int64_t i2 = 0; i2 < c2; ++i2) {
        x[2] = box.first[2] + box.step[2] * i2;
        body(static_cast<const int64_t*>(x));
      }
    }
  }
}

// The window axes of a problem, with the two neighborhood queries.
struct Axes {
  window::Axis axis[kMaxSpatialRank];
  int rank = 1;

  explicit Axes(const Problem& p) : rank(p.rank()) {
    for (int a = 0; a < rank; ++a) axis[a] = axis_of(p, a);
  }

  // Keys the query at coordinates x sees.
  Box keys_of(const int64_t* x) const { return box(x, window::key_range); }
  // Queries that see the key at coordinates y.
  Box queries_of(const int64_t* y) const { return box(y, window::query_range); }

 private:
  template <typename RangeOf>
  Box box(const int64_t* x, RangeOf range_of) const {
    Box b;
    b.rank = rank;
    for (int a = 0; a < rank; ++a) {
      const window::Axis& ax = axis[a];
      const int64_t g = window::group_of(ax, x[a]);
      b.set(a, ax, g, range_of(ax, window::position_of(ax, x[a]), window::group_length(ax, g)));
    }
    return b;
  }
};

}  // namespace gna::detail
