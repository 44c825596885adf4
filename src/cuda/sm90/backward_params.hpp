// Parameters of the fused Hopper backward: its main kernel and the two small
// passes around it. Filled on the host (backward_host.cpp), read on the
// device. Plain data only.
//
// Scratch memory, indexed by query tile "row blocks" rb = (b * heads + h) *
// q_tiles + query tile (the forward's query tile numbering, with the
// backward's query tile extents):
//   lse2   [rb][M]       LSE * log2(e); +inf on padded rows, so they add nothing
//   delta  [rb][M]       dO . O - dLSE; 0 on padded rows
//   dq     [rb][2][64 * kDqCols] fp32, one piece per consumer warpgroup, in
//                        the order the warpgroups stage them (backward_kernel.cuh)
//   order  [rb][2]       deterministic mode: contributions added so far, per piece
//   extra  [b][kv head][extra tile][split][128][D + Dv] fp32 partial dK (unscaled)
//                        and dV of the additional keys, summed in split order
#pragma once

#include <cstdint>

#include "cuda/sm90/params.hpp"

namespace gna::sm90 {

// Launch order of the neighborhood CTAs outside deterministic mode: per
// axis, the KV tile cells by decreasing number of query tiles that see them
// along that axis, so that the longest walks start first and the short ones
// fill the tail. Walks near a border are up to ~1.5x longer than inside
// (windows clamped at the border all reach the keys just inside it); on a
// problem of few waves (a long sequence with one head) a long walk left for
// the last wave would set the kernel's time. An axis with more cells than
// its capacity keeps its natural order (the capacities keep the kernel's
// parameters under 4 KB).
struct LaunchOrder {
  static constexpr int kOuterCells = 1024, kInnerCells = 128;
  int32_t ordered_axes = 0;  // bit a: axis a has an order
  int16_t outer[kOuterCells] = {};     // axis 0: launch position -> tile cell
  int16_t inner[2][kInnerCells] = {};  // axes 1 and 2

  static GNA_HD int capacity(int a) { return a == 0 ? kOuterCells : kInnerCells; }
  GNA_HD int16_t* cells(int a) { return a == 0 ? outer : inner[a - 1]; }
  GNA_HD int32_t cell(int a, int32_t position) const {
    return a == 0 ? outer[position] : inner[a - 1][position];
  }
};

struct BackwardParams {
  AxisGeometry axis[3];  // window; q_log2 / tiles: backward query tiles; kv_log2: KV tiles
  TileGrid kv_grid[3];   // KV tiles of each axis
  LaunchOrder order_of_cells;  // outside deterministic mode
  int32_t kv_tiles = 1;  // neighborhood CTAs per (batch, kv head)
  int32_t q_tiles = 1;   // query tiles per (batch, head)
  int32_t heads = 1;
  int32_t group = 1;     // query heads per kv head
  int32_t extra_kv = 0;
  int32_t extra_tiles = 0;     // additional-KV tiles of 128 keys
  int32_t extra_splits = 1;    // CTAs per additional-KV tile, each a run of steps
  int32_t extra_steps = 0;     // steps per split (the last split may have fewer)
  int32_t q_split_log2 = 0;    // TMA boxes per tile along axis 0, as for the forward
  int32_t kv_split_log2 = 0;
  float scale_log2 = 1.0f;     // softmax scale * log2(e)
  float scale = 1.0f;
  int32_t deterministic = 0;
  int32_t dq_by_writer = 1;    // lean consumers (config.hpp) stage dQ for the writer warp
  int32_t batch_base = 0;      // batch of blockIdx.z == 0 (one launch per batch)
  int32_t maps_per_batch = 0;  // tensor maps cover one batch element
  MapCoords q_coords, do_coords, k_coords, v_coords, extra_k_coords, extra_v_coords;

  const float* lse2 = nullptr;
  const float* delta = nullptr;
  float* dq = nullptr;
  int32_t* order = nullptr;
  float* extra = nullptr;

  void* dk = nullptr;  // [B, X0, X1, X2, Hkv, D], unit stride in D
  void* dv = nullptr;
  int64_t dk_stride[5] = {};  // batch, x0, x1, x2, head (elements)
  int64_t dv_stride[5] = {};
};

// A heads-last tensor as (batch, x0, x1, x2, head, element) strides.
struct Strided {
  const void* data = nullptr;
  int64_t stride[6] = {};
};

// The passes before and after the main kernel (backward_passes.cu).
struct BackwardPassParams {
  AxisGeometry axis[3];
  int32_t q_tiles = 1;
  int32_t heads = 1;
  int32_t kv_heads = 1;
  int32_t head_dim = 64;
  int32_t head_dim_v = 64;
  int32_t rows = 128;  // M, queries per tile
  int32_t dq_cols = 64;
  int32_t extra_kv = 0;
  int32_t extra_tiles = 0;
  int32_t extra_splits = 1;
  int32_t batch = 1;
  float scale = 1.0f;
  int32_t deterministic = 0;
  Strided o, dout, lse, dlse;  // inputs of the pre-pass (dlse optional)
  Strided dq;                  // output of the dQ pass
  Strided dxk, dxv;            // outputs of the additional-KV pass
  float* lse2 = nullptr;
  float* delta = nullptr;
  float* dq_acc = nullptr;
  int32_t* order = nullptr;
  const float* extra = nullptr;
};

}  // namespace gna::sm90
