// Host-side interface between the sm90 backend and its kernel
// instantiations (one tiny .cu file per element type and head dim).
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <string>

#include "cuda/sm90/config.hpp"
#include "cuda/sm90/params.hpp"
#include "gna/error.hpp"

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

// Every CUDA failure of the backend becomes a gna::Error of kind runtime.
inline void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw Error(ErrorKind::runtime, "sm90",
                std::string("sm90: ") + what + ": " + cudaGetErrorString(status));
  }
}

// Launches the forward kernel for (element, head_dim); throws gna::Error
// (runtime) when CUDA reports a failure.
void launch_forward(ElementType element, int head_dim, const Launch& launch);

}  // namespace gna::sm90
