// The one place that turns runtime dtype and head dims into kernel template
// arguments, and sizes grids.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "core/check.hpp"
#include "cuda/generic/params.hpp"
#include "cuda/generic/warp_row.cuh"

namespace gna::cuda_generic {

// Element type T and C elements per lane kept in registers.
template <typename T, int C>
struct Kind {
  using Elem = T;
  static constexpr int kPerLane = C;
};

// Smallest register width whose 32 * C slice covers `widest` elements (a
// whole row in one slice up to 256); wider rows run slice by slice.
template <typename T, typename Launch>
void with_width(int64_t widest, Launch&& launch) {
  if (widest <= 32) {
    launch(Kind<T, 1>{});
  } else if (widest <= 64) {
    launch(Kind<T, 2>{});
  } else if (widest <= 128) {
    launch(Kind<T, 4>{});
  } else {
    launch(Kind<T, 8>{});
  }
}

template <typename Launch>
void with_kind(DType dtype, int64_t widest, Launch&& launch) {
  switch (dtype) {
    case DType::f32:
      with_width<float>(widest, launch);
      return;
    case DType::f16:
      with_width<__half>(widest, launch);
      return;
    case DType::bf16:
      with_width<__nv_bfloat16>(widest, launch);
      return;
    default:
      break;
  }
  throw Error(
      ErrorKind::unsupported, "backend",
      detail::concat("backend cuda-generic: dtype ", dtype_name(dtype), " is not supported"));
}

// Blocks for `items` warp-sized work items; beyond the cap, warps loop.
inline unsigned blocks_for_warps(int64_t items) {
  constexpr int64_t kMaxBlocks = int64_t{1} << 20;
  return static_cast<unsigned>(
      std::min<int64_t>((items + kWarpsPerBlock - 1) / kWarpsPerBlock, kMaxBlocks));
}

// ---- Device side: rows of the parameter tensors. ----

// The lane's view of the row at `offset` of a parameter tensor.
template <typename T>
__device__ __forceinline__ LaneRow<T> lane_row(const Rows& r, int64_t offset, int lane) {
  return LaneRow<T>{static_cast<const T*>(r.data) + offset + lane * r.elem, kWarpSize * r.elem};
}
template <typename T>
__device__ __forceinline__ LaneOut<T> lane_out(const Rows& r, int64_t offset, int lane) {
  return LaneOut<T>{static_cast<T*>(r.data) + offset + lane * r.elem, kWarpSize * r.elem};
}
__device__ __forceinline__ float load_f32(const Rows& r, int64_t offset) {
  return static_cast<const float*>(r.data)[offset];
}

}  // namespace gna::cuda_generic
