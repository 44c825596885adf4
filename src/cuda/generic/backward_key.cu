// Backward pass 2 of cuda-generic: one warp per key row (b, token, kv head).
// The warp visits the key's inverse neighborhood (window::query_range per
// axis: exactly the queries whose window holds this key) and, for each such
// token, every query head of the kv head's group. It is the only writer of
// its dK and dV rows, so there are no atomics. Keys no query sees get zeros.
#include "cuda/generic/cuda_check.hpp"
#include "cuda/generic/dispatch.cuh"
#include "cuda/generic/key_gradient.cuh"
#include "cuda/generic/launch.hpp"
#include "cuda/generic/neighborhood.cuh"

namespace gna::cuda_generic {
namespace {

template <typename T, int C>
__global__ void __launch_bounds__(kThreadsPerBlock)
    key_pass_kernel(const BackwardParams p, const float* delta) {
  const Shape& s = p.shape;
  const int lane = lane_id();
  const int64_t rows = s.batch * s.tokens * s.kv_heads;
  const int64_t widest = s.head_dim > s.head_dim_v ? s.head_dim : s.head_dim_v;
#pragma unroll 1
  for (int64_t row = first_warp(); row < rows; row += warps_in_grid()) {
    const int64_t hk = row % s.kv_heads;
    const int64_t b = row / (s.kv_heads * s.tokens);
    int64_t y[kMaxSpatialRank];
    token_coords(s, (row / s.kv_heads) % s.tokens, y);
    const WarpRow<T, C> k(lane_row<T>(p.k, p.k.row(b, y, hk), lane), s.head_dim, lane);
    const WarpRow<T, C> v(lane_row<T>(p.v, p.v.row(b, y, hk), lane), s.head_dim_v, lane);
    const Box3 queries = neighborhood<true>(s, y);

#pragma unroll 1
    for (int64_t c0 = 0; c0 < widest; c0 += kWarpSize * C) {
      WarpSlice<C> dk(c0, s.head_dim, lane), dv(c0, s.head_dim_v, lane);
      for_each_in_box(queries, [&](const int64_t* x) {
        const int64_t t = token_index(s, x);
#pragma unroll 1
        for (int64_t h = hk * s.group; h < (hk + 1) * s.group; ++h) {
          add_query(p, delta, k, v, b, x, t, h, lane, dk, dv);
        }
      });
      dk.store(lane_out<T>(p.dk, p.dk.row(b, y, hk), lane), s.scale);
      dv.store(lane_out<T>(p.dv, p.dv.row(b, y, hk), lane), 1.0f);
    }
  }
}

}  // namespace

void launch_key_pass(const BackwardParams& params, DType dtype, const float* delta,
                     cudaStream_t stream) {
  const Shape& s = params.shape;
  const int64_t rows = s.batch * s.tokens * s.kv_heads;
  if (rows == 0) return;  // e.g. kv heads without query heads: no query rows
  with_kind(dtype, std::max(s.head_dim, s.head_dim_v), [&](auto kind) {
    using K = decltype(kind);
    key_pass_kernel<typename K::Elem, K::kPerLane>
        <<<blocks_for_warps(rows), kThreadsPerBlock, 0, stream>>>(params, delta);
  });
  check_launch("backward key-pass kernel launch");
}

}  // namespace gna::cuda_generic
