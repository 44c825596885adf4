#include "harness/buffer.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gna/error.hpp"

#if GNA_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace gna::harness {
namespace {

#if GNA_WITH_CUDA
void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw Error(ErrorKind::runtime, what, std::string(what) + ": " + cudaGetErrorString(status));
  }
}
#endif

[[noreturn]] void no_cuda() {
  throw Error(ErrorKind::type, "device", "device = cuda: this build has no CUDA support");
}

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

}  // namespace

Buffer::Buffer(Device device, std::size_t bytes) : device_(device), bytes_(bytes) {
  if (bytes == 0) return;
  if (device.type == DeviceType::cpu) {
    data_ = std::malloc(bytes);
    if (!data_) {
      throw Error(ErrorKind::runtime, "malloc",
                  "out of host memory: " + std::to_string(bytes) + " bytes asked");
    }
    return;
  }
#if GNA_WITH_CUDA
  check(cudaSetDevice(device.index), "cudaSetDevice");
  const cudaError_t status = cudaMalloc(&data_, bytes);
  if (status != cudaSuccess) {
    throw Error(ErrorKind::runtime, "cudaMalloc",
                "cudaMalloc of " + std::to_string(bytes) + " bytes: " + cudaGetErrorString(status));
  }
#else
  no_cuda();
#endif
}

void Buffer::release() {
  if (!data_) return;
  if (device_.type == DeviceType::cpu) {
    std::free(data_);
  } else {
#if GNA_WITH_CUDA
    cudaFree(data_);
#endif
  }
  data_ = nullptr;
}

Buffer::~Buffer() { release(); }

Buffer::Buffer(Buffer&& other) noexcept
    : device_(other.device_), data_(other.data_), bytes_(other.bytes_) {
  other.data_ = nullptr;
  other.bytes_ = 0;
}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    device_ = other.device_;
    data_ = other.data_;
    bytes_ = other.bytes_;
    other.data_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

void Buffer::upload(const void* host, std::size_t bytes) {
  if (bytes == 0) return;
  if (device_.type == DeviceType::cpu) {
    std::memcpy(data_, host, bytes);
    return;
  }
#if GNA_WITH_CUDA
  check(cudaMemcpy(data_, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
#else
  no_cuda();
#endif
}

void Buffer::download(void* host, std::size_t bytes) const {
  if (bytes == 0) return;
  if (device_.type == DeviceType::cpu) {
    std::memcpy(host, data_, bytes);
    return;
  }
#if GNA_WITH_CUDA
  check(cudaMemcpy(host, data_, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
#else
  no_cuda();
#endif
}

void Buffer::fill_byte(unsigned char value) {
  if (bytes_ == 0) return;
  if (device_.type == DeviceType::cpu) {
    std::memset(data_, value, bytes_);
    return;
  }
#if GNA_WITH_CUDA
  check(cudaMemset(data_, value, bytes_), "cudaMemset");
#else
  no_cuda();
#endif
}

Timer::Timer(Device device, void* stream) : device_(device), stream_(stream) {
  if (device.type == DeviceType::cpu) return;
#if GNA_WITH_CUDA
  cudaEvent_t b, e;
  check(cudaEventCreate(&b), "cudaEventCreate");
  check(cudaEventCreate(&e), "cudaEventCreate");
  begin_ = b;
  end_ = e;
#else
  no_cuda();
#endif
}

Timer::~Timer() {
#if GNA_WITH_CUDA
  if (begin_) cudaEventDestroy(static_cast<cudaEvent_t>(begin_));
  if (end_) cudaEventDestroy(static_cast<cudaEvent_t>(end_));
#endif
}

void Timer::start() {
  if (device_.type == DeviceType::cpu) {
    host_begin_ = now_ms();
    return;
  }
#if GNA_WITH_CUDA
  check(cudaEventRecord(static_cast<cudaEvent_t>(begin_), static_cast<cudaStream_t>(stream_)),
        "cudaEventRecord");
#endif
}

double Timer::stop_ms() {
  if (device_.type == DeviceType::cpu) return now_ms() - host_begin_;
#if GNA_WITH_CUDA
  auto end = static_cast<cudaEvent_t>(end_);
  check(cudaEventRecord(end, static_cast<cudaStream_t>(stream_)), "cudaEventRecord");
  check(cudaEventSynchronize(end), "cudaEventSynchronize");
  float ms = 0.0f;
  check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(begin_), end), "cudaEventElapsedTime");
  return ms;
#else
  return 0.0;
#endif
}

void synchronize(Device device) {
  if (device.type == DeviceType::cpu) return;
#if GNA_WITH_CUDA
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
#endif
}

std::string device_description(Device device) {
  if (device.type == DeviceType::cpu) return "cpu";
#if GNA_WITH_CUDA
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device.index), "cudaGetDeviceProperties");
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major * 10 + prop.minor) + ")";
#else
  no_cuda();
#endif
}

}  // namespace gna::harness
