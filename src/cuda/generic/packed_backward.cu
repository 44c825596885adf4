// Backward pass of packed variable-length attention, two passes in stream
// order that share delta (one fp32 per query row) through stream-ordered
// scratch memory; each writes only the rows it owns, so no atomics:
// 1. one warp per query row (token t, head h):
//      delta = dO . O - dLSE,
//      dQ = scale * sum_j P_j (dO . v_j - delta) k_j,  P_j = exp(scale q.k_j - LSE);
// 2. one warp per key row (token j, kv head): over the queries that see
//    key j (its sequence's, from j's position on when causal) and every
//    query head of the group:
//      dV = sum P dO,  dK = scale * sum P (dO . v - delta) q.
// A sequence with more queries than keys needs nothing special: each key
// row sums over all of its sequence's queries. Keys no query sees get zeros.
#include "cuda/generic/cuda_check.hpp"
#include "cuda/generic/dispatch.cuh"
#include "cuda/generic/packed.cuh"
#include "cuda/generic/packed_launch.hpp"

namespace gna::cuda_generic {
namespace {

template <typename T, int C>
__global__ void __launch_bounds__(kThreadsPerBlock)
    packed_query_kernel(const PackedBackwardParams p, float* delta_out) {
  const PackedShape& s = p.shape;
  const int lane = lane_id();
  const bool poisoned = *p.fatal != 0;
  const int64_t rows = s.q_tokens * s.heads;
#pragma unroll 1
  for (int64_t row = first_warp(); row < rows; row += warps_in_grid()) {
    const int64_t h = row % s.heads, t = row / s.heads, hk = h / s.group;
    const LaneOut<T> dq_row = lane_out<T>(p.dq, packed_row(p.dq, t, h), lane);
    if (poisoned) {
      fill_nan(dq_row, s.head_dim, lane);
      if (lane == 0) delta_out[row] = NAN;
      continue;
    }
    const WarpRow<T, C> dout(lane_row<T>(p.dout, packed_row(p.dout, t, h), lane), s.head_dim_v,
                             lane);
    float delta = dout.dot(lane_row<T>(p.o, packed_row(p.o, t, h), lane));
    if (p.dlse.data != nullptr) delta -= load_f32(p.dlse, packed_row(p.dlse, t, h));
    if (lane == 0) delta_out[row] = delta;
    const float lse = load_f32(p.lse, packed_row(p.lse, t, h));
    const WarpRow<T, C> q(lane_row<T>(p.q, packed_row(p.q, t, h), lane), s.head_dim, lane);
    const Span keys = keys_of(s, t);

#pragma unroll 1
    for (int64_t c0 = 0; c0 < s.head_dim; c0 += kWarpSize * C) {
      WarpSlice<C> dq(c0, s.head_dim, lane);
#pragma unroll 1
      for (int64_t j = keys.begin; j < keys.end; ++j) {
        const LaneRow<T> key = lane_row<T>(p.k, packed_row(p.k, j, hk), lane);
        const LaneRow<T> value = lane_row<T>(p.v, packed_row(p.v, j, hk), lane);
        const float prob = expf(q.dot(key) * s.scale - lse);
        dq.add(prob * (dout.dot(value) - delta), key);
      }
      dq.store(dq_row, s.scale);
    }
  }
}

template <typename T, int C>
__global__ void __launch_bounds__(kThreadsPerBlock)
    packed_key_kernel(const PackedBackwardParams p, const float* delta) {
  const PackedShape& s = p.shape;
  const int lane = lane_id();
  const bool poisoned = *p.fatal != 0;
  const int64_t rows = s.k_tokens * s.kv_heads;
  const int64_t widest = s.head_dim > s.head_dim_v ? s.head_dim : s.head_dim_v;
#pragma unroll 1
  for (int64_t row = first_warp(); row < rows; row += warps_in_grid()) {
    const int64_t hk = row % s.kv_heads, j = row / s.kv_heads;
    const LaneOut<T> dk_row = lane_out<T>(p.dk, packed_row(p.dk, j, hk), lane);
    const LaneOut<T> dv_row = lane_out<T>(p.dv, packed_row(p.dv, j, hk), lane);
    if (poisoned) {
      fill_nan(dk_row, s.head_dim, lane);
      fill_nan(dv_row, s.head_dim_v, lane);
      continue;
    }
    const WarpRow<T, C> k(lane_row<T>(p.k, packed_row(p.k, j, hk), lane), s.head_dim, lane);
    const WarpRow<T, C> v(lane_row<T>(p.v, packed_row(p.v, j, hk), lane), s.head_dim_v, lane);
    const Span queries = queries_of(s, j);

#pragma unroll 1
    for (int64_t c0 = 0; c0 < widest; c0 += kWarpSize * C) {
      WarpSlice<C> dk(c0, s.head_dim, lane), dv(c0, s.head_dim_v, lane);
#pragma unroll 1
      for (int64_t t = queries.begin; t < queries.end; ++t) {
#pragma unroll 1
        for (int64_t h = hk * s.group; h < (hk + 1) * s.group; ++h) {
          const LaneRow<T> q = lane_row<T>(p.q, packed_row(p.q, t, h), lane);
          const LaneRow<T> dout = lane_row<T>(p.dout, packed_row(p.dout, t, h), lane);
          const float prob = expf(k.dot(q) * s.scale - load_f32(p.lse, packed_row(p.lse, t, h)));
          const float dp = v.dot(dout);
          dv.add(prob, dout);
          dk.add(prob * (dp - delta[t * s.heads + h]), q);
        }
      }
      dk.store(dk_row, s.scale);
      dv.store(dv_row, 1.0f);
    }
  }
}

}  // namespace

void launch_packed_backward(const PackedBackwardParams& params, DType dtype,
                            cudaStream_t stream) {
  const PackedShape& s = params.shape;
  const int64_t query_rows = s.q_tokens * s.heads, key_rows = s.k_tokens * s.kv_heads;
  StreamBuffer delta(static_cast<size_t>(query_rows) * sizeof(float), stream);
  with_kind(dtype, std::max(s.head_dim, s.head_dim_v), [&](auto kind) {
    using K = decltype(kind);
    if (query_rows > 0) {
      packed_query_kernel<typename K::Elem, K::kPerLane>
          <<<blocks_for_warps(query_rows), kThreadsPerBlock, 0, stream>>>(params,
                                                                          delta.get<float>());
      check_launch("packed backward query-pass kernel launch");
    }
    if (key_rows > 0) {
      packed_key_kernel<typename K::Elem, K::kPerLane>
          <<<blocks_for_warps(key_rows), kThreadsPerBlock, 0, stream>>>(params,
                                                                        delta.get<float>());
      check_launch("packed backward key-pass kernel launch");
    }
  });
}

}  // namespace gna::cuda_generic
