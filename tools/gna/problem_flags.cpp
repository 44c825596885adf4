#include "problem_flags.hpp"

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

}  // namespace gna::cli
