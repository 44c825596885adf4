#include "gna/tensor.hpp"

#include "core/check.hpp"

namespace gna {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "float32";
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
    case DType::f64: return "float64";
  }
  return "unknown";
}

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::f16: return 2;
    case DType::bf16: return 2;
    case DType::f64: return 8;
  }
  return 0;
}

std::string device_name(Device device) {
  return device.type == DeviceType::cpu ? std::string("cpu")
                                        : detail::concat("cuda:", device.index);
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

TensorView TensorView::contiguous(void* data, DType dtype, int ndim, const int64_t* shape,
                                  Device device) {
  if (ndim < 1 || ndim > kMaxTensorDims) {
    detail::fail(ErrorKind::value, "ndim", ndim,
                 detail::concat("tensors have 1 to ", kMaxTensorDims, " dimensions"));
  }
  TensorView t;
  t.data = data;
  t.dtype = dtype;
  t.device = device;
  t.ndim = ndim;
  int64_t step = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    t.shape[i] = shape[i];
    t.stride[i] = step;
    step *= shape[i] > 0 ? shape[i] : 1;
  }
  return t;
}

TensorView TensorView::contiguous(void* data, DType dtype, std::initializer_list<int64_t> shape,
                                  Device device) {
  return contiguous(data, dtype, static_cast<int>(shape.size()), shape.begin(), device);
}

}  // namespace gna
