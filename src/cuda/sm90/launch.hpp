// Host-side interface between the sm90 backend and its kernel
// instantiations (one tiny .cu file per element type and head dim).
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include "cuda/sm90/params.hpp"

namespace gna::sm90 {

// Passed to the kernel by value as a __grid_constant__ parameter.
struct TensorMaps {
  CUtensorMap q, k, v, extra_k, extra_v;
};

struct Launch {
  ForwardParams params;
  TensorMaps maps;
  dim3 grid;
  cudaStream_t stream = nullptr;
};

enum class ElementType { f16, bf16 };

// Launches the forward kernel for (element, head_dim); throws gna::Error
// (runtime) when CUDA reports a failure.
void launch_forward(ElementType element, int head_dim, const Launch& launch);

// Keys per KV tile of the kernel for this head dim (queries per tile: 128).
constexpr int kQueryTileTokens = 128;
constexpr int kv_tile_tokens(int head_dim) { return head_dim <= 128 ? 128 : 64; }

}  // namespace gna::sm90
