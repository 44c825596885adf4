// Device side of the packed kernels: which sequence a packed token belongs
// to (binary search in the offsets, so no grid depends on max_seqlen and a
// wrong max_seqlen cannot truncate a sequence), which keys a query sees and
// which queries see a key, and the NaN rows of a call with bad offsets.
#pragma once

#include <cstdint>

#include "cuda/generic/packed_params.hpp"
#include "cuda/generic/warp_row.cuh"

namespace gna::cuda_generic {

struct Span {
  int64_t begin = 0, end = 0;
};

// The sequence of packed token t: the last s < sequences with
// offsets[s] <= t (this skips empty sequences). Checked offsets start at 0
// and end past t, so s's span holds t.
__device__ __forceinline__ int64_t sequence_of(const int32_t* offsets, int64_t sequences,
                                               int64_t t) {
  int64_t lo = 0, hi = sequences;  // offsets[lo] <= t < offsets[hi] once checked
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (offsets[mid] <= t) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// Tokens [offsets[s], offsets[s + 1]) of sequence s, clamped into
// [0, tokens]: even offsets the check kernel has not vetted never index
// outside the tensors.
__device__ __forceinline__ Span span_of(const int32_t* offsets, int64_t s, int64_t tokens) {
  Span r;
  r.begin = min(max(static_cast<int64_t>(offsets[s]), int64_t{0}), tokens);
  r.end = min(max(static_cast<int64_t>(offsets[s + 1]), r.begin), tokens);
  return r;
}

// The keys query token t sees: its sequence's keys, the first (t - q0 + 1)
// of them when causal (causal sequences have as many keys as queries).
__device__ __forceinline__ Span keys_of(const PackedShape& s, int64_t t) {
  const int64_t seq = sequence_of(s.q_offsets, s.sequences, t);
  const Span q = span_of(s.q_offsets, seq, s.q_tokens);
  Span k = span_of(s.k_offsets, seq, s.k_tokens);
  if (s.causal) k.end = min(k.end, k.begin + (t - q.begin) + 1);
  return k;
}

// The query tokens that see key token j (the inverse of keys_of).
__device__ __forceinline__ Span queries_of(const PackedShape& s, int64_t j) {
  const int64_t seq = sequence_of(s.k_offsets, s.sequences, j);
  const Span k = span_of(s.k_offsets, seq, s.k_tokens);
  Span q = span_of(s.q_offsets, seq, s.q_tokens);
  if (s.causal) q.begin = min(q.end, q.begin + (j - k.begin));
  return q;
}

// Writes NaN into the n elements of the lane's part of a row.
template <typename T>
__device__ __forceinline__ void fill_nan(const LaneOut<T>& row, int64_t n, int lane) {
#pragma unroll 1
  for (int64_t j = 0; j < lane_chunks(n, lane); ++j) row.set(j, NAN);
}

}  // namespace gna::cuda_generic
