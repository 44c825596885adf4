#include "cuda/sm90/scratch.hpp"

#include <cstdint>
#include <mutex>

#include "core/check.hpp"
#include "cuda/sm90/launch.hpp"

namespace gna::sm90 {
namespace {

cudaMemPool_t pool_of(int device) {
  static std::mutex mutex;
  static cudaMemPool_t pools[64] = {};
  std::lock_guard<std::mutex> lock(mutex);
  if (device < 0 || device >= 64) {
    throw Error(ErrorKind::runtime, "sm90", detail::concat("sm90: CUDA device ", device, " out of range"));
  }
  if (pools[device] == nullptr) {
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = device;
    check_cuda(cudaMemPoolCreate(&pools[device], &props), "cudaMemPoolCreate");
    uint64_t keep = UINT64_MAX;
    check_cuda(cudaMemPoolSetAttribute(pools[device], cudaMemPoolAttrReleaseThreshold, &keep),
               "cudaMemPoolSetAttribute");
  }
  return pools[device];
}

std::size_t aligned(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace

Scratch::Scratch(std::size_t bytes, int device, cudaStream_t stream) : stream_(stream) {
  size_ = aligned(bytes);
  if (size_ == 0) return;
  void* p = nullptr;
  check_cuda(cudaMallocFromPoolAsync(&p, size_, pool_of(device), stream), "scratch allocation");
  data_ = static_cast<char*>(p);
}

Scratch::~Scratch() {
  if (data_ != nullptr) cudaFreeAsync(data_, stream_);
}

void* Scratch::take(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  const std::size_t n = aligned(bytes);
  if (used_ + n > size_) throw Error(ErrorKind::runtime, "sm90", "sm90: internal: scratch carved past its size");
  void* p = data_ + used_;
  used_ += n;
  return p;
}

}  // namespace gna::sm90
