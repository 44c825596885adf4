// Warp-level building blocks of the generic kernels. One warp owns one row
// (a query in the forward and dQ passes, a key in the dK/dV passes); its 32
// lanes split the head dimension: lane l handles elements l, l + 32, ...
// Reductions use an xor butterfly, so every lane ends with the bitwise same
// sum and all lanes take the same branches (no divergence around shuffles).
//
// Widths: a kernel instance keeps C elements per lane in registers, i.e. a
// slice of 32 * C elements of a row. Rows longer than that (huge head dims)
// still work: dot products read the tail from memory, and outputs are
// produced slice by slice.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace gna::cuda_generic {

constexpr int kWarpSize = 32;
constexpr int kWarpsPerBlock = 4;
constexpr int kThreadsPerBlock = kWarpSize * kWarpsPerBlock;

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  }
  return v;
}

__device__ __forceinline__ int lane_id() { return static_cast<int>(threadIdx.x) % kWarpSize; }

// Warp-sized work items are spread over the grid with a grid-stride loop
// (grids are capped, item counts are 64-bit).
__device__ __forceinline__ int64_t first_warp() {
  return static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
}
__device__ __forceinline__ int64_t warps_in_grid() {
  return static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
}

// What one lane sees of a row: its elements lane, lane + 32, lane + 64, ...
// Element lane + 32 j ("chunk" j) lies at ptr[j * step], step = 32 * element
// stride, so walking a row costs additions, not 64-bit multiplies.
template <typename T>
struct LaneRow {
  const T* ptr;
  int64_t step;
  __device__ __forceinline__ float operator[](int64_t j) const { return to_float(ptr[j * step]); }
};

template <typename T>
struct LaneOut {
  T* ptr;
  int64_t step;
  __device__ __forceinline__ void set(int64_t j, float v) const {
    ptr[j * step] = from_float<T>(v);
  }
};

// How many elements lane + 32 j of a row of n elements exist.
__device__ __forceinline__ int64_t lane_chunks(int64_t n, int lane) {
  return n > lane ? (n - lane + kWarpSize - 1) / kWarpSize : 0;
}

// A row of n elements that the warp reads many times (the query of a
// forward row, the key of a dK/dV row): the lane's first C elements stay in
// registers (zero past the end), the rest is re-read when needed.
template <typename T, int C>
struct WarpRow {
  LaneRow<T> row;
  int64_t chunks;  // the lane's elements in the row
  float reg[C];

  __device__ __forceinline__ WarpRow(const LaneRow<T>& r, int64_t n, int lane)
      : row(r), chunks(lane_chunks(n, lane)) {
#pragma unroll
    for (int i = 0; i < C; ++i) reg[i] = i < chunks ? row[i] : 0.0f;
  }

  // sum_e row[e] * other[e] over the n elements; the same value on every
  // lane. `other` has the same length.
  __device__ __forceinline__ float dot(const LaneRow<T>& other) const {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < C; ++i) {
      if (i < chunks) s = fmaf(reg[i], other[i], s);
    }
#pragma unroll 1
    for (int64_t j = C; j < chunks; ++j) s = fmaf(row[j], other[j], s);
    return warp_sum(s);
  }
};

// The slice [c0, c0 + 32 C) of an output row of n elements, accumulated in
// fp32 (c0 a multiple of 32 C): the lane owns its chunks c0 / 32 + i that
// exist.
template <int C>
struct WarpSlice {
  int64_t first;   // chunk of acc[0]
  int64_t chunks;  // the lane's elements in the row
  float acc[C];

  __device__ __forceinline__ WarpSlice(int64_t c0, int64_t n, int lane)
      : first(c0 / kWarpSize), chunks(lane_chunks(n, lane)) {
#pragma unroll
    for (int i = 0; i < C; ++i) acc[i] = 0.0f;
  }
  __device__ __forceinline__ bool owns(int i) const { return first + i < chunks; }

  // acc += w * src (the slice's elements of src).
  template <typename T>
  __device__ __forceinline__ void add(float w, const LaneRow<T>& src) {
#pragma unroll
    for (int i = 0; i < C; ++i) {
      if (owns(i)) acc[i] = fmaf(w, src[first + i], acc[i]);
    }
  }
  __device__ __forceinline__ void scale(float f) {
#pragma unroll
    for (int i = 0; i < C; ++i) acc[i] *= f;
  }
  // dst = acc * mul, rounded to dst's dtype.
  template <typename T>
  __device__ __forceinline__ void store(const LaneOut<T>& dst, float mul) const {
#pragma unroll
    for (int i = 0; i < C; ++i) {
      if (owns(i)) dst.set(first + i, acc[i] * mul);
    }
  }
};

// Running max and denominator of a softmax over scores seen one at a time.
struct OnlineSoftmax {
  float max = -INFINITY;
  float sum = 0.0f;

  // Takes score s; returns the factor that rescales what was accumulated so
  // far and the weight of s, both relative to the new running max.
  __device__ __forceinline__ float2 add(float s) {
    const float new_max = fmaxf(max, s);
    const float rescale = expf(max - new_max);  // 0 for the first score
    const float weight = expf(s - new_max);
    sum = fmaf(sum, rescale, weight);
    max = new_max;
    return make_float2(rescale, weight);
  }
  __device__ __forceinline__ float lse() const { return max + logf(sum); }
};

}  // namespace gna::cuda_generic
