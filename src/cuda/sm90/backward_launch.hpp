// Host-side interface between the sm90 backward (backward_host.cpp) and its
// kernels: the main kernel (one instantiation per element type and head dim,
// backward_<type>_d<dim>.cu) and the passes around it (backward_passes.cu).
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include "cuda/sm90/backward_params.hpp"
#include "cuda/sm90/launch.hpp"

namespace gna::sm90 {

// Passed to the main kernel by value as a __grid_constant__ parameter.
struct BackwardMaps {
  CUtensorMap q, dout, k, v, extra_k, extra_v;
};

struct BackwardLaunch {
  BackwardParams params;
  BackwardMaps maps;
  dim3 grid;
  cudaStream_t stream = nullptr;
};

// Each throws gna::Error (runtime) when CUDA reports a failure.
void launch_backward_kernel(ElementType element, int head_dim, const BackwardLaunch& launch);
// lse2, delta, zeroed dQ scratch (and turn counters) per query tile.
void launch_backward_prepass(ElementType element, const BackwardPassParams& p, cudaStream_t stream);
// dQ = scale * scratch, into the caller's layout.
void launch_backward_dq_pass(ElementType element, const BackwardPassParams& p, cudaStream_t stream);
// Additional-KV gradients: the splits' partial sums added in order.
void launch_backward_extra_pass(ElementType element, const BackwardPassParams& p,
                                cudaStream_t stream);

}  // namespace gna::sm90
