// The cpu backend's backward: prepares what its passes share and runs them
// (src/cpu/passes.hpp). Fusing dQ into the key pass saves recomputing S and
// dP per pair (5 products per pair instead of 7), but needs the key tiles
// in colors of disjoint queries; more colors than kMaxColors mean windows
// so wide that the pauses between colors would cost more than they save.
#include <algorithm>

#include "cpu/passes.hpp"
#include "cpu/thread_pool.hpp"

namespace gna::cpu {
namespace {

constexpr int64_t kMaxColors = 64;

// Colors of the spans along one axis: spans of one dilation group whose
// query ranges overlap get different colors (index within the group modulo
// the most spans any query range meets). Returns the color count.
int64_t color_axis(const Tiling& t, int a, std::vector<int64_t>& color) {
  const std::vector<AxisSpan>& spans = t.spans[a];
  const AxisReach& reach = t.reach[static_cast<size_t>(a)];
  auto range = [&](size_t i) {
    return window::Range{reach.of(spans[i].group, spans[i].first).lo,
                         reach.of(spans[i].group, spans[i].last).hi};
  };
  int64_t colors = 1;
  for (size_t i = 0; i < spans.size(); ++i) {
    const window::Range r = range(i);
    if (r.empty()) continue;
    // Ranges are monotone: the first later one past r ends the search.
    size_t last_met = i;
    for (size_t j = i + 1; j < spans.size() && spans[j].group == spans[i].group; ++j) {
      const window::Range other = range(j);
      if (other.empty()) continue;
      if (other.lo > r.hi) break;
      last_met = j;
    }
    colors = std::max(colors, static_cast<int64_t>(last_met - i + 1));
  }
  color.assign(spans.size(), 0);
  int64_t in_group = 0;
  for (size_t i = 0; i < spans.size(); ++i) {
    in_group = i > 0 && spans[i].group == spans[i - 1].group ? in_group + 1 : 0;
    color[i] = in_group % colors;
  }
  return colors;
}

// The key tiles of every color, or nothing when there would be too many.
std::vector<std::vector<int64_t>> color_tiles(const Tiling& t) {
  std::vector<int64_t> color[kMaxSpatialRank];
  int64_t count[kMaxSpatialRank] = {1, 1, 1}, colors = 1;
  for (int a = 0; a < t.rank; ++a) {
    count[a] = color_axis(t, a, color[a]);
    colors *= count[a];
    if (colors > kMaxColors) return {};
  }
  std::vector<std::vector<int64_t>> tiles(static_cast<size_t>(colors));
  for (int64_t tile = 0; tile < t.count(); ++tile) {
    int64_t rest = tile, c = 0, radix = 1;
    for (int a = t.rank - 1; a >= 0; --a) {
      const int64_t n = static_cast<int64_t>(t.spans[a].size());
      c += color[a][static_cast<size_t>(rest % n)] * radix;
      radix *= count[a];
      rest /= n;
    }
    tiles[static_cast<size_t>(c)].push_back(tile);
  }
  return tiles;
}

}  // namespace

bool backward_is_fused(const Problem& p) {
  return !color_tiles(make_tiling(p, simd_lanes(), Looks::at_queries)).empty();
}

void backward_pass(const Problem& p, const BackwardArgs& args, int threads) {
  BackwardJob job;
  job.problem = &p;
  job.args = &args;
  job.tokens = p.tokens();
  const int lanes = simd_lanes();
  job.query_tiling = make_tiling(p, lanes, Looks::at_keys);
  job.key_tiling = make_tiling(p, lanes, Looks::at_queries);
  job.query.prepare(args.query, p.rank(), threads);
  job.key.prepare(args.key, p.rank(), threads);
  job.value.prepare(args.value, p.rank(), threads);
  job.output.prepare(args.output, p.rank(), threads);
  job.grad_output.prepare(args.grad_output, p.rank(), threads);
  job.extra_key.prepare(args.extra_key, 1, threads);
  job.extra_value.prepare(args.extra_value, 1, threads);
  for (int a = p.rank() - 1; a >= 0; --a) {
    job.token_stride[a] = a == p.rank() - 1 ? 1 : job.token_stride[a + 1] * p.extent[a + 1];
  }
  const size_t rows = static_cast<size_t>(p.batch * p.tokens() * p.heads);
  job.delta.resize(rows);
  job.lse2.resize(rows);
  job.scale2 = static_cast<float>(p.scale()) * kLog2e;
  job.tiles_of_color = color_tiles(job.key_tiling);
  job.fused = !job.tiles_of_color.empty();
  if (job.fused) {
    job.dq_stride = (p.head_dim + lanes - 1) / lanes * lanes;
    job.dq.assign(rows * static_cast<size_t>(job.dq_stride), 0.0f);
  }

  delta_pass(job, threads);
  if (job.fused) {
    for (size_t c = 0; c < job.tiles_of_color.size(); ++c) {
      key_pass(job, threads, &job.tiles_of_color[c], c + 1 == job.tiles_of_color.size());
    }
  } else {
    key_pass(job, threads, nullptr, true);
  }
  query_pass(job, threads);
}

}  // namespace gna::cpu
