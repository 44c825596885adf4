// Host entry points of the generic kernels (one .cu file per pass).
#pragma once

#include <cuda_runtime.h>

#include "cuda/generic/params.hpp"

namespace gna::cuda_generic {

// O and LSE (forward.cu).
void launch_forward(const ForwardParams& params, DType dtype, cudaStream_t stream);

// The backward pass (backward.cu) runs three passes, each writing only the
// rows it owns, so no atomics are needed:
void launch_backward(const BackwardParams& params, DType dtype, cudaStream_t stream);

// 1. per query row: delta = dO . O - dLSE into `delta` ([B, T, H] fp32), and dQ;
void launch_query_pass(const BackwardParams& params, DType dtype, float* delta,
                       cudaStream_t stream);
// 2. per key row: dK, dV over the queries that see the key;
void launch_key_pass(const BackwardParams& params, DType dtype, const float* delta,
                     cudaStream_t stream);
// 3. per additional key: dK, dV over all queries, split and summed in a
//    fixed order (deterministic).
void launch_extra_pass(const BackwardParams& params, DType dtype, const float* delta,
                       cudaStream_t stream);

}  // namespace gna::cuda_generic
