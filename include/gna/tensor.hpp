// Tensor views: non-owning pointers with explicit shapes and element strides,
// so callers hand us their own memory (non-contiguous too) without copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace gna {

enum class DType : uint8_t { f32, f16, bf16, f64 };

const char* dtype_name(DType dtype);
std::size_t dtype_size(DType dtype);

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

std::string device_name(Device device);

// Batch, up to three spatial axes, heads, head dim.
constexpr int kMaxSpatialRank = 3;
constexpr int kMaxTensorDims = kMaxSpatialRank + 3;

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::f32;
  Device device{};
  int ndim = 0;  // 0 means "not given" for optional tensors
  int64_t shape[kMaxTensorDims] = {};
  int64_t stride[kMaxTensorDims] = {};  // in elements, may be any non-negative value

  bool defined() const { return ndim > 0; }
  int64_t numel() const;

  // A row-major (contiguous) view of `data`.
  static TensorView contiguous(void* data, DType dtype, std::initializer_list<int64_t> shape,
                               Device device = {});
  static TensorView contiguous(void* data, DType dtype, int ndim, const int64_t* shape,
                               Device device = {});
};

}  // namespace gna
