// Host-side helpers of the sm90 backend shared by its forward (backend.cpp)
// and backward (backward_host.cpp): device queries, the tensor rules of TMA
// operands and paired stores, kernel geometry from a tile configuration, and
// the backward's launch order.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>

#include <cuda.h>

#include "cuda/sm90/backward_params.hpp"
#include "cuda/sm90/params.hpp"
#include "gna/attention.hpp"
#include "gna/problem.hpp"
#include "gna/tensor.hpp"
#include "gna/tiles.hpp"

namespace gna::sm90 {

// Compute capability as major * 10 + minor (0 when the query fails), cached.
int compute_capability(int device);

// Streaming multiprocessors of `device` (0 when the query fails), cached.
int multiprocessors(int device);

// Whether `device` has stream-ordered allocation (the backward's scratch), cached.
bool has_memory_pools(int device);

// Tests only: while set, every sm90 forward adds the KV tiles it visits
// (additional KV included) and masks to device_counts[0] and [1] (two zeroed device words);
// nullptr turns counting off.
void count_forward_tiles(unsigned long long* device_counts);

// Why `t` cannot be read by TMA ("" when it can): unit stride in the head
// dim, 16-byte aligned base and strides.
std::string tma_operand_error(const char* name, const TensorView& t);

// Why `t` cannot be written two elements at a time ("" when it can).
std::string paired_store_error(const char* name, const TensorView& t);

// Boxes along axis 0 (as a power of two) so that each spans <= 256 elements.
int32_t split_log2(int64_t extent, int64_t dilation);

// The backward's launch order for `p` with `tiles` (LaunchOrder in
// backward_params.hpp): per axis, the KV tile cells by decreasing number of
// query tiles that see them along the axis, ties in natural order; axes with
// more cells than their capacity keep the natural order. The backward uses
// it on launches of a few waves only.
LaunchOrder longest_walks_first(const Problem& p, const TileConfig& tiles);

// Window and tiling of kernel axis `a` (a one-token axis past the rank):
// query tiles of tiles.q_tile, KV tile extents of tiles.kv_tile.
AxisGeometry axis_geometry(const Problem& p, const TileConfig& tiles, int a);

// How tiles of `extent` positions number over the dilation groups of axis `a`.
TileGrid tile_grid(const Problem& p, int64_t extent, int a);

// The backward pass (backward_host.cpp): why it cannot run a problem or its
// tensors ("" when it can), and one call of it on a non-empty problem.
std::string backward_problem_error(const Problem& p);
std::string backward_tensor_error(const BackwardArgs& args);
void run_backward(const Problem& p, const BackwardArgs& args, const Options& options);

// The TMA map of a token tensor with `rank` spatial axes whose tiles are
// boxes of `box` tokens (axis 0 already divided into split boxes), walked
// with the problem's dilation when `dilated`; head-dim rows of 64 elements
// (32 for D = 32) in the matching swizzle. `per_batch`: the map covers batch
// element `batch` only.
CUtensorMap token_map(const Problem& p, const TensorView& t, int rank, const int64_t (&box)[3],
                      bool dilated, bool per_batch, int64_t batch, MapCoords* coords);

// One launch covers every batch when each operand's map can hold the batch
// (heads merged into the head-dim axis, or batch continuing the outermost
// spatial axis); otherwise one launch per batch element over offset maps.
bool needs_per_batch_maps(const TensorView& t, int rank);

// The boxes one query tile and one KV tile load: their extents per axis
// (one token past the rank), axis 0 divided into the 1 << split boxes.
void tile_boxes(const Problem& p, const TileConfig& t, int32_t q_split_log2, int32_t kv_split_log2,
                int64_t (&q_box)[3], int64_t (&kv_box)[3]);

// What tells problems apart for the tile choosers: the fields
// Problem::describe() lists (sizes, window, dtype; axes past the rank 0),
// as numbers, since every call looks its problem up (formatting the line
// cost microseconds of host time per call).
using ProblemKey = std::array<int64_t, 8 + 5 * kMaxSpatialRank>;

inline ProblemKey problem_key(const Problem& p) {
  ProblemKey key{};
  size_t i = 0;
  for (int64_t v : {int64_t{p.rank()}, p.batch, p.heads, p.kv_heads, p.head_dim, p.head_dim_v,
                    p.extra_kv, static_cast<int64_t>(p.dtype)}) {
    key[i++] = v;
  }
  for (int a = 0; a < p.rank(); ++a) {
    const AxisParams& ax = p.params.axis[a];
    for (int64_t v : {p.extent[a], ax.kernel_size, ax.stride, ax.dilation,
                      int64_t{ax.is_causal ? 1 : 0}}) {
      key[i++] = v;
    }
  }
  return key;
}

// `compute(p)`, remembered per problem: the tile choosers simulate every
// candidate (up to ~0.1 s for a large 3-D problem), and a model layer calls
// with the same problem again and again. Bounded for endless shape streams.
template <class Compute>
auto per_problem(const Problem& p, Compute compute) -> decltype(compute(p)) {
  using Value = decltype(compute(p));
  static std::mutex mutex;
  static std::map<ProblemKey, Value> cache;
  const ProblemKey key = problem_key(p);
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  const Value value = compute(p);
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.size() > 4096) cache.clear();
  cache.emplace(key, value);
  return value;
}

// Makes `device` current for the scope.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace gna::sm90
