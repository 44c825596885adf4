// Host-side CUDA plumbing of cuda-generic: every failing runtime call becomes
// a gna::Error of kind runtime, the caller's current device is restored, and
// scratch memory lives on the caller's stream.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "core/check.hpp"

namespace gna::cuda_generic {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw Error(ErrorKind::runtime, "cuda-generic",
                detail::concat("backend cuda-generic: ", what, " failed: ",
                               cudaGetErrorName(status), " (", cudaGetErrorString(status), ")"));
  }
}

// A launch reports bad configurations at once and faults only later; this
// catches the former (the latter surface at the caller's next sync).
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// Makes the tensors' device current for the scope, so that a caller whose
// current device differs still launches on the right GPU.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceGuard() {
    int now = previous_;
    if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

// Scratch memory ordered on one stream: allocated and freed with the stream's
// work, so the host never waits for it (also valid inside graph capture).
class StreamBuffer {
 public:
  StreamBuffer(std::size_t bytes, cudaStream_t stream) : stream_(stream) {
    if (bytes > 0) check(cudaMallocAsync(&data_, bytes, stream), "cudaMallocAsync");
  }
  ~StreamBuffer() {
    if (data_ != nullptr) cudaFreeAsync(data_, stream_);
  }
  StreamBuffer(const StreamBuffer&) = delete;
  StreamBuffer& operator=(const StreamBuffer&) = delete;

  template <typename T>
  T* get() const {
    return static_cast<T*>(data_);
  }

 private:
  void* data_ = nullptr;
  cudaStream_t stream_;
};

}  // namespace gna::cuda_generic
