// The host work of one sm90 backward call: the plan (tiles from the
// backward chooser, additional-KV splits), scratch memory, tensor maps and
// the four launches (prepass, main kernel, dQ pass, additional-KV pass), all
// on the caller's stream.
#include <cuda_runtime.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "core/check.hpp"
#include "core/tile_walk.hpp"
#include "cuda/sm90/backward_launch.hpp"
#include "cuda/sm90/host.hpp"
#include "cuda/sm90/scratch.hpp"
#include "cuda/sm90/tensor_maps.hpp"
#include "cuda/sm90/tiles.hpp"
#include "gna/sim.hpp"

namespace gna::sm90 {
namespace {

using detail::concat;

struct Plan {
  TileConfig tiles;
  int64_t extra_splits = 1;
  int64_t steps_per_split = 0;
  LaunchOrder order;
};

// Whether the neighborhood CTAs fill at most a few waves of the current
// device. On many waves the tail is a small part of the time, and the
// natural order keeps neighbouring KV tiles, which share query tiles in L2,
// running together (2-3% on the 2-D cases); so only then do the longest
// walks go first.
bool few_waves(const Problem& p, const TileConfig& tiles) {
  constexpr int64_t kOrderedWaves = 8;
  int64_t ctas = p.batch * p.kv_heads;
  for (int a = 0; a < p.rank(); ++a) ctas *= tile_grid(p, tiles.kv_tile[a], a).tiles;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  return ctas <= kOrderedWaves * multiprocessors(device);
}

Plan plan_for(const Problem& p, const TileConfig& tiles) {
  const sim::BackwardSimResult r = sim::simulate_backward(p, tiles);
  Plan plan{tiles, r.extra_splits, r.steps_per_split, LaunchOrder{}};
  if (few_waves(p, tiles)) plan.order = longest_walks_first(p, tiles);
  return plan;
}

// (batch, x0, x1, x2, head, element) strides of a heads-last tensor with
// `rank` spatial axes; LSE-like tensors have no element axis.
Strided strided(const TensorView& t, int rank) {
  Strided s;
  s.data = t.data;
  if (!t.defined()) return s;
  s.stride[0] = t.stride[0];
  for (int a = 0; a < rank; ++a) s.stride[1 + a] = t.stride[1 + a];
  s.stride[4] = t.stride[rank + 1];
  if (t.ndim > rank + 2) s.stride[5] = t.stride[rank + 2];
  return s;
}

void output_strides(const TensorView& t, int rank, int64_t (&out)[5]) {
  out[0] = t.stride[0];
  for (int a = 0; a < rank; ++a) out[1 + a] = t.stride[1 + a];
  out[4] = t.stride[rank + 1];
}

}  // namespace

LaunchOrder longest_walks_first(const Problem& p, const TileConfig& tiles) {
  LaunchOrder order;
  for (int a = 0; a < p.rank(); ++a) {
    const AxisGeometry g = axis_geometry(p, tiles, a);
    const TileGrid grid = tile_grid(p, tiles.kv_tile[a], a);
    if (grid.tiles > LaunchOrder::capacity(a)) continue;
    const window::Axis ax = window_axis(g);
    std::vector<int64_t> walk(grid.tiles);
    for (int32_t u = 0; u < grid.tiles; ++u) {
      int32_t group = 0, tile = 0;
      grid_cell(grid, u, group, tile);
      walk[u] = window::query_tiles_seeing(ax, int64_t{tile} << g.kv_log2, int64_t{1} << g.kv_log2,
                                           int64_t{1} << g.q_log2, window::group_length(ax, group))
                    .count();
    }
    std::vector<int16_t> cells(grid.tiles);
    std::iota(cells.begin(), cells.end(), int16_t{0});
    std::stable_sort(cells.begin(), cells.end(),
                     [&](int16_t x, int16_t y) { return walk[x] > walk[y]; });
    std::copy(cells.begin(), cells.end(), order.cells(a));
    order.ordered_axes |= 1 << a;
  }
  return order;
}

std::string backward_problem_error(const Problem& p) {
  if (!backward_head_dim_supported(static_cast<int>(p.head_dim))) {
    return concat("head_dim ", p.head_dim,
                  " not supported by the sm90 backward, supported: 32, 64, 128 (dK and dV of 128 "
                  "keys stay in registers)");
  }
  if (p.head_dim_v != p.head_dim) {
    return concat("the sm90 backward needs head_dim_v == head_dim (got ", p.head_dim, " and ",
                  p.head_dim_v, ")");
  }
  if (p.kv_heads > 65535) return "more than 65535 kv heads";
  return "";
}

std::string backward_tensor_error(const BackwardArgs& args) {
  for (const auto& [name, t] : {std::pair<const char*, const TensorView*>{"query", &args.query},
                                {"key", &args.key},
                                {"value", &args.value},
                                {"grad_output", &args.grad_output},
                                {"additional_keys", &args.extra_key},
                                {"additional_values", &args.extra_value}}) {
    const std::string reason = tma_operand_error(name, *t);
    if (!reason.empty()) return reason;
  }
  for (const auto& [name, t] : {std::pair<const char*, const TensorView*>{"grad_key", &args.grad_key},
                                {"grad_value", &args.grad_value}}) {
    const std::string reason = paired_store_error(name, *t);
    if (!reason.empty()) return reason;
  }
  return "";
}

void run_backward(const Problem& p, const BackwardArgs& args, const Options& options) {
  Plan plan;
  if (options.tiles) {
    const std::string reason = backward_tile_error(p, *options.tiles);
    if (!reason.empty()) detail::fail(ErrorKind::value, "tiles", options.tiles->describe(), reason);
    plan = plan_for(p, *options.tiles);
  } else {
    plan = per_problem(p, [](const Problem& q) {
      return plan_for(q, sim::choose_backward_tiles(q).tiles);
    });
  }
  const TileConfig& tiles = plan.tiles;
  const int r = p.rank();
  const int64_t rows = backward_query_tile_tokens(static_cast<int>(p.head_dim));
  const int64_t group = p.heads / p.kv_heads;

  BackwardLaunch launch;
  BackwardParams& params = launch.params;
  int64_t kv_tiles = 1, q_tiles = 1;
  for (int a = 0; a < 3; ++a) {
    params.axis[a] = axis_geometry(p, tiles, a);
    params.kv_grid[a] = tile_grid(p, a < r ? tiles.kv_tile[a] : 1, a);
    kv_tiles *= params.kv_grid[a].tiles;
    q_tiles *= params.axis[a].tiles;
  }
  const int64_t extra_tiles = (p.extra_kv + kBackwardKvTileTokens - 1) / kBackwardKvTileTokens;
  const int64_t ctas = kv_tiles + extra_tiles * plan.extra_splits;
  if (ctas >= (int64_t{1} << 31) || p.batch * p.heads * q_tiles >= (int64_t{1} << 31)) {
    detail::fail_unsupported("sm90", "too many tiles for the backward kernel's 32-bit indices");
  }
  params.kv_tiles = static_cast<int32_t>(kv_tiles);
  params.q_tiles = static_cast<int32_t>(q_tiles);
  params.heads = static_cast<int32_t>(p.heads);
  params.group = static_cast<int32_t>(group);
  params.extra_kv = static_cast<int32_t>(p.extra_kv);
  params.extra_tiles = static_cast<int32_t>(extra_tiles);
  params.extra_splits = static_cast<int32_t>(plan.extra_splits);
  params.extra_steps = static_cast<int32_t>(plan.steps_per_split);
  params.q_split_log2 = split_log2(tiles.q_tile[0], p.params.axis[0].dilation);
  params.kv_split_log2 = split_log2(tiles.kv_tile[0], p.params.axis[0].dilation);
  params.scale = static_cast<float>(p.scale());
  params.scale_log2 = static_cast<float>(p.scale() * 1.4426950408889634);
  params.deterministic = options.deterministic ? 1 : 0;
  params.dq_by_writer = params.deterministic;  // the writer warp adds in a fixed order
  params.order_of_cells = plan.order;
  params.dk = args.grad_key.data;
  params.dv = args.grad_value.data;
  output_strides(args.grad_key, r, params.dk_stride);
  output_strides(args.grad_value, r, params.dv_stride);

  const DeviceGuard guard(args.query.device.index);
  const cudaStream_t stream = static_cast<cudaStream_t>(options.stream);
  launch.stream = stream;

  // Scratch, carved in one allocation.
  const int64_t row_blocks = p.batch * p.heads * q_tiles;
  const size_t stat_bytes = static_cast<size_t>(row_blocks * rows) * sizeof(float);
  const size_t dq_bytes = static_cast<size_t>(row_blocks * rows * p.head_dim) * sizeof(float);
  const size_t order_bytes = options.deterministic ? static_cast<size_t>(row_blocks * 2) * 4 : 0;
  const size_t extra_bytes = static_cast<size_t>(p.batch * p.kv_heads * extra_tiles *
                                                 plan.extra_splits * kBackwardKvTileTokens * 2 *
                                                 p.head_dim) * sizeof(float);
  Scratch scratch(2 * (stat_bytes + 256) + dq_bytes + order_bytes + extra_bytes + 1024,
                  args.query.device.index, stream);
  float* lse2 = static_cast<float*>(scratch.take(stat_bytes));
  float* delta = static_cast<float*>(scratch.take(stat_bytes));
  float* dq_acc = static_cast<float*>(scratch.take(dq_bytes));
  int32_t* order = static_cast<int32_t*>(scratch.take(order_bytes));
  float* extra = static_cast<float*>(scratch.take(extra_bytes));
  params.lse2 = lse2;
  params.delta = delta;
  params.dq = dq_acc;
  params.order = order;
  params.extra = extra;

  BackwardPassParams pass;
  for (int a = 0; a < 3; ++a) pass.axis[a] = params.axis[a];
  pass.q_tiles = params.q_tiles;
  pass.heads = params.heads;
  pass.kv_heads = static_cast<int32_t>(p.kv_heads);
  pass.head_dim = static_cast<int32_t>(p.head_dim);
  pass.head_dim_v = static_cast<int32_t>(p.head_dim_v);
  pass.rows = static_cast<int32_t>(rows);
  pass.dq_cols = p.head_dim == 128 ? 64 : static_cast<int32_t>(p.head_dim);
  pass.extra_kv = params.extra_kv;
  pass.extra_tiles = params.extra_tiles;
  pass.extra_splits = params.extra_splits;
  pass.batch = static_cast<int32_t>(p.batch);
  pass.scale = params.scale;
  pass.deterministic = params.deterministic;
  pass.o = strided(args.output, r);
  pass.dout = strided(args.grad_output, r);
  pass.lse = strided(args.lse, r);
  pass.dlse = strided(args.grad_lse, r);
  pass.dq = strided(args.grad_query, r);
  pass.dxk = strided(args.grad_extra_key, 1);
  pass.dxv = strided(args.grad_extra_value, 1);
  pass.lse2 = lse2;
  pass.delta = delta;
  pass.dq_acc = dq_acc;
  pass.order = order;
  pass.extra = extra;

  const ElementType element = p.dtype == DType::bf16 ? ElementType::bf16 : ElementType::f16;
  launch_backward_prepass(element, pass, stream);

  // One launch covers all batches when every operand's map can hold the
  // batch; otherwise one launch per batch element over offset maps.
  bool per_batch = false;
  for (const TensorView* t : {&args.query, &args.key, &args.value, &args.grad_output}) {
    per_batch |= needs_per_batch_maps(*t, r);
  }
  for (const TensorView* t : {&args.extra_key, &args.extra_value}) {
    per_batch |= needs_per_batch_maps(*t, 1);
  }
  params.maps_per_batch = per_batch ? 1 : 0;
  int64_t q_box[3], kv_box[3];
  tile_boxes(p, tiles, params.q_split_log2, params.kv_split_log2, q_box, kv_box);
  const int64_t extra_box[3] = {kBackwardKvTileTokens, 1, 1};
  launch.grid = dim3(static_cast<unsigned>(ctas), static_cast<unsigned>(p.kv_heads),
                     per_batch ? 1u : static_cast<unsigned>(p.batch));
  for (int64_t b = 0; b < (per_batch ? p.batch : 1); ++b) {
    launch.maps.q = token_map(p, args.query, r, q_box, true, per_batch, b, &params.q_coords);
    launch.maps.dout = token_map(p, args.grad_output, r, q_box, true, per_batch, b, &params.do_coords);
    launch.maps.k = token_map(p, args.key, r, kv_box, true, per_batch, b, &params.k_coords);
    launch.maps.v = token_map(p, args.value, r, kv_box, true, per_batch, b, &params.v_coords);
    if (args.extra_key.defined()) {
      launch.maps.extra_k =
          token_map(p, args.extra_key, 1, extra_box, false, per_batch, b, &params.extra_k_coords);
      launch.maps.extra_v =
          token_map(p, args.extra_value, 1, extra_box, false, per_batch, b, &params.extra_v_coords);
    }
    params.batch_base = static_cast<int32_t>(b);
    launch_backward_kernel(element, static_cast<int>(p.head_dim), launch);
  }

  launch_backward_dq_pass(element, pass, stream);
  if (p.extra_kv > 0) launch_backward_extra_pass(element, pass, stream);
}

}  // namespace gna::sm90
