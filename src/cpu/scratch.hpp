// Per-thread working memory of the cpu backend's passes: SIMD-aligned
// floats that grow to the largest size asked for and are then kept, so a
// steady stream of calls allocates nothing.
#pragma once

#include <hwy/aligned_allocator.h>

#include <cstddef>

namespace gna::cpu {

class AlignedFloats {
 public:
  float* reserve(size_t count) {
    if (count > size_) {
      data_ = hwy::AllocateAligned<float>(count);
      size_ = count;
    }
    return data_.get();
  }

 private:
  hwy::AlignedFreeUniquePtr<float[]> data_;
  size_t size_ = 0;
};

}  // namespace gna::cpu
