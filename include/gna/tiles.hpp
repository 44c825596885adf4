// A tile configuration of a fused kernel: the box of query tokens one CTA
// owns, the box of key tokens it loads per step, and where KV boxes start.
// The simulator scores these; the sm90 backend runs them.
#pragma once

#include <cstdint>
#include <string>

#include "gna/tensor.hpp"

namespace gna {

enum class KvTiling : uint8_t {
  fixed_grid,    // "static": KV boxes lie on a grid anchored at 0
  window_start,  // "dynamic": KV boxes start at each query tile's window start
};

struct TileConfig {
  int rank = 1;
  int64_t q_tile[kMaxSpatialRank] = {1, 1, 1};
  int64_t kv_tile[kMaxSpatialRank] = {1, 1, 1};
  KvTiling kv_tiling = KvTiling::window_start;

  int64_t q_tokens() const;   // product of q_tile over the rank
  int64_t kv_tokens() const;  // product of kv_tile over the rank
  std::string describe() const;  // "q 2x8x8 kv 2x8x8 dynamic"
};

const char* kv_tiling_name(KvTiling tiling);  // "static" / "dynamic"

}  // namespace gna
