// Forward pass of packed variable-length attention: one warp per query row
// (packed token t, head h), heads fastest so that neighboring warps read the
// same K/V rows (GQA). The warp finds t's sequence in the device offsets,
// keeps the query in registers and folds its sequence's keys into an online
// softmax, as the neighborhood forward (forward.cu) does:
//   s = scale * q.k,  O = sum softmax(s) v,  LSE = log sum exp(s).
#include "cuda/generic/cuda_check.hpp"
#include "cuda/generic/dispatch.cuh"
#include "cuda/generic/packed.cuh"
#include "cuda/generic/packed_launch.hpp"

namespace gna::cuda_generic {
namespace {

template <typename T, int C>
__global__ void __launch_bounds__(kThreadsPerBlock)
    packed_forward_kernel(const PackedForwardParams p) {
  const PackedShape& s = p.shape;
  const int lane = lane_id();
  const bool poisoned = *p.fatal != 0;
  const int64_t rows = s.q_tokens * s.heads;
#pragma unroll 1
  for (int64_t row = first_warp(); row < rows; row += warps_in_grid()) {
    const int64_t h = row % s.heads, t = row / s.heads, hk = h / s.group;
    const LaneOut<T> out_row = lane_out<T>(p.o, packed_row(p.o, t, h), lane);
    float* lse = p.lse.data != nullptr ? static_cast<float*>(p.lse.data) + packed_row(p.lse, t, h)
                                       : nullptr;
    if (poisoned) {
      fill_nan(out_row, s.head_dim_v, lane);
      if (lse != nullptr && lane == 0) *lse = NAN;
      continue;
    }
    const WarpRow<T, C> q(lane_row<T>(p.q, packed_row(p.q, t, h), lane), s.head_dim, lane);
    const Span keys = keys_of(s, t);

#pragma unroll 1
    for (int64_t c0 = 0; c0 < s.head_dim_v; c0 += kWarpSize * C) {
      OnlineSoftmax softmax;
      WarpSlice<C> out(c0, s.head_dim_v, lane);
#pragma unroll 1
      for (int64_t j = keys.begin; j < keys.end; ++j) {
        const float2 f =
            softmax.add(q.dot(lane_row<T>(p.k, packed_row(p.k, j, hk), lane)) * s.scale);
        out.scale(f.x);
        out.add(f.y, lane_row<T>(p.v, packed_row(p.v, j, hk), lane));
      }
      // Checked offsets give every query a key (itself when causal): sum > 0.
      out.store(out_row, 1.0f / softmax.sum);
      if (c0 == 0 && lse != nullptr && lane == 0) *lse = softmax.lse();
    }
  }
}

}  // namespace

void launch_packed_forward(const PackedForwardParams& params, DType dtype, cudaStream_t stream) {
  const PackedShape& s = params.shape;
  const int64_t rows = s.q_tokens * s.heads;
  if (rows == 0) return;
  with_kind(dtype, std::max(s.head_dim, s.head_dim_v), [&](auto kind) {
    using K = decltype(kind);
    packed_forward_kernel<typename K::Elem, K::kPerLane>
        <<<blocks_for_warps(rows), kThreadsPerBlock, 0, stream>>>(params);
  });
  check_launch("packed forward kernel launch");
}

}  // namespace gna::cuda_generic
