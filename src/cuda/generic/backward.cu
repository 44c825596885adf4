// The backward pass of cuda-generic: three passes in stream order, sharing
// delta (one fp32 per query row) through stream-ordered scratch memory.
#include "cuda/generic/cuda_check.hpp"
#include "cuda/generic/launch.hpp"

namespace gna::cuda_generic {

void launch_backward(const BackwardParams& params, DType dtype, cudaStream_t stream) {
  const Shape& s = params.shape;
  const int64_t query_rows = s.batch * s.tokens * s.heads;
  StreamBuffer delta(static_cast<size_t>(query_rows) * sizeof(float), stream);
  launch_query_pass(params, dtype, delta.get<float>(), stream);
  launch_key_pass(params, dtype, delta.get<float>(), stream);
  if (s.extra_kv > 0) launch_extra_pass(params, dtype, delta.get<float>(), stream);
}

}  // namespace gna::cuda_generic
