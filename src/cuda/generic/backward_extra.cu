// Backward pass 3 of cuda-generic: gradients of the additional keys, which
// every query sees. One additional key row (b, n, kv head) sums over all
// T * group query rows, too many for one warp on large problems, so the
// query rows are cut into `splits` contiguous pieces:
//   partial kernel: one warp per (split, key row) writes fp32 partial sums
//                   [splits, items, D + Dv] (dK unscaled, then dV);
//   reduce kernel:  one thread per (key row, element) adds the splits in
//                   order, scales dK and stores in the output dtype.
// Every partial has exactly one writer: no atomics, and the result does not
// depend on scheduling.
#include "cuda/generic/cuda_check.hpp"
#include "cuda/generic/dispatch.cuh"
#include "cuda/generic/key_gradient.cuh"
#include "cuda/generic/launch.hpp"
#include "cuda/generic/neighborhood.cuh"

namespace gna::cuda_generic {
namespace {

// Additional key rows ("items") are ordered (b, n, kv head), kv head fastest.
struct ExtraAt {
  int64_t b, n, hk;
};
__device__ __forceinline__ ExtraAt extra_at(const Shape& s, int64_t item) {
  return ExtraAt{item / (s.kv_heads * s.extra_kv), (item / s.kv_heads) % s.extra_kv,
                 item % s.kv_heads};
}

template <typename T, int C>
__global__ void __launch_bounds__(kThreadsPerBlock)
    extra_partial_kernel(const BackwardParams p, const float* delta, int64_t splits,
                         float* partial) {
  const Shape& s = p.shape;
  const int lane = lane_id();
  const int64_t items = s.batch * s.extra_kv * s.kv_heads;
  const int64_t pairs = s.tokens * s.group;  // query rows per item
  const int64_t per_split = (pairs + splits - 1) / splits;
  const int64_t width = s.head_dim + s.head_dim_v;
  const int64_t widest = s.head_dim > s.head_dim_v ? s.head_dim : s.head_dim_v;
#pragma unroll 1
  for (int64_t unit = first_warp(); unit < splits * items; unit += warps_in_grid()) {
    const int64_t split = unit / items;
    const ExtraAt at = extra_at(s, unit % items);
    const int64_t begin = split * per_split;
    const int64_t end = begin + per_split < pairs ? begin + per_split : pairs;
    const WarpRow<T, C> k(lane_row<T>(p.xk, p.xk.extra_row(at.b, at.n, at.hk), lane), s.head_dim,
                          lane);
    const WarpRow<T, C> v(lane_row<T>(p.xv, p.xv.extra_row(at.b, at.n, at.hk), lane), s.head_dim_v,
                          lane);
    // partial is indexed [split][item][D + Dv], i.e. [unit][D + Dv].
    float* out = partial + unit * width;

#pragma unroll 1
    for (int64_t c0 = 0; c0 < widest; c0 += kWarpSize * C) {
      WarpSlice<C> dk(c0, s.head_dim, lane), dv(c0, s.head_dim_v, lane);
      // Query row i is (token i / group, head hk * group + i % group);
      // walked with counters to keep divisions out of the loop.
      int64_t t = begin / s.group, g = begin % s.group;
      int64_t x[kMaxSpatialRank];
      token_coords(s, t, x);
#pragma unroll 1
      for (int64_t i = begin; i < end; ++i) {
        add_query(p, delta, k, v, at.b, x, t, at.hk * s.group + g, lane, dk, dv);
        if (++g == s.group) {
          g = 0;
          ++t;
          next_token(s, x);
        }
      }
      dk.store(LaneOut<float>{out + lane, kWarpSize}, 1.0f);
      dv.store(LaneOut<float>{out + s.head_dim + lane, kWarpSize}, 1.0f);
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreadsPerBlock)
    extra_reduce_kernel(const BackwardParams p, const float* partial, int64_t splits) {
  const Shape& s = p.shape;
  const int64_t items = s.batch * s.extra_kv * s.kv_heads;
  const int64_t width = s.head_dim + s.head_dim_v;
  const int64_t total = items * width;
  const int64_t threads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += threads) {
    const int64_t item = i / width, e = i % width;
    float sum = 0.0f;
#pragma unroll 1
    for (int64_t split = 0; split < splits; ++split) sum += partial[split * total + i];
    const ExtraAt at = extra_at(s, item);
    if (e < s.head_dim) {
      const int64_t offset = p.dxk.extra_row(at.b, at.n, at.hk) + e * p.dxk.elem;
      static_cast<T*>(p.dxk.data)[offset] = from_float<T>(sum * s.scale);
    } else {
      const int64_t offset = p.dxv.extra_row(at.b, at.n, at.hk) + (e - s.head_dim) * p.dxv.elem;
      static_cast<T*>(p.dxv.data)[offset] = from_float<T>(sum);
    }
  }
}

// Enough warps to fill a large GPU several times over, but at least a few
// hundred query rows per warp so that the partial sums stay few.
int64_t split_count(const Shape& s, int64_t items) {
  constexpr int64_t kTargetWarps = 32768;
  constexpr int64_t kMinRowsPerWarp = 256;
  const int64_t pairs = s.tokens * s.group;
  const int64_t by_rows = (pairs + kMinRowsPerWarp - 1) / kMinRowsPerWarp;
  const int64_t by_warps = (kTargetWarps + items - 1) / items;
  return std::max<int64_t>(1, std::min(by_rows, by_warps));
}

}  // namespace

void launch_extra_pass(const BackwardParams& params, DType dtype, const float* delta,
                       cudaStream_t stream) {
  const Shape& s = params.shape;
  const int64_t items = s.batch * s.extra_kv * s.kv_heads;
  if (items == 0) return;
  const int64_t splits = split_count(s, items);
  const int64_t width = s.head_dim + s.head_dim_v;
  StreamBuffer partial(static_cast<size_t>(splits * items * width) * sizeof(float), stream);
  with_kind(dtype, std::max(s.head_dim, s.head_dim_v), [&](auto kind) {
    using K = decltype(kind);
    extra_partial_kernel<typename K::Elem, K::kPerLane>
        <<<blocks_for_warps(splits * items), kThreadsPerBlock, 0, stream>>>(params, delta, splits,
                                                                            partial.get<float>());
    check_launch("backward additional-KV partial kernel launch");
    const int64_t total = items * width;
    const int64_t blocks =
        std::min<int64_t>((total + kThreadsPerBlock - 1) / kThreadsPerBlock, int64_t{1} << 20);
    extra_reduce_kernel<typename K::Elem>
        <<<static_cast<unsigned>(blocks), kThreadsPerBlock, 0, stream>>>(
            params, partial.get<float>(), splits);
    check_launch("backward additional-KV reduce kernel launch");
  });
}

}  // namespace gna::cuda_generic
