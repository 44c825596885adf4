#include "tensor_view.hpp"

#include <string>

#include "gna/error.hpp"

namespace gna::python {
namespace {

namespace dl = nanobind::dlpack;

std::string describe(dl::dtype t) {
  const char* kind = "unknown";
  switch (static_cast<dl::dtype_code>(t.code)) {
    case dl::dtype_code::Int: kind = "int"; break;
    case dl::dtype_code::UInt: kind = "uint"; break;
    case dl::dtype_code::Float: kind = "float"; break;
    case dl::dtype_code::Bfloat: kind = "bfloat"; break;
    case dl::dtype_code::Complex: kind = "complex"; break;
    case dl::dtype_code::Bool: return "bool";
  }
  return kind + std::to_string(t.bits) + (t.lanes > 1 ? "x" + std::to_string(t.lanes) : "");
}

DType dtype_of(dl::dtype t, const char* name_c) {
  const auto code = static_cast<dl::dtype_code>(t.code);
  if (t.lanes == 1 && code == dl::dtype_code::Float) {
    if (t.bits == 16) return DType::f16;
    if (t.bits == 32) return DType::f32;
    if (t.bits == 64) return DType::f64;
  }
  if (t.lanes == 1 && code == dl::dtype_code::Bfloat && t.bits == 16) return DType::bf16;
  const std::string name = name_c;
  throw Error(ErrorKind::type, name + ".dtype",
              name + ".dtype = " + describe(t) +
                  ": expected float16, bfloat16, float32 or float64");
}

// DLPack device types: 1 = CPU, 2 = CUDA device memory, 3 = pinned host
// memory (plain CPU memory to the CPU backend).
Device device_of(int type, int id, const char* name_c) {
  if (type == 1 || type == 3) return Device{DeviceType::cpu, 0};
  if (type == 2) return Device{DeviceType::cuda, id};
  const std::string name = name_c;
  throw Error(ErrorKind::type, name + ".device",
              name + ".device = DLPack device type " + std::to_string(type) +
                  ": gna reads CPU and CUDA device memory only");
}

template <typename Array>
TensorView convert(const Array& a, const char* name_c) {
  TensorView t;
  if (!a.is_valid()) return t;
  const int ndim = static_cast<int>(a.ndim());
  // ndim 0 would read as "not given"; more than kMaxTensorDims does not fit.
  // The name becomes a std::string for messages only (every call converts
  // every tensor).
  if (ndim < 1 || ndim > kMaxTensorDims) {
    const std::string name = name_c;
    throw Error(ErrorKind::type, name + ".ndim",
                name + ".ndim = " + std::to_string(ndim) + ": expected 4 to " +
                    std::to_string(kMaxTensorDims) +
                    " dimensions [batch, spatial..., heads, head_dim]");
  }
  t.dtype = dtype_of(a.dtype(), name_c);
  t.device = device_of(a.device_type(), a.device_id(), name_c);
  t.ndim = ndim;
  // DLPack strides count elements, as TensorView's do (nanobind fills them
  // in for row-major arrays that come without strides).
  for (int i = 0; i < ndim; ++i) {
    t.shape[i] = a.shape_ptr()[i];
    t.stride[i] = a.stride(i);
  }
  t.data = const_cast<void*>(static_cast<const void*>(a.data()));
  return t;
}

}  // namespace

TensorView view_of(const InArray& array, const char* name) { return convert(array, name); }
TensorView view_of(const OutArray& array, const char* name) { return convert(array, name); }

}  // namespace gna::python
