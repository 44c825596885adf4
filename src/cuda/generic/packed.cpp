// Host side of packed variable-length attention on device offsets: kernel
// parameters from the caller's views, the offsets check first on the
// stream, then the forward or the two backward passes. No sync anywhere.
#include "cuda/generic/packed.hpp"

#include <cuda_runtime.h>

#include "core/check.hpp"
#include "cuda/generic/cuda_check.hpp"
#include "cuda/generic/packed_launch.hpp"

namespace gna::cuda_generic {
namespace {

using detail::concat;

PackedShape packed_shape(const DenseParams& params, double scale, const TensorView& q,
                         const TensorView& k, const TensorView& v, const DeviceOffsets& d) {
  PackedShape s;
  s.q_tokens = q.shape[1];
  s.k_tokens = k.shape[1];
  s.heads = q.shape[2];
  s.kv_heads = k.shape[2];
  s.group = s.kv_heads > 0 ? s.heads / s.kv_heads : 1;
  s.head_dim = q.shape[3];
  s.head_dim_v = v.shape[3];
  s.scale = static_cast<float>(scale);
  s.causal = params.is_causal;
  s.q_offsets = d.query;
  s.k_offsets = d.key;
  s.sequences = d.sequences;
  return s;
}

// The offsets check's verdict, one int32 written by the check kernel.
struct Verdict {
  StreamBuffer fatal;
  Verdict(const PackedShape& s, const DeviceOffsets& d, cudaStream_t stream)
      : fatal(sizeof(int32_t), stream) {
    launch_packed_check(s, d.query_max, d.key_max, fatal.get<int32_t>(), d.status, stream);
  }
};

// The fields the forward and the backward share: shape, Q, K, V, O, LSE.
void fill_forward_fields(PackedForwardParams& p, const DenseParams& params, double scale,
                         const TensorView& query, const TensorView& key, const TensorView& value,
                         const TensorView& output, const TensorView& lse, const DeviceOffsets& d) {
  p.shape = packed_shape(params, scale, query, key, value, d);
  p.q = spatial_rows(query, 1);
  p.k = spatial_rows(key, 1);
  p.v = spatial_rows(value, 1);
  p.o = spatial_rows(output, 1);
  p.lse = spatial_rows(lse, 1);
}


}  // namespace

std::string cannot_read_offsets(const DeviceOffsets& offsets, Device device) {
  for (const auto& [name, ptr] : {std::pair{"cumulative_seqlen_Q", offsets.query},
                                  std::pair{"cumulative_seqlen_KV", offsets.key}}) {
    if (ptr == nullptr) return concat(name, " is missing: pass both device offsets");
    cudaPointerAttributes attributes{};
    if (cudaPointerGetAttributes(&attributes, ptr) != cudaSuccess) {
      cudaGetLastError();
      return concat(name, " is not CUDA memory");
    }
    const bool on_gpu = attributes.type == cudaMemoryTypeDevice ||
                        attributes.type == cudaMemoryTypeManaged;
    if (!on_gpu || attributes.device != device.index) {
      return concat(name, " is not memory of ", device_name(device),
                    " (the device offsets must live on the tensors' GPU)");
    }
  }
  return "";
}

void packed_forward(const DenseParams& params, double scale, const ForwardArgs& a,
                    const DeviceOffsets& d, const Options& options) {
  DeviceGuard guard(a.query.device.index);
  const auto stream = static_cast<cudaStream_t>(options.stream);
  PackedForwardParams p;
  fill_forward_fields(p, params, scale, a.query, a.key, a.value, a.output, a.lse, d);
  const Verdict verdict(p.shape, d, stream);
  p.fatal = verdict.fatal.get<int32_t>();
  launch_packed_forward(p, a.query.dtype, stream);
}

void packed_backward(const DenseParams& params, double scale, const BackwardArgs& a,
                     const DeviceOffsets& d, const Options& options) {
  DeviceGuard guard(a.query.device.index);
  const auto stream = static_cast<cudaStream_t>(options.stream);
  PackedBackwardParams p;
  fill_forward_fields(p, params, scale, a.query, a.key, a.value, a.output, a.lse, d);
  p.dout = spatial_rows(a.grad_output, 1);
  p.dlse = spatial_rows(a.grad_lse, 1);
  p.dq = spatial_rows(a.grad_query, 1);
  p.dk = spatial_rows(a.grad_key, 1);
  p.dv = spatial_rows(a.grad_value, 1);
  const Verdict verdict(p.shape, d, stream);
  p.fatal = verdict.fatal.get<int32_t>();
  launch_packed_backward(p, a.query.dtype, stream);
}

}  // namespace gna::cuda_generic
