// The launch template each backward instantiation file expands for one
// kernel config.
#pragma once

#include "cuda/sm90/backward_kernel.cuh"
#include "cuda/sm90/backward_launch.hpp"

namespace gna::sm90 {

template <class Config>
void launch_backward_config(const BackwardLaunch& launch) {
  check_cuda(cudaFuncSetAttribute(backward_kernel<Config>,
                                  cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  Config::kSmemBytes),
             "cudaFuncSetAttribute");
  backward_kernel<Config><<<launch.grid, Config::kThreads, Config::kSmemBytes, launch.stream>>>(
      launch.params, launch.maps);
  check_cuda(cudaGetLastError(), "backward kernel launch");
}

}  // namespace gna::sm90
