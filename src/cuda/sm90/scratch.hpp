// Scratch memory of the sm90 backward (LSE and delta rows, the fp32 dQ
// accumulator, partial sums), ordered on the caller's stream: allocated and
// freed with the stream's work, so the host never waits (graph capture
// included). It comes from a memory pool of gna's own per device that keeps
// what it once held (release threshold: unlimited), so that a training loop
// does not map and unmap a gigabyte per step; the pool holds at most what
// the largest concurrent backward calls needed.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace gna::sm90 {

class Scratch {
 public:
  Scratch(std::size_t bytes, int device, cudaStream_t stream);
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  // The next `bytes` of the buffer, 256-byte aligned (carving in order).
  void* take(std::size_t bytes);

 private:
  char* data_ = nullptr;
  std::size_t size_ = 0, used_ = 0;
  cudaStream_t stream_;
};

}  // namespace gna::sm90
