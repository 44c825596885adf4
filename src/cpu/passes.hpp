// The passes of the cpu backend and what each one reads. Every pass is a
// loop over work items (a tile of one batch and head) on the thread pool;
// its per-target body (Highway dynamic dispatch) lives in the pass's file.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/rows.hpp"
#include "cpu/tile_walk.hpp"
#include "gna/attention.hpp"

namespace gna::cpu {

// SIMD lanes of the target this machine runs (tile size in tokens).
int simd_lanes();

// Scores are kept in log2 units: scale * log2(e) folded into the packed side.
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Tokens of one flash step: its scores (one vector per token) stay in L1.
constexpr int64_t kStepTokens = 128;

struct ForwardJob {
  const Problem* problem = nullptr;
  const ForwardArgs* args = nullptr;
  Tiling tiling;  // query tiles looking at keys
  Fp32Rows query, key, value, extra_key, extra_value;
  float scale2 = 1.0f;  // scale * log2(e)
};

// The backward's two passes share their inputs: the query pass (dQ) writes
// delta_i = dO_i . O_i - dLSE_i and lse_i * log2(e) per query row
// [B, T, H], which the key pass (dK, dV, additional KV) then reads.
struct BackwardJob {
  const Problem* problem = nullptr;
  const BackwardArgs* args = nullptr;
  Tiling query_tiling;  // query tiles looking at keys
  Tiling key_tiling;    // key tiles looking at the queries that see them
  Fp32Rows query, key, value, output, grad_output, extra_key, extra_value;
  int64_t token_stride[kMaxSpatialRank] = {1, 1, 1};  // row-major token index
  std::vector<float> delta, lse2;
  float scale2 = 1.0f;

  int64_t query_row(int64_t b, int64_t token, int64_t h) const {
    return (b * problem->tokens() + token) * problem->heads + h;
  }
};

void forward_pass(const Problem& p, const ForwardArgs& args, int threads);
void backward_pass(const Problem& p, const BackwardArgs& args, int threads);
// The key pass, run by backward_pass after the query pass.
void key_pass(const BackwardJob& job, int threads);

}  // namespace gna::cpu
