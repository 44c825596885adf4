#include "problem_flags.hpp"

#include <algorithm>

namespace gna::cli {

std::vector<Option> window_options() {
  return {
      {"shape", "X0[xX1[xX2]]", "spatial extents; their count is the rank (1 to 3)"},
      {"window", "K0[xK1..]", "kernel (window) size per axis"},
      {"stride", "S0[xS1..]", "stride per axis (default 1)"},
      {"dilation", "D0[xD1..]", "dilation per axis (default 1)"},
      {"causal", "C0[xC1..]", "causal flag per axis, 0 or 1 (default 0)"},
  };
}

namespace {

std::vector<int64_t> tile_extents(const Command& cmd, const std::string& option, int rank) {
  const std::vector<int64_t> e = parse_ints(option, cmd.text(option, ""));
  if (static_cast<int>(e.size()) != rank) {
    throw UsageError("--" + option + " has " + std::to_string(e.size()) +
                     " extents but --shape has " + std::to_string(rank));
  }
  for (int64_t v : e) {
    if (v < 1) throw UsageError("--" + option + ": every extent must be >= 1");
  }
  return e;
}

}  // namespace

KvTiling parse_tiling(const std::string& s) {
  if (s == "static") return KvTiling::fixed_grid;
  if (s == "dynamic") return KvTiling::window_start;
  throw UsageError("--kv-tiling must be static or dynamic, got '" + s + "'");
}

std::optional<TileConfig> given_tiles(const Command& cmd, int rank) {
  if (cmd.has("q-tile") != cmd.has("kv-tile")) {
    throw UsageError("--q-tile and --kv-tile go together (or leave both out to let the chooser pick)");
  }
  if (!cmd.has("q-tile")) return std::nullopt;
  TileConfig t;
  t.rank = rank;
  const auto q = tile_extents(cmd, "q-tile", rank), kv = tile_extents(cmd, "kv-tile", rank);
  std::copy(q.begin(), q.end(), t.q_tile);
  std::copy(kv.begin(), kv.end(), t.kv_tile);
  t.kv_tiling = parse_tiling(cmd.text("kv-tiling", "dynamic"));
  return t;
}

namespace {

// Expands a per-axis list to `rank` entries, broadcasting a single value.
template <typename T>
std::vector<T> per_axis(const std::string& option, std::vector<T> values, size_t rank) {
  if (values.size() == 1 && rank > 1) values.assign(rank, values[0]);
  if (values.size() != rank) {
    throw UsageError("--" + option + " has " + std::to_string(values.size()) +
                     " entries but --shape has " + std::to_string(rank));
  }
  return values;
}

}  // namespace

Problem window_problem(const Command& cmd, const std::string& default_shape,
                       const std::string& default_window) {
  if (default_shape.empty() && !cmd.has("shape")) throw UsageError("--shape is required");
  if (default_window.empty() && !cmd.has("window")) throw UsageError("--window is required");
  const std::vector<int64_t> shape = parse_ints("shape", cmd.text("shape", default_shape));
  if (shape.empty() || shape.size() > kMaxSpatialRank) {
    throw UsageError("--shape needs 1 to 3 extents, like 64x64");
  }
  const size_t r = shape.size();
  const auto window = per_axis("window", parse_ints("window", cmd.text("window", default_window)), r);
  const auto stride = per_axis("stride", parse_ints("stride", cmd.text("stride", "1")), r);
  const auto dilation = per_axis("dilation", parse_ints("dilation", cmd.text("dilation", "1")), r);
  const auto causal = per_axis("causal", parse_bools("causal", cmd.text("causal", "0")), r);
  Problem p;
  p.params.rank = static_cast<int>(r);
  for (size_t a = 0; a < r; ++a) {
    p.extent[a] = shape[a];
    p.params.axis[a] = AxisParams{window[a], stride[a], dilation[a], causal[a]};
  }
  validate(p);
  return p;
}

std::vector<Option> tile_options() {
  return {
      {"q-tile", "T0[xT1..]", "query tile extents per axis (with --kv-tile)"},
      {"kv-tile", "T0[xT1..]", "KV tile extents per axis (with --q-tile)"},
      {"kv-tiling", "static|dynamic", "KV tiles on a fixed grid or at each window start (default dynamic)"},
  };
}

DType parse_dtype(const std::string& s) {
  if (s == "f16" || s == "float16" || s == "fp16") return DType::f16;
  if (s == "bf16" || s == "bfloat16") return DType::bf16;
  if (s == "f32" || s == "float32" || s == "fp32") return DType::f32;
  if (s == "f64" || s == "float64" || s == "fp64") return DType::f64;
  throw UsageError("--dtype must be f16, bf16, f32 or f64, got '" + s + "'");
}

}  // namespace gna::cli
