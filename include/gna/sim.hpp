// The tile simulator and the tile chooser of the fused kernels.
//
// The model of a kernel: each dilation group is its own sub-problem in
// in-group positions [0, m) per axis. A CTA owns one query tile (a box of
// q_tile positions, the last one per axis partial) and visits the KV tiles
// (boxes of kv_tile positions) that cover the union of its queries' windows:
// "dynamic" tiles start at that union's first key, "static" tiles lie on the
// grid of multiples of kv_tile. A KV tile needs the element mask when some
// (existing query, key position) pair of the tile pair is invisible or the key
// lies outside [0, m); padded query rows never force a mask, since their
// outputs are dropped and TMA zero-fills their inputs. Additional KV tokens
// add ceil(extra_kv / kv_tokens) tiles per query tile; the last is masked
// when partial.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gna/problem.hpp"
#include "gna/tiles.hpp"

namespace gna::sim {

// Query tiles that visit the same number of KV tiles, masked ones included.
struct TileLoad {
  int64_t visited = 0;  // KV tiles per query tile, additional KV included
  int64_t masked = 0;   // of those, tiles that need the element mask
  int64_t count = 0;    // query tiles with exactly this load (per batch and head)
};

// Exact figures of one problem and tile configuration, per batch and head
// (every batch entry and head does the same work). Work is in (query, key)
// pairs; multiply by 2 * (D + Dv) for FLOPs.
struct SimResult {
  int64_t q_tiles = 0;           // query tiles, summed over dilation groups
  int64_t visited_kv_tiles = 0;  // summed over query tiles
  int64_t masked_kv_tiles = 0;   // visited tiles that need the element mask
  int64_t extra_kv_tiles = 0;    // visited tiles that hold additional KV
  int64_t min_visited = 0;       // per query tile
  int64_t max_visited = 0;
  int64_t useful_work = 0;  // visible pairs + tokens * extra_kv
  int64_t work_done = 0;    // padded query tile x visited KV tiles
  int64_t dense_work = 0;   // tokens * (tokens + extra_kv)
  double flop_bound = 0.0;  // dense_work / useful_work
  double tile_bound = 0.0;  // dense_work / work_done
  std::vector<TileLoad> loads;  // heaviest first

  double mean_visited() const;
};

// Throws gna::Error when the problem breaks a rule or the tiles do not fit
// it (rank mismatch, an extent < 1).
SimResult simulate(const Problem& problem, const TileConfig& tiles);

// Costs of the sm90 forward kernel, calibrated on the H200: a least-squares
// fit of the measured times of 66 tile configurations of the eight benchmark
// cases (bench/results/sweep_h200.jsonl from `gna bench --sweep 12`; median
// error 1.3%, worst 16%), kernel of 2026-11-30. The time of one CTA is
//   per_query_tile_s + visited * (mma + per_kv_tile_s) + masked * mask_fraction * mma
// with mma = FLOPs of one (query tile, KV tile) pair at peak_flops / sms.
struct CostModel {
  int sms = 132;                      // one CTA per SM at a time
  double peak_flops = 538e12;         // rate the kernel sustains on unmasked tiles, all SMs
  double per_kv_tile_s = 0.0;         // pipeline step overhead (absorbed into the rate)
  double mask_fraction = 0.90;        // extra time of a masked tile, share of its MMA time
  double per_query_tile_s = 13.7e-6;  // prologue (Q load, pipeline fill) and epilogue
};

// Predicted kernel time in seconds: CTAs (query tiles x batch x heads) are
// placed heaviest first on the least loaded SM, a bulk form of list
// scheduling that keeps wave quantization; the time is the busiest SM's.
double predict_seconds(const Problem& problem, const TileConfig& tiles, const SimResult& result,
                       const CostModel& cost = {});

// The same model for dense attention of the same tokens (1-D tiles of the
// kernel's sizes, only ragged last tiles masked): the baseline that turns a
// predicted time into a predicted speedup.
double predict_dense_seconds(const Problem& problem, const TileConfig& tiles,
                             const CostModel& cost = {});

// Tile sizes of the sm90 forward kernel, as data.
struct Sm90Tiles {
  int64_t q_tokens = 128;
  int64_t kv_tokens = 128;   // 64 for head dims above 128 (shared memory)
  int64_t max_tma_span = 256;  // TMA box limit: tile extent * dilation, axes after the first
};
Sm90Tiles sm90_tiles(const Problem& problem);

// Every factorization of the sm90 token counts into powers of two per axis,
// with both KV tilings, that respects the TMA box limit and is no wider than
// the next power of two of the axis' longest dilation group (when that cap
// leaves no factorization, it is dropped). Empty when the TMA limit rules
// out every shape.
std::vector<TileConfig> sm90_candidates(const Problem& problem);

struct RankedTiles {
  TileConfig tiles;
  SimResult sim;
  double predicted_s = 0.0;
  double predicted_speedup = 0.0;  // predict_dense_seconds / predicted_s
};

// Candidates ranked by predicted time, fastest first (ties: fewer masked
// tiles, then the description, so the order is deterministic).
std::vector<RankedTiles> rank_tiles(const Problem& problem,
                                    const std::vector<TileConfig>& candidates,
                                    const CostModel& cost = {});

// The sm90 kernel's default: the best of sm90_candidates. Throws gna::Error
// (unsupported) naming the TMA rule when there is no candidate.
RankedTiles choose_tiles(const Problem& problem, const CostModel& cost = {});

// Per axis, the smallest stride (1..kernel) that leaves no masked KV tile
// along that axis; the mask condition factorizes over axes, so each axis is
// searched alone. 0 means no stride works on that axis. The strides in the
// problem are ignored; additional KV is ignored (its ragged last tile is
// masked whatever the stride).
// Each axis' search looks at most kMaxStrideSearch query tiles (about k plus
// the query tiles of the answer) and beyond that throws gna::Error naming
// kernel_size, so it answers in well under a second.
constexpr int64_t kMaxStrideSearch = int64_t{1} << 24;
std::vector<int64_t> block_sparse_strides(const Problem& problem, const TileConfig& tiles);

// The sm90 tiles that make the problem block-sparse with the smallest strides
// (product over axes; ties: the fastest predicted time at those strides).
struct BlockSparsePick {
  TileConfig tiles;
  std::vector<int64_t> strides;
  double predicted_s = 0.0;
};
// Empty when no sm90 candidate is mask-free on every axis.
std::optional<BlockSparsePick> sm90_block_sparse(const Problem& problem,
                                                 const CostModel& cost = {});

// ---- the sm90 backward ----------------------------------------------------------
//
// The backward kernel is KV-tile parallel: a CTA owns a KV tile (fixed grid
// per dilation group) and walks, for each query head of its kv head's group,
// the query tiles (fixed grid) that see it; each such visit is a "step".
// Additional KV tiles are walked by CTAs that each take a run (split) of all
// (query head, query tile) steps. Figures are per batch and kv head.
struct BackwardSimResult {
  int64_t kv_ctas = 0;           // neighborhood CTAs: KV tiles over all dilation groups
  int64_t steps = 0;             // their steps, all query heads of the group
  int64_t masked_steps = 0;      // of those, steps that need the element mask
  int64_t min_steps = 0;         // per neighborhood CTA
  int64_t max_steps = 0;
  int64_t q_tiles = 0;           // query tiles per query head
  int64_t extra_tiles = 0;       // additional-KV tiles
  int64_t extra_splits = 1;      // CTAs per additional-KV tile
  int64_t steps_per_split = 0;   // (the last split may have fewer)
  int64_t extra_steps = 0;       // steps of all additional-KV CTAs
  int64_t useful_work = 0;       // visible pairs + tokens * extra_kv, all query heads
  int64_t work_done = 0;         // padded pairs the steps compute
  double tile_bound = 0.0;       // dense work / work_done
  std::vector<TileLoad> loads;   // per CTA: visited = its steps; heaviest first
};

// Throws gna::Error when the problem breaks a rule or the tiles do not fit it.
BackwardSimResult simulate_backward(const Problem& problem, const TileConfig& tiles);

// Costs of the sm90 backward kernel: per CTA
//   per_cta_s + steps * (mma + per_step_s) + masked * mask_fraction * mma
// with mma = FLOPs of one step (2 * q x kv x (3 D + 2 Dv)) at peak_flops / sms.
struct BackwardCostModel {
  int sms = 132;
  double peak_flops = 450e12;
  double per_step_s = 0.0;
  double mask_fraction = 0.5;
  double per_cta_s = 6e-6;
};

double predict_backward_seconds(const Problem& problem, const TileConfig& tiles,
                                const BackwardSimResult& result, const BackwardCostModel& cost = {});

// Tile sizes of the sm90 backward kernel: 128 keys per KV tile, 64 (head
// dim 128) or 128 queries per query tile.
Sm90Tiles sm90_backward_tiles(const Problem& problem);

// Every factorization of those token counts into powers of two per axis
// that TMA can load (as sm90_candidates), KV tiles on the fixed grid.
std::vector<TileConfig> sm90_backward_candidates(const Problem& problem);

struct RankedBackwardTiles {
  TileConfig tiles;
  BackwardSimResult sim;
  double predicted_s = 0.0;
};

// Candidates ranked by predicted time, fastest first (ties: fewer masked
// steps, then the description).
std::vector<RankedBackwardTiles> rank_backward_tiles(const Problem& problem,
                                                     const std::vector<TileConfig>& candidates,
                                                     const BackwardCostModel& cost = {});

// The sm90 backward's default tiles. Throws gna::Error (unsupported) naming
// the TMA rule when no candidate fits.
RankedBackwardTiles choose_backward_tiles(const Problem& problem,
                                          const BackwardCostModel& cost = {});

}  // namespace gna::sim
