#include "cuda/sm90/host.hpp"

#include <cuda_runtime.h>

#include <cmath>
#include <map>
#include <mutex>
#include <utility>

#include "core/check.hpp"
#include "cuda/sm90/tensor_maps.hpp"

namespace gna::sm90 {

using detail::concat;

namespace {

// An attribute of a device, read once (0 when the query fails; a failed
// query is asked again next time).
int device_attribute(int device, cudaDeviceAttr attribute) {
  static std::mutex mutex;
  static std::map<std::pair<int, int>, int> cached;
  std::lock_guard<std::mutex> lock(mutex);
  const std::pair<int, int> key{device, static_cast<int>(attribute)};
  const auto it = cached.find(key);
  if (it != cached.end()) return it->second;
  int value = 0;
  if (cudaDeviceGetAttribute(&value, attribute, device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  cached.emplace(key, value);
  return value;
}

}  // namespace

int compute_capability(int device) {
  return device_attribute(device, cudaDevAttrComputeCapabilityMajor) * 10 +
         device_attribute(device, cudaDevAttrComputeCapabilityMinor);
}

int multiprocessors(int device) { return device_attribute(device, cudaDevAttrMultiProcessorCount); }

bool has_memory_pools(int device) {
  return device_attribute(device, cudaDevAttrMemoryPoolsSupported) != 0;
}

std::string tma_operand_error(const char* name, const TensorView& t) {
  if (!t.defined()) return "";
  if (reinterpret_cast<uintptr_t>(t.data) % 16 != 0) {
    return concat(name, " must be 16-byte aligned for TMA");
  }
  if (t.stride[t.ndim - 1] != 1) return concat(name, " needs unit stride in the head dim");
  for (int i = 0; i + 1 < t.ndim; ++i) {
    // Stride 0 (a broadcast view) is fine on the batch axis, read through
    // one map per batch entry, but no map axis can have it.
    if (i > 0 && t.shape[i] > 1 && t.stride[i] == 0) {
      return concat(name, ".stride[", i, "] = 0 (a broadcast view): TMA cannot read it, pass a "
                    "contiguous copy");
    }
    if (t.shape[i] > 1 && t.stride[i] % 8 != 0) {
      return concat(name, ".stride[", i, "] = ", t.stride[i],
                    " must be a multiple of 8 elements (16 bytes) for TMA");
    }
  }
  return "";
}

std::string paired_store_error(const char* name, const TensorView& t) {
  if (!t.defined()) return "";
  if (reinterpret_cast<uintptr_t>(t.data) % 4 != 0) return concat(name, " must be 4-byte aligned");
  if (t.stride[t.ndim - 1] != 1) return concat(name, " needs unit stride in the head dim");
  for (int i = 0; i + 1 < t.ndim; ++i) {
    if (t.shape[i] > 1 && t.stride[i] % 2 != 0) {
      return concat(name, ".stride[", i, "] = ", t.stride[i], " must be even");
    }
  }
  return "";
}

int32_t split_log2(int64_t extent, int64_t dilation) {
  int32_t s = 0;
  while ((extent >> s) * dilation > 256) ++s;
  return s;
}

TileGrid tile_grid(const Problem& p, int64_t extent, int a) {
  TileGrid g;
  if (a >= p.rank()) return g;
  const int64_t d = p.params.axis[a].dilation;
  const int64_t big = (p.extent[a] + d - 1) / d;  // ceil(n / d) tokens
  const int64_t small = p.extent[a] / d;          // floor(n / d)
  g.big_groups = static_cast<int32_t>(p.extent[a] % d);
  g.tiles_big = static_cast<int32_t>((big + extent - 1) / extent);
  g.tiles_small = static_cast<int32_t>((small + extent - 1) / extent);
  g.tiles = static_cast<int32_t>(g.big_groups * g.tiles_big + (d - g.big_groups) * g.tiles_small);
  return g;
}

AxisGeometry axis_geometry(const Problem& p, const TileConfig& tiles, int a) {
  AxisGeometry g;
  if (a >= p.rank()) return g;  // a one-token axis
  const AxisParams& ap = p.params.axis[a];
  g.length = static_cast<int32_t>(p.extent[a]);
  g.kernel = static_cast<int32_t>(ap.kernel_size);
  g.stride = static_cast<int32_t>(ap.stride);
  g.dilation = static_cast<int32_t>(ap.dilation);
  g.causal = ap.is_causal ? 1 : 0;
  g.q_log2 = static_cast<int32_t>(std::log2(static_cast<double>(tiles.q_tile[a])));
  g.kv_log2 = static_cast<int32_t>(std::log2(static_cast<double>(tiles.kv_tile[a])));
  const TileGrid q = tile_grid(p, tiles.q_tile[a], a);
  g.big_groups = q.big_groups;
  g.tiles_big = q.tiles_big;
  g.tiles_small = q.tiles_small;
  g.tiles = q.tiles;
  return g;
}

CUtensorMap token_map(const Problem& p, const TensorView& t, int rank, const int64_t (&box)[3],
                      bool dilated, bool per_batch, int64_t batch, MapCoords* coords) {
  MapRequest m;
  m.tensor = &t;
  m.rank = rank;
  // Rows of the tensor's own head dim (V's may differ from Q's and K's).
  const int64_t head_dim = t.shape[t.ndim - 1];
  m.chunk = head_dim < 64 ? static_cast<int>(head_dim) : 64;
  m.swizzle = m.chunk == 64 ? Swizzle::b128 : Swizzle::b64;
  for (int a = 0; a < 3; ++a) {
    m.box[a] = box[a];
    m.dilation[a] = dilated && a < p.rank() ? p.params.axis[a].dilation : 1;
  }
  m.per_batch = per_batch;
  m.batch = batch;
  return encode_map(m, coords);
}

bool needs_per_batch_maps(const TensorView& t, int rank) {
  if (!t.defined()) return false;
  // A batch broadcast with stride 0 cannot be a map axis (TMA strides are
  // positive): one map per batch entry reads it.
  if (t.shape[0] > 1 && t.stride[0] == 0) return true;
  return !heads_merge(t, rank) && !batch_merges(t, rank);
}

void tile_boxes(const Problem& p, const TileConfig& t, int32_t q_split_log2, int32_t kv_split_log2,
                int64_t (&q_box)[3], int64_t (&kv_box)[3]) {
  for (int a = 0; a < 3; ++a) {
    q_box[a] = a < p.rank() ? t.q_tile[a] : 1;
    kv_box[a] = a < p.rank() ? t.kv_tile[a] : 1;
  }
  q_box[0] >>= q_split_log2;
  kv_box[0] >>= kv_split_log2;
}

DeviceGuard::DeviceGuard(int device) {
  cudaGetDevice(&previous_);
  if (previous_ != device) cudaSetDevice(device);
}

DeviceGuard::~DeviceGuard() { cudaSetDevice(previous_); }

}  // namespace gna::sm90
