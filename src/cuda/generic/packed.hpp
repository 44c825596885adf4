// Dense attention over packed variable-length sequences whose offsets live
// on the GPU (gna::DeviceOffsets): the entry points the core's
// attention_forward/backward call for them. Nothing here waits for the GPU;
// the offsets are checked by a kernel (packed_check.cu). The callers have
// checked the tensors (shapes, dtypes, strides, device) already.
#pragma once

#include "gna/attention.hpp"

namespace gna::cuda_generic {

void packed_forward(const DenseParams& params, double scale, const ForwardArgs& args,
                    const DeviceOffsets& offsets, const Options& options);
void packed_backward(const DenseParams& params, double scale, const BackwardArgs& args,
                     const DeviceOffsets& offsets, const Options& options);

// Why `offsets` cannot be read by kernels on `device` (empty: they can):
// null pointers, host memory, another GPU. No sync.
std::string cannot_read_offsets(const DeviceOffsets& offsets, Device device);

}  // namespace gna::cuda_generic
