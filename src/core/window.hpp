// Window arithmetic of generalized neighborhood attention: the one source of
// truth for which keys a query sees (docs/semantics.md). CPU reference,
// CUDA kernels and the simulator all include this header, so a change here
// changes every backend at once.
//
// Everything works per spatial axis; a query sees a key iff it does on every
// axis. Positions inside a dilation group ("in-group positions") are what the
// rules below speak about; absolute token index = group + dilation * position.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define GNA_HD __host__ __device__ __forceinline__
#else
#define GNA_HD inline
#endif

namespace gna::window {

// One spatial axis of one problem.
struct Axis {
  int64_t length = 1;    // n
  int64_t kernel = 1;    // k, window size
  int64_t stride = 1;    // s, queries per run sharing one window
  int64_t dilation = 1;  // d, number of interleaved groups
  bool causal = false;
};

// Inclusive range [lo, hi] of in-group positions; empty when lo > hi.
struct Range {
  int64_t lo = 0;
  int64_t hi = -1;
  GNA_HD bool empty() const { return lo > hi; }
  GNA_HD int64_t size() const { return empty() ? 0 : hi - lo + 1; }
  GNA_HD bool contains(int64_t p) const { return lo <= p && p <= hi; }
};

GNA_HD int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
GNA_HD int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// a / b and a % b for a positive divisor that is 1 on most axes of real
// problems (stride, dilation). A GPU divides in dozens of instructions, and
// kernels evaluate these rules for every work item: the test is cheaper.
GNA_HD int64_t quotient(int64_t a, int64_t b) { return b == 1 ? a : a / b; }
GNA_HD int64_t modulo(int64_t a, int64_t b) { return b == 1 ? 0 : a % b; }

// Dilation group of absolute index i, and its position inside the group.
GNA_HD int64_t group_of(const Axis& a, int64_t i) { return modulo(i, a.dilation); }
GNA_HD int64_t position_of(const Axis& a, int64_t i) { return quotient(i, a.dilation); }
GNA_HD int64_t index_of(const Axis& a, int64_t group, int64_t position) {
  return group + a.dilation * position;
}

// Number of tokens m in dilation group g: ceil((n - g) / d).
GNA_HD int64_t group_length(const Axis& a, int64_t g) {
  return quotient(a.length - g + a.dilation - 1, a.dilation);
}

// Left reach L = k div 2 and right reach R = k - 1 - L of a non-causal window.
GNA_HD int64_t left_reach(const Axis& a) { return a.kernel / 2; }
GNA_HD int64_t right_reach(const Axis& a) { return a.kernel - 1 - a.kernel / 2; }

// Keys seen by in-group query position p in a group of m tokens.
GNA_HD Range key_range(const Axis& a, int64_t p, int64_t m) {
  const int64_t run_start = quotient(p, a.stride) * a.stride;
  if (a.causal) {
    // The run's leader is its last query; nobody looks past itself.
    const int64_t leader = min64(run_start + a.stride - 1, m - 1);
    return Range{max64(leader - a.kernel + 1, 0), p};
  }
  // The run's leader is its middle query; near a border the window shifts
  // inward so that it always holds exactly k keys.
  const int64_t leader = min64(run_start + a.stride / 2, m - 1);
  const int64_t L = left_reach(a);
  const int64_t R = right_reach(a);
  const int64_t center = min64(max64(leader, L), m - 1 - R);
  return Range{center - L, center + R};
}

// Floor division for a possibly negative numerator and a positive divisor.
GNA_HD int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? quotient(a, b) : -quotient(-a + b - 1, b);
}

// First query p in [0, m] (m: none) whose window reaches key q: key_range(p).hi >= q.
// Non-causal windows depend on p only through the run's clamped center c(p),
// nondecreasing in p, and hi = c + R; so this is the first run whose
// unclamped leader r*s + s/2 reaches q - R (a clamp can only decide the
// answer at the ends, handled first). Causal windows end at p itself.
GNA_HD int64_t first_query_reaching(const Axis& a, int64_t q, int64_t m) {
  if (a.causal) return min64(max64(q, 0), m);
  const int64_t L = left_reach(a), R = right_reach(a);
  const int64_t t = q - R;  // the center must be at least t
  if (t <= L) return 0;     // every center is >= L
  if (t > m - 1 - R) return m;
  const int64_t run = max64(0, floor_div(t - a.stride / 2 + a.stride - 1, a.stride));
  return min64(run * a.stride, m);
}

// Last query p in [-1, m - 1] (-1: none) whose window starts at or before key
// q: key_range(p).lo <= q. Non-causal: lo = c - L, so the last run whose
// leader stays at or below q + L. Causal: lo = max(leader - k + 1, 0) with
// leader = min(r*s + s - 1, m - 1), the run's last query.
GNA_HD int64_t last_query_starting_by(const Axis& a, int64_t q, int64_t m) {
  if (a.causal) {
    if (q < 0) return -1;
    const int64_t t = q + a.kernel - 1;  // the leader must be at most t
    if (t >= m - 1) return m - 1;
    const int64_t run = floor_div(t - a.stride + 1, a.stride);
    return run < 0 ? -1 : min64(run * a.stride + a.stride - 1, m - 1);
  }
  const int64_t L = left_reach(a), R = right_reach(a);
  const int64_t t = q + L;  // the center must be at most t
  if (t >= m - 1 - R) return m - 1;  // every center is <= m - 1 - R
  if (t < L) return -1;
  const int64_t run = floor_div(t - a.stride / 2, a.stride);
  return run < 0 ? -1 : min64(run * a.stride + a.stride - 1, m - 1);
}

// Queries (in-group positions) that see key position q. Both ends of
// key_range are non-decreasing in p, so the answer is one contiguous range:
// the first p whose window reaches q, to the last p whose window starts at or
// before q. Closed form (no search), exact for every stride and border;
// tests/core/window_test.cpp checks it against a binary search and brute force.
GNA_HD Range query_range(const Axis& a, int64_t q, int64_t m) {
  return Range{first_query_reaching(a, q, m), last_query_starting_by(a, q, m)};
}

// Queries that see at least one key of [key_lo, key_hi].
GNA_HD Range query_range_union(const Axis& a, int64_t key_lo, int64_t key_hi, int64_t m) {
  return Range{first_query_reaching(a, key_lo, m), last_query_starting_by(a, key_hi, m)};
}

// Keys seen by the queries [first, last] together. Neighboring queries'
// windows overlap or touch (k >= s), so the union is one contiguous range.
GNA_HD Range key_range_union(const Axis& a, int64_t first, int64_t last, int64_t m) {
  return Range{key_range(a, first, m).lo, key_range(a, last, m).hi};
}

// True when every query in [first, last] sees every key in [key_lo, key_hi]:
// the tile pair needs no element mask along this axis.
GNA_HD bool sees_all(const Axis& a, int64_t first, int64_t last, int64_t key_lo,
                     int64_t key_hi, int64_t m) {
  return key_range(a, last, m).lo <= key_lo && key_range(a, first, m).hi >= key_hi;
}

// Absolute-index form: does query i see key j along this axis?
GNA_HD bool visible(const Axis& a, int64_t i, int64_t j) {
  if (group_of(a, i) != group_of(a, j)) return false;
  const int64_t m = group_length(a, group_of(a, i));
  return key_range(a, position_of(a, i), m).contains(position_of(a, j));
}

// Number of keys query i sees along this axis.
GNA_HD int64_t keys_seen(const Axis& a, int64_t i) {
  const int64_t m = group_length(a, group_of(a, i));
  return key_range(a, position_of(a, i), m).size();
}

}  // namespace gna::window
