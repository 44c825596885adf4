// Host entry points of the packed kernels (one .cu file each).
#pragma once

#include <cuda_runtime.h>

#include "cuda/generic/packed_params.hpp"

namespace gna::cuda_generic {

// packed_check.cu: one block checks every offset rule (and the lengths
// against query_max / key_max when >= 0), writes *fatal (0 or 1) and, for
// a broken rule, records it in `status` (OffsetsStatus, optional) unless a
// problem is recorded there already. Runs first on the stream.
void launch_packed_check(const PackedShape& shape, int64_t query_max, int64_t key_max,
                         int32_t* fatal, int32_t* status, cudaStream_t stream);

// packed_forward.cu: O and LSE, one warp per query row (token, head).
void launch_packed_forward(const PackedForwardParams& params, DType dtype, cudaStream_t stream);

// packed_backward.cu: delta and dQ per query row, then dK and dV per key
// row over the queries that see the key (each row has one writer).
void launch_packed_backward(const PackedBackwardParams& params, DType dtype, cudaStream_t stream);

}  // namespace gna::cuda_generic
