// The "sm90" backend: what the fused Hopper forward can run, and the host
// work of a call (tile choice, tensor maps, launch parameters).
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/backend.hpp"
#include "core/check.hpp"
#include "cuda/sm90/host.hpp"
#include "cuda/sm90/launch.hpp"
#include "cuda/sm90/tensor_maps.hpp"
#include "cuda/sm90/tiles.hpp"
#include "gna/sim.hpp"

namespace gna::sm90 {
namespace {

using detail::concat;

// Forward launch shape, fixed per process: GNA_SM90_FORWARD_PERSISTENT=0
// launches one CTA per work item (the first forward's shape) and
// GNA_SM90_FORWARD_PINGPONG=0 lets the consumer warpgroups issue freely, for
// side-by-side measurements (bench/NOTES.md, forward v3).
bool env_flag(const char* name, bool fallback) {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0' ? fallback : std::strcmp(v, "0") != 0;
}

struct ForwardShape {
  bool persistent = env_flag("GNA_SM90_FORWARD_PERSISTENT", true);
  bool pingpong = env_flag("GNA_SM90_FORWARD_PINGPONG", true);
};

const ForwardShape& forward_shape() {
  static const ForwardShape shape;
  return shape;
}

std::atomic<unsigned long long*> forward_tile_counts{nullptr};

// Keys and values are read through maps that share coordinates.
bool same_map_layout(const TensorView& k, const TensorView& v, int rank) {
  return heads_merge(k, rank) == heads_merge(v, rank) && batch_merges(k, rank) == batch_merges(v, rank);
}

// One launch covers all batches when every operand's map can hold the
// batch; otherwise one launch per batch element over offset maps.
bool per_batch_launches(const ForwardArgs& args, int r) {
  bool per_batch = false;
  for (const TensorView* t : {&args.query, &args.key, &args.value}) {
    per_batch |= needs_per_batch_maps(*t, r);
  }
  for (const TensorView* t : {&args.extra_key, &args.extra_value}) {
    per_batch |= needs_per_batch_maps(*t, 1);
  }
  return per_batch;
}

class Sm90Backend final : public detail::Backend {
 public:
  const char* name() const override { return "sm90"; }

  std::string cannot_run(const Problem& p, Pass pass, Device device) const override {
    if (device.type != DeviceType::cuda) {
      return concat("tensors are on ", device_name(device), "; sm90 runs on CUDA tensors");
    }
    const int cc = compute_capability(device.index);
    if (cc != 90) return concat("needs an sm_90 (Hopper) GPU; ", device_name(device), " is sm_", cc);
    if (p.dtype != DType::f16 && p.dtype != DType::bf16) {
      return concat("dtype ", dtype_name(p.dtype), " not supported by sm90, supported: float16, bfloat16");
    }
    if (p.head_dim > INT32_MAX || p.head_dim_v > INT32_MAX ||
        !forward_head_dims_supported(static_cast<int>(p.head_dim), static_cast<int>(p.head_dim_v))) {
      return p.head_dim == p.head_dim_v
                 ? concat("head_dim ", p.head_dim, " not supported by sm90, supported: 32, 64, 128, "
                          "256, and head_dim / head_dim_v 64 / 128 or 192 / 128")
                 : concat("head_dim / head_dim_v ", p.head_dim, " / ", p.head_dim_v,
                          " not supported by sm90, supported: equal head dims 32, 64, 128, 256, "
                          "and 64 / 128 or 192 / 128");
    }
    if (pass == Pass::backward) {
      if (p.head_dim_v != p.head_dim) {
        return concat("the sm90 backward needs head_dim_v == head_dim (got ", p.head_dim, " and ",
                      p.head_dim_v, ")");
      }
      const std::string reason = backward_problem_error(p);
      if (!reason.empty()) return reason;
      // Scratch memory comes from a stream-ordered pool.
      if (!has_memory_pools(device.index)) {
        return concat(device_name(device), " has no stream-ordered allocator, which the sm90 "
                                           "backward needs for scratch memory");
      }
    }
    for (int a = 0; a < p.rank(); ++a) {
      if (p.params.axis[a].dilation > 8) {
        return concat("dilation ", p.params.axis[a].dilation, " on axis ", a,
                      " exceeds 8, the TMA traversal-stride limit");
      }
      if (p.extent[a] >= (int64_t{1} << 31)) return concat("axis ", a, " longer than 2^31 - 1");
    }
    if (p.extra_kv >= (int64_t{1} << 31)) return "more than 2^31 - 1 additional KV tokens";
    if (p.heads > 65535 || p.batch > 65535) return "more than 65535 heads or batch elements";
    if (!(p.scale() > 0.0)) return "sm90 needs a positive scale";
    return "";
  }

  std::string cannot_run_tensors(const Problem&, const ForwardArgs& args) const override {
    for (const auto& [name, t] : {std::pair<const char*, const TensorView*>{"query", &args.query},
                                  {"key", &args.key},
                                  {"value", &args.value},
                                  {"additional_keys", &args.extra_key},
                                  {"additional_values", &args.extra_value}}) {
      const std::string reason = tma_operand_error(name, *t);
      if (!reason.empty()) return reason;
    }
    const int r = args.query.ndim - 3;
    if (!same_map_layout(args.key, args.value, r)) {
      return "key and value must share one memory layout (strides up to the head dim)";
    }
    if (args.extra_key.defined() && !same_map_layout(args.extra_key, args.extra_value, 1)) {
      return "additional_keys and additional_values must share one memory layout";
    }
    return paired_store_error("output", args.output);
  }

  void forward(const Problem& p, const ForwardArgs& args, const Options& options) const override {
    const TileConfig tiles =
        options.tiles ? *options.tiles
                      : per_problem(p, [](const Problem& q) { return sim::choose_tiles(q).tiles; });
    const std::string tile_reason = tile_error(p, tiles);
    if (!tile_reason.empty()) detail::fail(ErrorKind::value, "tiles", tiles.describe(), tile_reason);

    const int r = p.rank();
    Launch launch;
    ForwardParams& params = launch.params;
    int64_t q_tiles = 1;
    for (int a = 0; a < 3; ++a) {
      params.axis[a] = axis_geometry(p, tiles, a);
      q_tiles *= params.axis[a].tiles;
    }
    const int64_t batches = per_batch_launches(args, r) ? 1 : p.batch;
    if (q_tiles * p.heads * batches >= (int64_t{1} << 31)) {
      detail::fail_unsupported("sm90", concat("too many work items (", q_tiles, " query tiles x ",
                                              p.heads, " heads x ", batches, " batches)"));
    }
    params.q_tiles = static_cast<int32_t>(q_tiles);
    params.items = static_cast<int32_t>(q_tiles * p.heads * batches);
    // Turn-taking pays where the products dominate a step (+12-17% at head
    // dim 128); below, the softmax does and turns cost 2-3% (bench/NOTES.md).
    params.pingpong = forward_shape().pingpong && std::max(p.head_dim, p.head_dim_v) >= 128 ? 1 : 0;
    params.tile_counts = forward_tile_counts.load(std::memory_order_relaxed);
    params.heads = static_cast<int32_t>(p.heads);
    params.group = static_cast<int32_t>(p.heads / p.kv_heads);
    params.extra_kv = static_cast<int32_t>(p.extra_kv);
    params.fixed_grid = tiles.kv_tiling == KvTiling::fixed_grid ? 1 : 0;
    params.q_split_log2 = split_log2(tiles.q_tile[0], p.params.axis[0].dilation);
    params.kv_split_log2 = split_log2(tiles.kv_tile[0], p.params.axis[0].dilation);
    params.scale_log2 = static_cast<float>(p.scale() * 1.4426950408889634);

    const TensorView& o = args.output;
    params.out_stride[0] = o.stride[0];
    for (int a = 0; a < r; ++a) params.out_stride[1 + a] = o.stride[1 + a];
    params.out_stride[4] = o.stride[r + 1];
    if (args.lse.defined()) {
      params.lse_stride[0] = args.lse.stride[0];
      for (int a = 0; a < r; ++a) params.lse_stride[1 + a] = args.lse.stride[1 + a];
      params.lse_stride[4] = args.lse.stride[r + 1];
    }

    const bool per_batch = per_batch_launches(args, r);
    const ElementType element = p.dtype == DType::bf16 ? ElementType::bf16 : ElementType::f16;
    const int64_t kv_tokens = kv_tile_tokens(static_cast<int>(std::max(p.head_dim, p.head_dim_v)));

    const DeviceGuard guard(args.query.device.index);
    launch.stream = static_cast<cudaStream_t>(options.stream);
    // Persistent: one CTA per SM (one fits), each taking items in turn.
    const int64_t sms = multiprocessors(args.query.device.index);
    launch.grid = dim3(static_cast<unsigned>(
        forward_shape().persistent && sms > 0 ? std::min<int64_t>(params.items, sms) : params.items));
    const int64_t launches = per_batch ? p.batch : 1;
    for (int64_t b = 0; b < launches; ++b) {
      int64_t q_box[3], kv_box[3];
      tile_boxes(p, tiles, params.q_split_log2, params.kv_split_log2, q_box, kv_box);
      launch.maps.q = token_map(p, args.query, r, q_box, true, per_batch, b, &params.q_coords);
      launch.maps.k = token_map(p, args.key, r, kv_box, true, per_batch, b, &params.k_coords);
      launch.maps.v = token_map(p, args.value, r, kv_box, true, per_batch, b, &params.v_coords);
      if (args.extra_key.defined()) {
        const int64_t extra_box[3] = {kv_tokens, 1, 1};
        launch.maps.extra_k =
            token_map(p, args.extra_key, 1, extra_box, false, per_batch, b, &params.extra_k_coords);
        launch.maps.extra_v =
            token_map(p, args.extra_value, 1, extra_box, false, per_batch, b, &params.extra_v_coords);
      }
      const int64_t batch_offset = per_batch ? b : 0;
      params.out = static_cast<char*>(o.data) + batch_offset * o.stride[0] * 2;
      params.lse = args.lse.defined()
                       ? static_cast<float*>(args.lse.data) + batch_offset * args.lse.stride[0]
                       : nullptr;
      launch_forward(element, static_cast<int>(p.head_dim), static_cast<int>(p.head_dim_v), launch);
    }
  }

  std::string cannot_run_tensors(const Problem& p, const BackwardArgs& args) const override {
    return p.empty() ? "" : backward_tensor_error(args);
  }

  void backward(const Problem& p, const BackwardArgs& args, const Options& options) const override {
    // An empty problem only zeroes gradients nobody attends to; the generic
    // backend does that for any layout.
    if (p.empty()) return detail::cuda_generic_backend()->backward(p, args, options);
    run_backward(p, args, options);
  }
};

}  // namespace

void count_forward_tiles(unsigned long long* device_counts) {
  forward_tile_counts.store(device_counts, std::memory_order_relaxed);
}

}  // namespace gna::sm90

namespace gna::detail {
const Backend* sm90_backend() {
  static const sm90::Sm90Backend backend;
  return &backend;
}
}  // namespace gna::detail
