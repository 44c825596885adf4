// The launch template each backward instantiation file expands for one
// kernel config.
#pragma once

#include "cuda/sm90/backward_kernel.cuh"
#include "cuda/sm90/backward_launch.hpp"

namespace gna::sm90 {

template <class Config>
void launch_backward_config(const BackwardLaunch& launch) {
  static std::atomic<uint64_t> smem_raised{0};
  allow_shared_memory(backward_kernel<Config>, Config::kSmemBytes, smem_raised);
  backward_kernel<Config><<<launch.grid, Config::kThreads, Config::kSmemBytes, launch.stream>>>(
      launch.params, launch.maps);
  check_cuda(cudaGetLastError(), "backward kernel launch");
}

}  // namespace gna::sm90
