// Forward pass of cuda-generic: one warp per query row (b, token, head).
// The warp keeps the query in registers, streams the keys of the row's
// neighborhood (then the additional keys) one at a time, and folds each into
// an online softmax and an fp32 output accumulator:
//   s = scale * q.k,  O = sum softmax(s) v,  LSE = log sum exp(s).
// Output rows wider than one register slice (Dv > 32 * C) are produced slice
// by slice, recomputing the same scores each time.
#include "cuda/generic/cuda_check.hpp"
#include "cuda/generic/dispatch.cuh"
#include "cuda/generic/launch.hpp"
#include "cuda/generic/neighborhood.cuh"

namespace gna::cuda_generic {
namespace {

template <typename T, int C>
__global__ void __launch_bounds__(kThreadsPerBlock) forward_kernel(const ForwardParams p) {
  const Shape& s = p.shape;
  const int lane = lane_id();
  const int64_t rows = s.batch * s.tokens * s.heads;
#pragma unroll 1
  for (int64_t row = first_warp(); row < rows; row += warps_in_grid()) {
    const QueryAt at = query_at(s, row);
    const WarpRow<T, C> q(lane_row<T>(p.q, p.q.row(at.b, at.x, at.h), lane), s.head_dim, lane);
    const Box3 keys = neighborhood<false>(s, at.x);

#pragma unroll 1
    for (int64_t c0 = 0; c0 < s.head_dim_v; c0 += kWarpSize * C) {
      OnlineSoftmax softmax;
      WarpSlice<C> out(c0, s.head_dim_v, lane);
      auto visit = [&](const LaneRow<T>& key, const LaneRow<T>& value) {
        const float2 f = softmax.add(q.dot(key) * s.scale);
        out.scale(f.x);
        out.add(f.y, value);
      };
      for_each_in_box(keys, [&](const int64_t* y) {
        visit(lane_row<T>(p.k, p.k.row(at.b, y, at.hk), lane),
              lane_row<T>(p.v, p.v.row(at.b, y, at.hk), lane));
      });
#pragma unroll 1
      for (int64_t n = 0; n < s.extra_kv; ++n) {
        visit(lane_row<T>(p.xk, p.xk.extra_row(at.b, n, at.hk), lane),
              lane_row<T>(p.xv, p.xv.extra_row(at.b, n, at.hk), lane));
      }
      // Every query sees at least one key (itself when causal), so sum > 0.
      out.store(lane_out<T>(p.o, p.o.row(at.b, at.x, at.h), lane), 1.0f / softmax.sum);
      if (c0 == 0 && p.lse.data != nullptr && lane == 0) {
        static_cast<float*>(p.lse.data)[p.lse.row(at.b, at.x, at.h)] = softmax.lse();
      }
    }
  }
}

}  // namespace

void launch_forward(const ForwardParams& params, DType dtype, cudaStream_t stream) {
  const Shape& s = params.shape;
  const int64_t rows = s.batch * s.tokens * s.heads;
  with_kind(dtype, std::max(s.head_dim, s.head_dim_v), [&](auto kind) {
    using K = decltype(kind);
    forward_kernel<typename K::Elem, K::kPerLane>
        <<<blocks_for_warps(rows), kThreadsPerBlock, 0, stream>>>(params);
  });
  check_launch("forward kernel launch");
}

}  // namespace gna::cuda_generic
