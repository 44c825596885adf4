// Owning memory on the CPU or a CUDA device, for the command line and the
// tests (the library itself never allocates tensors for the caller).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "gna/tensor.hpp"

namespace gna::harness {

class Buffer {
 public:
  Buffer() = default;
  Buffer(Device device, std::size_t bytes);
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

  void upload(const void* host, std::size_t bytes);  // host -> this buffer
  void download(void* host, std::size_t bytes) const;  // this buffer -> host
  void fill_byte(unsigned char value);                 // poison / clear

 private:
  void release();
  Device device_{};
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// Wall-clock timer of device work: CUDA events on a device, steady clock on CPU.
class Timer {
 public:
  explicit Timer(Device device, void* stream = nullptr);
  ~Timer();
  void start();
  double stop_ms();  // waits for the device

 private:
  Device device_;
  void* stream_;
  void* begin_ = nullptr;
  void* end_ = nullptr;
  double host_begin_ = 0.0;
};

void synchronize(Device device);

// Name of CUDA device `index` with its compute capability, e.g.
// "NVIDIA H200 (sm_90)"; "cpu" for the CPU.
std::string device_description(Device device);

}  // namespace gna::harness
