// Compile-time shape of one forward kernel instantiation: tile sizes,
// shared-memory layout and pipeline depth for an element type and head dim.
#pragma once

#include "cuda/sm90/ptx_types.hpp"

namespace gna::sm90 {

// Tokens per query tile, and per KV tile for a head dim (above 128 a
// 128-key tile of K and V no longer fits shared memory next to Q).
constexpr int kQueryTileTokens = 128;
constexpr int kv_tile_tokens(int head_dim) { return head_dim <= 128 ? 128 : 64; }

template <class ElementT, int kHeadDimT>
struct ForwardConfig {
  using Element = ElementT;
  static constexpr int kHeadDim = kHeadDimT;
  static constexpr int kBlockM = kQueryTileTokens;             // query rows per CTA
  static constexpr int kBlockN = kv_tile_tokens(kHeadDim);      // keys per KV tile
  static constexpr int kChunk = kHeadDim < 64 ? kHeadDim : 64; // elements per smem row
  static constexpr int kChunks = kHeadDim / kChunk;
  static constexpr int kRowBytes = kChunk * 2;
  static constexpr Swizzle kSwizzle = kRowBytes == 128 ? Swizzle::b128 : Swizzle::b64;
  static constexpr int kStages = kHeadDim <= 64 ? 4 : 2;
  static constexpr int kThreads = 384;
  static constexpr int kQBytes = kBlockM * kHeadDim * 2;
  static constexpr int kKvBytes = kBlockN * kHeadDim * 2;
  // Tiles first (1024-byte aligned for the swizzle), barriers after.
  static constexpr int kKOffset = kQBytes;
  static constexpr int kVOffset = kKOffset + kStages * kKvBytes;
  static constexpr int kBarrierOffset = kVOffset + kStages * kKvBytes;
  static constexpr int kBarriers = 1 + 4 * kStages;
  static constexpr int kSmemBytes = kBarrierOffset + kBarriers * 8 + 1024;  // + alignment slack
};

}  // namespace gna::sm90
