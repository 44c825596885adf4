// The launch template each instantiation file expands for one kernel config.
#pragma once

#include <string>

#include "cuda/sm90/forward_kernel.cuh"
#include "cuda/sm90/launch.hpp"
#include "gna/error.hpp"

namespace gna::sm90 {

inline void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw Error(ErrorKind::runtime, "sm90",
                std::string("sm90: ") + what + ": " + cudaGetErrorString(status));
  }
}

template <class Config>
void launch_config(const Launch& launch) {
  // Raising the dynamic shared memory limit is per device, and cheap.
  check_cuda(cudaFuncSetAttribute(forward_kernel<Config>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  Config::kSmemBytes),
             "cudaFuncSetAttribute");
  forward_kernel<Config><<<launch.grid, Config::kThreads, Config::kSmemBytes, launch.stream>>>(
      launch.params, launch.maps);
  check_cuda(cudaGetLastError(), "kernel launch");
}

}  // namespace gna::sm90
