// The launch template each instantiation file expands for one kernel config.
#pragma once

#include "cuda/sm90/forward_kernel.cuh"
#include "cuda/sm90/launch.hpp"

namespace gna::sm90 {

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
