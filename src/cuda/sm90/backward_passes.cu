// The small memory-bound passes around the fused backward kernel:
//   prepass:  per query tile of (batch, head): lse2 and delta of its rows,
//             its dQ scratch zeroed (and its turn counters, deterministic)
//   dq pass:  dQ = scale * scratch, back into the caller's layout
//   extra pass: the additional keys' dK (scaled) and dV, summing the splits'
//             partial sums in split order
// Rows of a query tile are tokens of one dilation group, decoded as the main
// kernel does (backward_walk.cuh); padded rows past the group's end get
// lse2 = +inf and delta = 0, so that the main kernel needs no mask for them.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cuda/sm90/backward_launch.hpp"
#include "cuda/sm90/backward_walk.cuh"
#include "cuda/sm90/tile_load.cuh"

namespace gna::sm90 {
namespace {

__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// The rows of one query tile: row r is the token at in-group position
// first + (r >> shifts) per axis of the tile's dilation groups.
struct TileRows {
  int32_t group[3], first[3], length[3];
};

__device__ __forceinline__ TileRows tile_rows(const BackwardPassParams& p, int32_t tile) {
  TileRows t;
  int32_t in_group[3];
  query_tile_cells(p.axis, tile, t.group, in_group);
#pragma unroll
  for (int a = 0; a < 3; ++a) {
    t.first[a] = in_group[a] << p.axis[a].q_log2;
    t.length[a] = static_cast<int32_t>(window::group_length(window_axis(p.axis[a]), t.group[a]));
  }
  return t;
}

// Absolute coordinates of row `row`; false when it lies past its group.
__device__ __forceinline__ bool row_coords(const BackwardPassParams& p, const TileRows& t, int row,
                                           int64_t (&x)[3]) {
  int shift = 0;
#pragma unroll
  for (int a = 2; a >= 0; --a) {
    const int32_t pos = t.first[a] + ((row >> shift) & ((1 << p.axis[a].q_log2) - 1));
    shift += p.axis[a].q_log2;
    if (pos >= t.length[a]) return false;
    x[a] = absolute(p.axis[a], t.group[a], pos);
  }
  return true;
}

// Element offset of (batch, x, head) in a heads-last tensor.
__device__ __forceinline__ int64_t offset_of(const Strided& t, int32_t batch, const int64_t (&x)[3],
                                             int32_t head) {
  return batch * t.stride[0] + x[0] * t.stride[1] + x[1] * t.stride[2] + x[2] * t.stride[3] +
         head * t.stride[4];
}

constexpr int kPassThreads = 256;
constexpr int kVector = 8;  // elements of 16 bytes

// Whether every row of t can be read (or written) 16 bytes at a time:
// unit element stride, aligned base and row strides, whole vectors per row.
__device__ __forceinline__ bool vector_rows(const Strided& t, int width) {
  bool ok = t.stride[5] == 1 && width % kVector == 0 &&
            reinterpret_cast<uintptr_t>(t.data) % 16 == 0;
#pragma unroll
  for (int i = 0; i < 5; ++i) ok = ok && t.stride[i] % kVector == 0;
  return ok;
}

template <class T>
__device__ __forceinline__ float dot8(uint4 a, uint4 b) {
  const T* x = reinterpret_cast<const T*>(&a);
  const T* y = reinterpret_cast<const T*>(&b);
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < kVector; ++i) sum = fmaf(to_float(x[i]), to_float(y[i]), sum);
  return sum;
}

// delta = dO . O of one row (to be reduced over `lanes` neighbouring lanes);
// this lane's share: 16-byte chunks lane, lane + lanes, ... when the rows
// allow vectors, elements otherwise.
template <class T>
__device__ __forceinline__ float row_dot(const BackwardPassParams& p, bool vectors, int64_t at,
                                         int64_t at_do, int lane, int lanes) {
  const T* o = static_cast<const T*>(p.o.data);
  const T* dout = static_cast<const T*>(p.dout.data);
  float dot = 0.0f;
  if (vectors) {
    for (int c = lane; c < p.head_dim_v / kVector; c += lanes) {
      dot += dot8<T>(*reinterpret_cast<const uint4*>(o + at + c * kVector),
                     *reinterpret_cast<const uint4*>(dout + at_do + c * kVector));
    }
  } else {
    for (int e = lane; e < p.head_dim_v; e += lanes) {
      dot = fmaf(to_float(o[at + e * p.o.stride[5]]), to_float(dout[at_do + e * p.dout.stride[5]]),
                 dot);
    }
  }
  return dot;
}

// A group of `lanes` neighbouring lanes (a power of two up to 32) per row,
// so that one warp instruction reads several rows' worth of whole vectors.
template <class T>
__global__ void __launch_bounds__(kPassThreads) prepass_kernel(const BackwardPassParams p) {
  const int32_t tile = blockIdx.x, head = blockIdx.y, batch = blockIdx.z;
  const int64_t rb = (static_cast<int64_t>(batch) * p.heads + head) * p.q_tiles + tile;
  const TileRows t = tile_rows(p, tile);
  const bool vectors = vector_rows(p.o, p.head_dim_v) && vector_rows(p.dout, p.head_dim_v);
  const int lanes = vectors ? max(1, min(32, p.head_dim_v / kVector)) : 32;
  const int lane = threadIdx.x % lanes, rows_at_once = kPassThreads / lanes;
  for (int row = threadIdx.x / lanes; row < p.rows; row += rows_at_once) {
    int64_t x[3];
    const bool exists = row_coords(p, t, row, x);
    float dot = 0.0f;
    if (exists) {
      dot = row_dot<T>(p, vectors, offset_of(p.o, batch, x, head),
                       offset_of(p.dout, batch, x, head), lane, lanes);
    }
    // Every lane of the warp takes part (rows past the group add zeros).
    for (int m = lanes / 2; m > 0; m /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, m);
    if (lane == 0) {
      float lse2 = INFINITY, delta = 0.0f;
      if (exists) {
        delta = dot;
        if (p.dlse.data != nullptr) {
          delta -= static_cast<const float*>(p.dlse.data)[offset_of(p.dlse, batch, x, head)];
        }
        lse2 = static_cast<const float*>(p.lse.data)[offset_of(p.lse, batch, x, head)] *
               1.4426950408889634f;
      }
      p.lse2[rb * p.rows + row] = lse2;
      p.delta[rb * p.rows + row] = delta;
    }
  }
  float4* dq = reinterpret_cast<float4*>(p.dq_acc + rb * p.rows * p.head_dim);
  for (int i = threadIdx.x; i < p.rows * p.head_dim / 4; i += kPassThreads) {
    dq[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }
  if (p.deterministic && threadIdx.x < 2) p.order[2 * rb + threadIdx.x] = 0;
}

// Inverts the staging order of backward_kernel.cuh: piece float e of
// consumer warpgroup w is accumulator element 4g + r of thread t, with
// g = e / 512, t = (e / 4) % 128, r = e % 4; that element is row
// 16 * (t / 32) + (t % 32) / 4 + 8 * (r / 2), column 8g + 2 * (t % 4) + r % 2
// of the piece, which is rows 0-63 and head-dim columns 64w.. (D = 128) or
// rows 64w.. and every column (D < 128) of the tile. The tile goes through
// shared memory, scaled and rounded, so that it leaves in whole rows.
constexpr int kDqTileElements = 64 * 128;  // the largest M x D: 64 x 128, 128 x 64
template <class T>
__global__ void __launch_bounds__(kPassThreads) dq_pass_kernel(const BackwardPassParams p) {
  constexpr int kPad = kVector;  // elements: rows 16 bytes apart modulo the banks
  __shared__ __align__(16) T tile_smem[kDqTileElements + 128 * kPad];
  const int32_t tile = blockIdx.x, head = blockIdx.y, batch = blockIdx.z;
  const int64_t rb = (static_cast<int64_t>(batch) * p.heads + head) * p.q_tiles + tile;
  const TileRows t = tile_rows(p, tile);
  const float4* acc = reinterpret_cast<const float4*>(p.dq_acc + rb * p.rows * p.head_dim);
  const bool by_head_dim = p.dq_cols != p.head_dim;
  const int piece = 64 * p.dq_cols, pitch = p.head_dim + kPad;

  // Scratch (fragment order) -> shared memory (row-major), four floats at a time.
  for (int q = threadIdx.x; q < p.rows * p.head_dim / 4; q += kPassThreads) {
    const int w = (4 * q) / piece, e = (4 * q) % piece;
    const int g = e / 512, th = (e / 4) % 128;
    const int row = 16 * (th / 32) + (th % 32) / 4;
    const int col = 8 * g + 2 * (th % 4);
    const int tile_row = by_head_dim ? row : 64 * w + row;
    const int dim = by_head_dim ? 64 * w + col : col;
    const float4 v = acc[q];
    T* top = tile_smem + tile_row * pitch + dim;
    T* bottom = top + 8 * pitch;
    top[0] = from_float<T>(v.x * p.scale);
    top[1] = from_float<T>(v.y * p.scale);
    bottom[0] = from_float<T>(v.z * p.scale);
    bottom[1] = from_float<T>(v.w * p.scale);
  }
  __syncthreads();

  // Shared memory -> dQ, 16 bytes per thread where the layout allows.
  T* dq = static_cast<T*>(const_cast<void*>(p.dq.data));
  const bool vectors = vector_rows(p.dq, p.head_dim);
  const int per_row = vectors ? p.head_dim / kVector : p.head_dim;
  for (int i = threadIdx.x; i < p.rows * per_row; i += kPassThreads) {
    const int row = i / per_row, c = i % per_row;
    int64_t x[3];
    if (!row_coords(p, t, row, x)) continue;
    const int64_t at = offset_of(p.dq, batch, x, head);
    if (vectors) {
      *reinterpret_cast<uint4*>(dq + at + c * kVector) =
          *reinterpret_cast<const uint4*>(tile_smem + row * pitch + c * kVector);
    } else {
      dq[at + c * p.dq.stride[5]] = tile_smem[row * pitch + c];
    }
  }
}

// One thread per (batch, kv head, additional key, element of D + Dv).
template <class T>
__global__ void __launch_bounds__(kPassThreads) extra_pass_kernel(const BackwardPassParams p) {
  const int width = p.head_dim + p.head_dim_v;
  const int64_t total = static_cast<int64_t>(p.batch) * p.kv_heads * p.extra_kv * width;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kPassThreads + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * kPassThreads) {
    const int col = static_cast<int>(i % width);
    const int64_t n = (i / width) % p.extra_kv;
    const int64_t hk = (i / width / p.extra_kv) % p.kv_heads;
    const int64_t b = i / width / p.extra_kv / p.kv_heads;
    const int64_t e = n / kBackwardKvTileTokens, row = n % kBackwardKvTileTokens;
    const int64_t first = ((b * p.kv_heads + hk) * p.extra_tiles + e) * p.extra_splits;
    float sum = 0.0f;
    for (int s = 0; s < p.extra_splits; ++s) {
      sum += p.extra[((first + s) * kBackwardKvTileTokens + row) * width + col];
    }
    const bool is_key = col < p.head_dim;
    const Strided& out = is_key ? p.dxk : p.dxv;
    const int64_t at = b * out.stride[0] + n * out.stride[1] + hk * out.stride[4] +
                       (is_key ? col : col - p.head_dim) * out.stride[5];
    static_cast<T*>(const_cast<void*>(out.data))[at] = from_float<T>(is_key ? sum * p.scale : sum);
  }
}

dim3 tile_grid(const BackwardPassParams& p) {
  return dim3(static_cast<unsigned>(p.q_tiles), static_cast<unsigned>(p.heads),
              static_cast<unsigned>(p.batch));
}

}  // namespace

void launch_backward_prepass(ElementType element, const BackwardPassParams& p, cudaStream_t stream) {
  if (element == ElementType::bf16) {
    prepass_kernel<__nv_bfloat16><<<tile_grid(p), kPassThreads, 0, stream>>>(p);
  } else {
    prepass_kernel<__half><<<tile_grid(p), kPassThreads, 0, stream>>>(p);
  }
  check_cuda(cudaGetLastError(), "backward prepass launch");
}

void launch_backward_dq_pass(ElementType element, const BackwardPassParams& p, cudaStream_t stream) {
  if (element == ElementType::bf16) {
    dq_pass_kernel<__nv_bfloat16><<<tile_grid(p), kPassThreads, 0, stream>>>(p);
  } else {
    dq_pass_kernel<__half><<<tile_grid(p), kPassThreads, 0, stream>>>(p);
  }
  check_cuda(cudaGetLastError(), "backward dq pass launch");
}

void launch_backward_extra_pass(ElementType element, const BackwardPassParams& p,
                                cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(p.batch) * p.kv_heads * p.extra_kv *
                        (p.head_dim + p.head_dim_v);
  if (total == 0) return;
  const unsigned blocks =
      static_cast<unsigned>(std::min<int64_t>((total + kPassThreads - 1) / kPassThreads, 65535));
  if (element == ElementType::bf16) {
    extra_pass_kernel<__nv_bfloat16><<<blocks, kPassThreads, 0, stream>>>(p);
  } else {
    extra_pass_kernel<__half><<<blocks, kPassThreads, 0, stream>>>(p);
  }
  check_cuda(cudaGetLastError(), "backward additional-KV pass launch");
}

}  // namespace gna::sm90
