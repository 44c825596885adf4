// Compile-time shape of the forward and backward kernel instantiations: tile
// sizes, shared-memory layout and pipeline depth for an element type and
// head dim. The simulator reads the tile sizes from here too.
#pragma once

#include "cuda/sm90/ptx_types.hpp"

namespace gna::sm90 {

// Tokens per query tile, and per KV tile for a head dim (above 128 a
// 128-key tile of K and V no longer fits shared memory next to Q).
// `head_dim` is the wider of D (Q, K) and Dv (V, O).
constexpr int kQueryTileTokens = 128;
constexpr int kv_tile_tokens(int head_dim) { return head_dim <= 128 ? 128 : 64; }

// The forward's compiled head dims: D = Dv in {32, 64, 128, 256}, and two
// pairs with Dv != D that models use (forward_dispatch.cu instantiates each).
constexpr bool forward_head_dims_supported(int d, int dv) {
  if (d == dv) return d == 32 || d == 64 || d == 128 || d == 256;
  return (d == 64 && dv == 128) || (d == 192 && dv == 128);
}

// How a tile's head dim lies in shared memory: rows of kChunk elements (64,
// or the head dim below 64) in the swizzle TMA writes and wgmma reads; a
// wider head dim is split into kChunks column chunks stored one after
// another, each holding all rows.
template <int kHeadDimT>
struct HeadDimRows {
  static constexpr int kChunk = kHeadDimT < 64 ? kHeadDimT : 64;
  static constexpr int kChunks = kHeadDimT / kChunk;
  static constexpr int kRowBytes = kChunk * 2;
  static constexpr Swizzle kSwizzle = kRowBytes == 128 ? Swizzle::b128 : Swizzle::b64;
};

template <class ElementT, int kHeadDimT, int kHeadDimVT = kHeadDimT>
struct ForwardConfig : HeadDimRows<kHeadDimT> {  // the rows of Q and K
  using Element = ElementT;
  using V = HeadDimRows<kHeadDimVT>;  // the rows of V
  static constexpr int kHeadDim = kHeadDimT;
  static constexpr int kHeadDimV = kHeadDimVT;
  static constexpr int kWidest = kHeadDim > kHeadDimV ? kHeadDim : kHeadDimV;
  static constexpr int kBlockM = kQueryTileTokens;        // query rows per work item
  static constexpr int kBlockN = kv_tile_tokens(kWidest);  // keys per KV tile
  static constexpr int kStages = kWidest <= 64 ? 4 : 2;
  static constexpr int kThreads = 384;
  static constexpr int kQBytes = kBlockM * kHeadDim * 2;
  static constexpr int kKBytes = kBlockN * kHeadDim * 2;
  static constexpr int kVBytes = kBlockN * kHeadDimV * 2;
  // Two Q buffers where they fit (all but D = 256): the next work item's Q
  // then loads while the current item runs, not after its last S.
  static constexpr int kQBuffers =
      2 * kQBytes + kStages * (kKBytes + kVBytes) + 16 * 1024 <= 227 * 1024 ? 2 : 1;
  // Tiles first (1024-byte aligned for the swizzle), barriers after.
  static constexpr int kKOffset = kQBuffers * kQBytes;
  static constexpr int kVOffset = kKOffset + kStages * kKBytes;
  static constexpr int kBarrierOffset = kVOffset + kStages * kVBytes;
  static constexpr int kBarriers = 4 + 4 * kStages;  // q_full, q_free per buffer, four per stage
  // Column masks of the element mask: per axis, position 0..kBlockN and
  // lane quarter, one word (forward_kernel.cuh, ColumnMasks).
  static constexpr int kColumnMaskOffset = kBarrierOffset + kBarriers * 8;
  static constexpr int kColumnMasks = 3 * (kBlockN + 1) * 4;
  static constexpr int kSmemBytes = kColumnMaskOffset + kColumnMasks * 4 + 1024;  // + alignment slack
  static_assert(kSmemBytes <= 227 * 1024, "forward tiles exceed shared memory");
  static_assert(forward_head_dims_supported(kHeadDim, kHeadDimV), "head dims not in the list");
};

// ---- backward ------------------------------------------------------------------

// The backward kernel is KV-tile parallel: a CTA owns 128 keys (64 per
// consumer warpgroup) and walks the query tiles that see them, M queries at
// a time. dK and dV (64 x D each per warpgroup) stay in registers, so the
// query tile is 64 for D = 128 and 128 below; D = 256 would need 256
// accumulator registers per thread and is refused.
constexpr int kBackwardKvTileTokens = 128;
constexpr int backward_query_tile_tokens(int head_dim) { return head_dim >= 128 ? 64 : 128; }
constexpr bool backward_head_dim_supported(int head_dim) {
  return head_dim == 32 || head_dim == 64 || head_dim == 128;
}

template <class ElementT, int kHeadDimT>
struct BackwardConfig {
  using Element = ElementT;
  static constexpr int kHeadDim = kHeadDimT;
  static constexpr int kBlockN = kBackwardKvTileTokens;              // keys per CTA
  static constexpr int kBlockM = backward_query_tile_tokens(kHeadDim);  // queries per step
  static constexpr int kChunk = kHeadDim < 64 ? kHeadDim : 64;       // elements per smem row
  static constexpr int kChunks = kHeadDim / kChunk;
  static constexpr int kRowBytes = kChunk * 2;
  static constexpr Swizzle kSwizzle = kRowBytes == 128 ? Swizzle::b128 : Swizzle::b64;
  static constexpr int kStages = 2;  // Q / dO ring
  static constexpr int kThreads = 384;
  // setmaxnreg moves registers within what the CTA got at launch (168 per
  // thread under __launch_bounds__(384, 1)); a claim beyond it never returns.
  static constexpr int kProducerRegisters = 32;
  static constexpr int kConsumerRegisters = 232;
  static_assert(128 * kProducerRegisters + 256 * kConsumerRegisters <= kThreads * 168,
                "warpgroup register budgets exceed the CTA's registers");
  // dQ = dS K is split between the consumer warpgroups: by head-dim halves
  // for D = 128 (one 64-column chunk of K each), by query halves otherwise.
  // Each warpgroup's piece is 64 x kDqCols fp32, half of the tile's dQ.
  static constexpr int kDqCols = kHeadDim == 128 ? 64 : kHeadDim;
  static constexpr int kDqPieceFloats = 64 * kDqCols;
  // At D <= 64 (128-query steps, wide S^T and dP^T) the consumers' step
  // loop is short of registers. There the producer stages each step's query
  // tile (StagedStep), each thread's KeyRows wait in shared memory, and the
  // consumers add their dQ pieces into the scratch themselves (vector
  // reductions from registers, no staging): 7-10% on the backward. At
  // D = 128 the same costs 2-4%: the consumers walk the steps themselves,
  // keep KeyRows in registers and stage dQ for the writer warp (bench/NOTES.md,
  // backward v1.7). Deterministic mode always stages dQ for the writer.
  static constexpr bool kLeanConsumers = kHeadDim < 128;
  static constexpr int kKvBytes = kBlockN * kHeadDim * 2;
  static constexpr int kQBytes = kBlockM * kHeadDim * 2;  // also dO
  static constexpr int kDsBytes = kBlockN * kBlockM * 2;  // [M / 64][keys][64 queries]
  static constexpr int kDqBytes = kDqPieceFloats * 4;
  static constexpr int kRowStatBytes = kBlockM * 4;       // LSE or delta of one query tile
  // Lean consumers only: each consumer thread's KeyRows, a StagedStep per stage.
  static constexpr int kKeyRowsBytes = kLeanConsumers ? 256 * 12 * 4 : 0;
  static constexpr int kStepBytes = kLeanConsumers ? 32 : 0;
  // Tiles first (1024-byte aligned for the swizzle), row stats and barriers after.
  static constexpr int kKOffset = 0;
  static constexpr int kVOffset = kKOffset + kKvBytes;
  static constexpr int kQOffset = kVOffset + kKvBytes;
  static constexpr int kDoOffset = kQOffset + kStages * kQBytes;
  static constexpr int kDsOffset = kDoOffset + kStages * kQBytes;
  static constexpr int kDqOffset = kDsOffset + 2 * kDsBytes;
  static constexpr int kLseOffset = kDqOffset + 2 * kDqBytes;
  static constexpr int kDeltaOffset = kLseOffset + kStages * kRowStatBytes;
  static constexpr int kKeyRowsOffset = kDeltaOffset + kStages * kRowStatBytes;
  static constexpr int kStepOffset = kKeyRowsOffset + kKeyRowsBytes;
  static constexpr int kBarrierOffset = kStepOffset + kStages * kStepBytes;
  static constexpr int kBarriers = 1 + 3 * kStages;
  static constexpr int kSmemBytes = kBarrierOffset + kBarriers * 8 + 1024;  // + alignment slack
  static_assert(kSmemBytes <= 227 * 1024, "backward tiles exceed shared memory");
};

}  // namespace gna::sm90
