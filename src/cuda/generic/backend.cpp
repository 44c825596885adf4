// The generic CUDA backend: plain warp-per-row kernels for every NVIDIA GPU
// from sm_80 on, every dtype but float64, any head dims. It is the fast GPU
// oracle for the fused kernels and the fallback where they cannot run.
#include "core/backend.hpp"

#include <cuda_runtime.h>

#include "core/check.hpp"
#include "cuda/generic/cuda_check.hpp"
#include "cuda/generic/launch.hpp"

namespace gna {

int cuda_device_count() {
  int count = 0;
  // No driver or no device is an answer (0), not an error.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

namespace cuda_generic {
namespace {

using detail::concat;

class GenericBackend final : public detail::Backend {
 public:
  const char* name() const override { return "cuda-generic"; }

  std::string cannot_run(const Problem& problem, Pass pass, Device device) const override {
    if (device.type != DeviceType::cuda) {
      return concat("tensors are on ", device_name(device), "; cuda-generic runs on CUDA tensors");
    }
    if (problem.dtype == DType::f64) {
      return "float64 is not supported (kernels accumulate in fp32); use float32, float16 or "
             "bfloat16, or the reference backend for float64";
    }
    const int count = cuda_device_count();
    if (count == 0) return "no CUDA device visible";
    if (device.index < 0 || device.index >= count) {
      return concat(device_name(device), " does not exist (", count, " CUDA device",
                    count == 1 ? "" : "s", " visible)");
    }
    int major = 0, minor = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device.index) !=
            cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device.index) !=
            cudaSuccess) {
      const cudaError_t error = cudaGetLastError();
      return concat("cannot query ", device_name(device), ": ", cudaGetErrorString(error));
    }
    if (major < 8) {
      return concat(device_name(device), " is sm_", major, minor,
                    "; cuda-generic needs compute capability 8.0 (sm_80) or newer");
    }
    // The backward's scratch memory (delta, partial sums) is stream-ordered.
    int pools = 0;
    if (pass == Pass::backward &&
        (cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device.index) !=
             cudaSuccess ||
         pools == 0)) {
      cudaGetLastError();
      return concat(device_name(device),
                    " has no stream-ordered allocator (cudaMallocAsync), which the backward "
                    "pass of cuda-generic needs for scratch memory");
    }
    return "";
  }

  void forward(const Problem& problem, const ForwardArgs& args,
               const Options& options) const override {
    DeviceGuard guard(args.query.device.index);
    launch_forward(forward_params(problem, args), problem.dtype,
                   static_cast<cudaStream_t>(options.stream));
  }

  void backward(const Problem& problem, const BackwardArgs& args,
                const Options& options) const override {
    DeviceGuard guard(args.query.device.index);
    launch_backward(backward_params(problem, args), problem.dtype,
                    static_cast<cudaStream_t>(options.stream));
  }
};

}  // namespace
}  // namespace cuda_generic

namespace detail {
const Backend* cuda_generic_backend() {
  static const cuda_generic::GenericBackend backend;
  return &backend;
}
}  // namespace detail

}  // namespace gna
