// The launch template each instantiation file expands for one kernel config.
#pragma once

#include "cuda/sm90/forward_kernel.cuh"
#include "cuda/sm90/launch.hpp"

namespace gna::sm90 {

template <class Config>
void launch_config(const Launch& launch) {
  static std::atomic<uint64_t> smem_raised{0};
  allow_shared_memory(forward_kernel<Config>, Config::kSmemBytes, smem_raised);
  forward_kernel<Config><<<launch.grid, Config::kThreads, Config::kSmemBytes, launch.stream>>>(
      launch.params, launch.maps);
  check_cuda(cudaGetLastError(), "kernel launch");
}

}  // namespace gna::sm90
