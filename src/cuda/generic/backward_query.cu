// Backward pass 1 of cuda-generic: one warp per query row (b, token, head).
//   delta = dO . O - dLSE                      (stored for passes 2 and 3)
//   dQ    = scale * sum_j P_j (dO . v_j - delta) k_j,  P_j = exp(scale q.k_j - LSE)
// over the row's neighborhood and the additional keys. The warp keeps q and
// dO in registers; dQ rows wider than one register slice are produced slice
// by slice.
#include "cuda/generic/cuda_check.hpp"
#include "cuda/generic/dispatch.cuh"
#include "cuda/generic/launch.hpp"
#include "cuda/generic/neighborhood.cuh"

namespace gna::cuda_generic {
namespace {

template <typename T, int C>
__global__ void __launch_bounds__(kThreadsPerBlock)
    query_pass_kernel(const BackwardParams p, float* delta_out) {
  const Shape& s = p.shape;
  const int lane = lane_id();
  const int64_t rows = s.batch * s.tokens * s.heads;
#pragma unroll 1
  for (int64_t row = first_warp(); row < rows; row += warps_in_grid()) {
    const QueryAt at = query_at(s, row);
    const WarpRow<T, C> dout(lane_row<T>(p.dout, p.dout.row(at.b, at.x, at.h), lane), s.head_dim_v,
                             lane);
    float delta = dout.dot(lane_row<T>(p.o, p.o.row(at.b, at.x, at.h), lane));
    if (p.dlse.data != nullptr) delta -= load_f32(p.dlse, p.dlse.row(at.b, at.x, at.h));
    if (lane == 0) delta_out[row] = delta;
    const float lse = load_f32(p.lse, p.lse.row(at.b, at.x, at.h));
    const WarpRow<T, C> q(lane_row<T>(p.q, p.q.row(at.b, at.x, at.h), lane), s.head_dim, lane);
    const Box3 keys = neighborhood<false>(s, at.x);

#pragma unroll 1
    for (int64_t c0 = 0; c0 < s.head_dim; c0 += kWarpSize * C) {
      WarpSlice<C> dq(c0, s.head_dim, lane);
      auto visit = [&](const LaneRow<T>& key, const LaneRow<T>& value) {
        const float prob = expf(q.dot(key) * s.scale - lse);
        dq.add(prob * (dout.dot(value) - delta), key);
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
      dq.store(lane_out<T>(p.dq, p.dq.row(at.b, at.x, at.h), lane), s.scale);
    }
  }
}

}  // namespace

void launch_query_pass(const BackwardParams& params, DType dtype, float* delta,
                       cudaStream_t stream) {
  const Shape& s = params.shape;
  const int64_t rows = s.batch * s.tokens * s.heads;
  if (rows == 0) return;  // e.g. kv heads without query heads: no query rows
  with_kind(dtype, std::max(s.head_dim, s.head_dim_v), [&](auto kind) {
    using K = decltype(kind);
    query_pass_kernel<typename K::Elem, K::kPerLane>
        <<<blocks_for_warps(rows), kThreadsPerBlock, 0, stream>>>(params, delta);
  });
  check_launch("backward query-pass kernel launch");
}

}  // namespace gna::cuda_generic
