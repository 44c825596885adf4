// The description of one attention problem: shapes, window parameters and
// numerics. Backends, the simulator and the command line all take a Problem.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gna/tensor.hpp"

namespace gna {

// Window parameters of one spatial axis (names follow NATTEN).
struct AxisParams {
  int64_t kernel_size = 1;
  int64_t stride = 1;
  int64_t dilation = 1;
  bool is_causal = false;
};

// The largest |scale| validate() accepts, 2^64: beyond it scale * score
// overflows the backends' float32 scores for ordinary inputs.
constexpr double kMaxScale = 18446744073709551616.0;

// What the user chooses independently of the tensors.
struct Params {
  int rank = 1;  // spatial rank, 1..3
  AxisParams axis[kMaxSpatialRank];
  std::optional<double> scale;  // default 1/sqrt(head_dim)
};

struct Problem {
  Params params;
  int64_t batch = 1;
  int64_t extent[kMaxSpatialRank] = {1, 1, 1};  // spatial extents, rank used
  int64_t heads = 1;                            // query heads
  int64_t kv_heads = 1;                         // key/value heads (GQA/MQA)
  int64_t head_dim = 64;                        // D of Q and K
  int64_t head_dim_v = 64;                      // Dv of V and O
  int64_t extra_kv = 0;                         // additional KV tokens per batch
  DType dtype = DType::f16;

  int rank() const { return params.rank; }
  int64_t tokens() const;                 // spatial tokens per batch and head
  double scale() const;                   // params.scale or 1/sqrt(head_dim)
  int64_t visible_pairs() const;          // (query, key) pairs per batch and head
  double forward_flops() const;           // useful FLOPs of the forward pass
  double backward_flops() const;          // useful FLOPs of the backward pass
  double dense_forward_flops() const;     // FLOPs of dense attention of the same size
  bool empty() const;                     // some extent is 0: nothing to compute
  std::string describe() const;           // one line for logs and tables
};

// Checks every rule of docs/semantics.md on the problem alone (no tensors);
// throws gna::Error naming the argument on the first violation.
void validate(const Problem& problem);

// Spatial coordinates of every key the query at `query` (rank coordinates)
// sees, in row-major order; additional KV tokens are not listed.
std::vector<std::vector<int64_t>> neighborhood(const Problem& problem,
                                               const std::vector<int64_t>& query);

}  // namespace gna
