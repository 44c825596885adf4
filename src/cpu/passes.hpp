// How the cpu backend works, and what each of its passes reads.
//
// One SIMD lane holds one token: a tile is a box of as many tokens as a
// vector has fp32 lanes (make_tiling picks the box reaching fewest other
// tokens), and everything is a rank-1 update of those lanes by an element
// of a row of the other side, broadcast (src/cpu/kernels-inl.h): S = K Q^T
// with queries in lanes, then P V, with no horizontal reduction anywhere.
// Small windows waste most lanes of such a box, so there a tile is a box
// of a quarter of the tokens times 4 heads (best_tiling: 2x2 tokens x 4
// heads reach 8x8 keys of a 7x7 window, not 10x10), and the broadcast side
// is read from rows regrouped by heads (Fp32Rows::prepare_grouped); their
// P V (and the key pass's dK) accumulate a row per token regrouped the
// same way instead (AddRowsToGroupLanes: one 128-bit broadcast of a
// token's 4 heads feeds 4 FMAs), transposed back when written.
// A tile walks only the tokens its windows reach, in steps (boxes of
// chunks, src/cpu/tile_walk.hpp, the simulator's per-axis tile maps), with
// FlashAttention's online softmax; a step that is not clean adds a mask
// bias (0 or kMasked per lane and token) before its scores. Inputs are read
// as fp32 rows, converted once per call where needed (src/cpu/rows.hpp);
// extra memory is O(tokens).
//
// Every pass is a loop over work items (a tile of one batch and head) on the
// thread pool, each writing only what it owns, summing in a fixed order;
// its per-target body (Highway dynamic dispatch) lives in the pass's file.
#pragma once

#include <hwy/aligned_allocator.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cpu/rows.hpp"
#include "cpu/tile_walk.hpp"
#include "gna/attention.hpp"

namespace gna::cpu {

// SIMD lanes of the target this machine runs (tile size in tokens), and
// the target's name.
int simd_lanes();
const char* simd_target();

// The forward's query tiles for `p` (with their head group).
Tiling forward_tiling(const Problem& p);

// The forward's query tiles for `p`, for reports: "4x4 tokens on 16 lanes (AVX3)",
// "2x2 tokens x 4 heads on 16 lanes (AVX3)".
std::string describe_tiles(const Problem& p);

// Scores are kept in log2 units: scale * log2(e) folded into the packed side.
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Tokens of one flash step: its scores (one vector per token) stay in L1.
constexpr int64_t kStepTokens = 256;

struct ForwardJob {
  const Problem* problem = nullptr;
  const ForwardArgs* args = nullptr;
  Tiling tiling;  // query tiles looking at keys
  Fp32Rows query, key, value, extra_key, extra_value;
  float scale2 = 1.0f;  // scale * log2(e)
};

// The backward's passes and what they share (src/cpu/backward.cpp runs
// them). First delta_i = dO_i . O_i - dLSE_i and lse_i * log2(e) per query
// row [B, T, H]. Then key tiles (lanes are keys) accumulate dK and dV over
// the queries that see them. Where the window is small enough, they also
// add dS^T K into an fp32 dQ per query row ("fused"); their items are then
// blocks of key tiles (src/cpu/backward.cpp), run in phases, each phase a
// set of blocks whose queries are disjoint, so no two threads ever add to
// one row and the order of the additions is fixed. Last, query tiles
// (lanes are queries) finish dQ: the whole sum over their keys where not
// fused, else the additional KV's part.
struct BackwardJob {
  const Problem* problem = nullptr;
  const BackwardArgs* args = nullptr;
  Tiling query_tiling;  // query tiles looking at keys
  Tiling key_tiling;    // key tiles looking at the queries that see them
  Fp32Rows query, key, value, output, grad_output, extra_key, extra_value;
  // Key tiles of a head group (key_tiling.head_group > 1): the queries and
  // output gradients regrouped by heads (Fp32Rows::prepare_grouped), and
  // delta and lse2 in the same blocks: kHeadBlock floats per (batch,
  // token, group of heads), see grouped_row.
  Fp32Rows grouped_query, grouped_grad_output;
  std::vector<float> grouped_delta, grouped_lse2;
  int64_t token_stride[kMaxSpatialRank] = {1, 1, 1};  // row-major token index
  std::vector<float> delta, lse2;
  float scale2 = 1.0f;
  bool fused = false;
  // Fused only: dQ / scale per query row, rows of dq_stride floats (the
  // head dim rounded up to whole vectors). Key tiles of a head group write
  // the 4 rows of the group's heads as one block regrouped by heads
  // (element e of head k at e * kHeadBlock + k), which the write-out reads
  // back; they never run with additional KV (best_tiling).
  // Zeroed by the delta pass (in parallel, uninitialized before), then
  // written by the key pass, one phase at a time.
  mutable hwy::AlignedFreeUniquePtr<float[]> dq;
  int64_t dq_stride = 0;
  // Fused only: per phase, its blocks, each the key tiles it walks in order,
  // with every kv head in turn, or (block_per_head) one item per kv head.
  std::vector<std::vector<std::vector<int64_t>>> blocks_of_phase;
  bool block_per_head = false;

  int64_t tokens = 0;  // spatial tokens per batch and head

  int64_t query_row(int64_t b, int64_t token, int64_t h) const {
    return (b * tokens + token) * problem->heads + h;
  }
  // Where grouped_delta and grouped_lse2 hold the block of the heads of
  // `row` (a query_row of the group's first head).
  int64_t grouped_row(int64_t row) const { return row / key_tiling.head_group * kHeadBlock; }
};

void forward_pass(const Problem& p, const ForwardArgs& args, int threads);
void backward_pass(const Problem& p, const BackwardArgs& args, int threads);

// The phases of the key pass when backward_pass fuses dQ into it for this
// problem; 0 when it does not.
int backward_phases(const Problem& p);

// The backward's passes, in the order backward_pass runs them.
void delta_pass(BackwardJob& job, int threads);
// The key tiles of the grid, one item per block of `blocks` (nullptr: one
// item per tile, all of them), and the tiles of additional KV tokens when
// `extra`.
void key_pass(const BackwardJob& job, int threads,
              const std::vector<std::vector<int64_t>>* blocks, bool extra);
void query_pass(const BackwardJob& job, int threads);

// Items of the grid a key pass runs per batch: one per block (and kv head
// when block_per_head), or one per tile and kv head when not fused.
inline int64_t key_items_per_batch(const BackwardJob& job,
                                   const std::vector<std::vector<int64_t>>* blocks) {
  const int64_t heads = job.problem->kv_heads / job.key_tiling.head_group;
  if (blocks == nullptr) return job.key_tiling.count() * heads;
  return static_cast<int64_t>(blocks->size()) * (job.block_per_head ? heads : 1);
}

}  // namespace gna::cpu
