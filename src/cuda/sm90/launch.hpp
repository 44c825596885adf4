// Host-side interface between the sm90 backend and its kernel
// instantiations (one tiny .cu file per element type and head dim).
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
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

// Raises `kernel`'s dynamic shared memory limit to `bytes` on the current
// device, once per device: the setting persists, and a call costs a few
// microseconds on every launch otherwise. `done` is the kernel's own flag
// word (bit d: device d done; devices past 63 ask every time).
template <class Kernel>
void allow_shared_memory(Kernel kernel, int bytes, std::atomic<uint64_t>& done) {
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  const uint64_t bit = device < 64 ? uint64_t{1} << device : 0;
  if (bit != 0 && (done.load(std::memory_order_acquire) & bit) != 0) return;
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
             "cudaFuncSetAttribute");
  done.fetch_or(bit, std::memory_order_release);
}

// Launches the forward kernel for (element, head_dim, head_dim_v); throws
// gna::Error (runtime) when CUDA reports a failure.
void launch_forward(ElementType element, int head_dim, int head_dim_v, const Launch& launch);

}  // namespace gna::sm90
