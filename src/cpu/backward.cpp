// The cpu backend's backward: prepares what its passes share and runs them
// (src/cpu/passes.hpp). Fusing dQ into the key pass saves recomputing S and
// dP per pair (5 products per pair instead of 7), but two key tiles that
// share a query must never add to its dQ row at the same time. So the key
// tiles are grouped into blocks: along some axes, bands (runs of whole
// spans) wide enough that only neighbouring bands share queries; along the
// others, the whole axis. Blocks whose bands have the same parities on
// every banded axis share no query: they form one phase and run in
// parallel, phase after phase. Each block is one work item that walks its
// tiles in order, so the sums are in a fixed order for any thread count,
// and a backward pauses at most 2^rank times (usually once or not at all).
// Windows so wide that no choice of axes gives every phase
// kMinItemsPerPhase items keep dQ apart.
#include <algorithm>
#include <utility>

#include "cpu/passes.hpp"
#include "cpu/thread_pool.hpp"

namespace gna::cpu {
namespace {

// Items per phase for the threads to share fairly. Fewer mean windows so
// wide that recomputing S and dP in a query pass costs less than idle threads.
constexpr int64_t kMinItemsPerPhase = 8;

// The in-group query range the key tiles of spans [first, last] of axis a
// reach together. Both ends of the ranges are monotone in the position, so
// the outer spans give it unless one of them reaches nothing.
window::Range band_reach(const Tiling& t, int a, size_t first, size_t last) {
  const AxisReach& reach = t.reach[static_cast<size_t>(a)];
  auto of = [&](size_t i) {
    const AxisSpan& s = t.spans[a][i];
    return window::Range{reach.of(s.group, s.first).lo, reach.of(s.group, s.last).hi};
  };
  const window::Range lo = of(first), hi = of(last);
  if (!lo.empty() && !hi.empty()) return {lo.lo, hi.hi};
  window::Range u{0, -1};
  for (size_t i = first; i <= last; ++i) {
    const window::Range r = of(i);
    if (r.empty()) continue;
    u = u.empty() ? r : window::Range{std::min(u.lo, r.lo), std::max(u.hi, r.hi)};
  }
  return u;
}

// Bands of `width` spans along axis a, per dilation group: [first, last]
// span indices and the band's phase (its index in the group, modulo 2).
// Empty when some band would share a query with the next band but one.
struct AxisBand {
  size_t first = 0, last = 0;
  int phase = 0;
};

std::vector<AxisBand> bands_along(const Tiling& t, int a, size_t width) {
  const std::vector<AxisSpan>& spans = t.spans[a];
  std::vector<AxisBand> bands;
  for (size_t first = 0; first < spans.size();) {
    size_t last = first;  // the band ends at `width` spans or its group's end
    while (last + 1 < spans.size() && last + 1 - first < width &&
           spans[last + 1].group == spans[first].group) {
      ++last;
    }
    const bool same_group = !bands.empty() && spans[bands.back().first].group == spans[first].group;
    bands.push_back({first, last, same_group ? 1 - bands.back().phase : 0});
    first = last + 1;
  }
  for (size_t i = 0; i + 2 < bands.size(); ++i) {
    if (spans[bands[i].first].group != spans[bands[i + 2].first].group) continue;
    const window::Range r = band_reach(t, a, bands[i].first, bands[i].last);
    const window::Range later = band_reach(t, a, bands[i + 2].first, bands[i + 2].last);
    if (!r.empty() && !later.empty() && later.lo <= r.hi) return {};
  }
  return bands;
}

// The narrowest valid bands along axis a, searched in steps of an eighth
// of the width (a few dozen tries even for axes of thousands of spans); one
// band per group is always valid.
std::vector<AxisBand> narrowest_bands(const Tiling& t, int a) {
  const size_t n = t.spans[a].size();
  for (size_t width = 1;; width += std::max<size_t>(1, width / 8)) {
    std::vector<AxisBand> bands = bands_along(t, a, std::min(width, n));
    if (!bands.empty() || width >= n) return bands;
  }
}

// Blocks of key tiles (boxes of one band per banded axis, whole along the
// others), per phase (the parities of the block's bands), each block's
// tiles in row-major order. The banded axes are the fewest whose phases
// all hold at least kMinItemsPerPhase items: blocks of every batch, or of
// every batch and kv head where no choice of axes gives enough blocks
// (job.block_per_head); nothing when neither does.
std::vector<std::vector<std::vector<int64_t>>> band_tiles(const Problem& p, const Tiling& t,
                                                          bool* per_head) {
  const int64_t kv_items = p.kv_heads / t.head_group;  // key tiles per (batch, tile)
  std::vector<AxisBand> bands[kMaxSpatialRank];
  int64_t in_phase[kMaxSpatialRank][2] = {};
  for (int a = 0; a < t.rank; ++a) {
    bands[a] = narrowest_bands(t, a);
    for (const AxisBand& b : bands[a]) ++in_phase[a][b.phase];
  }
  // One item for all kv heads first (a tile's walk and gathered steps then
  // serve them all, which saves more than a pause between phases costs);
  // then fewest phases; then most items.
  int chosen = -1;
  int64_t chosen_phases = 0, chosen_items = 0;
  bool chosen_per_head = false;
  for (int mask = 0; mask < (1 << t.rank); ++mask) {
    int64_t phases = 1, blocks = p.batch;
    for (int a = 0; a < t.rank; ++a) {
      if (!(mask >> a & 1)) continue;
      const bool split = in_phase[a][1] > 0;
      phases *= split ? 2 : 1;
      blocks *= split ? std::min(in_phase[a][0], in_phase[a][1]) : in_phase[a][0];
    }
    for (bool split_heads : {false, true}) {
      const int64_t items = blocks * (split_heads ? kv_items : 1);
      if (items < kMinItemsPerPhase) continue;
      const bool better =
          chosen < 0 || (chosen_per_head && !split_heads) ||
          (chosen_per_head == split_heads &&
           (phases < chosen_phases || (phases == chosen_phases && items > chosen_items)));
      if (better) {
        chosen = mask;
        chosen_phases = phases;
        chosen_items = items;
        chosen_per_head = split_heads;
      }
    }
  }
  if (chosen < 0) return {};
  *per_head = chosen_per_head;
  // Per tile: its block (mixed radix of its bands) and phase (of parities).
  std::vector<std::vector<int64_t>> tiles_of_block;
  std::vector<int64_t> phase_of_block;
  std::vector<size_t> band_of[kMaxSpatialRank];
  int64_t blocks = 1;
  for (int a = 0; a < t.rank; ++a) {
    if (!(chosen >> a & 1)) continue;
    band_of[a].resize(t.spans[a].size());
    for (size_t i = 0; i < bands[a].size(); ++i) {
      for (size_t sp = bands[a][i].first; sp <= bands[a][i].last; ++sp) band_of[a][sp] = i;
    }
    blocks *= static_cast<int64_t>(bands[a].size());
  }
  tiles_of_block.resize(static_cast<size_t>(blocks));
  phase_of_block.resize(static_cast<size_t>(blocks));
  for (int64_t tile = 0; tile < t.count(); ++tile) {
    int64_t rest = tile, block = 0, radix = 1, phase = 0, phase_radix = 1;
    for (int a = t.rank - 1; a >= 0; --a) {
      const int64_t n = static_cast<int64_t>(t.spans[a].size());
      const size_t span = static_cast<size_t>(rest % n);
      rest /= n;
      if (!(chosen >> a & 1)) continue;
      const size_t band = band_of[a][span];
      block += static_cast<int64_t>(band) * radix;
      radix *= static_cast<int64_t>(bands[a].size());
      if (in_phase[a][1] == 0) continue;  // one band per group: no parity
      phase += bands[a][band].phase * phase_radix;
      phase_radix *= 2;
    }
    tiles_of_block[static_cast<size_t>(block)].push_back(tile);
    phase_of_block[static_cast<size_t>(block)] = phase;
  }
  std::vector<std::vector<std::vector<int64_t>>> phases(static_cast<size_t>(chosen_phases));
  for (size_t b = 0; b < tiles_of_block.size(); ++b) {
    if (tiles_of_block[b].empty()) continue;
    phases[static_cast<size_t>(phase_of_block[b])].push_back(std::move(tiles_of_block[b]));
  }
  phases.erase(std::remove_if(phases.begin(), phases.end(),
                              [](const auto& ph) { return ph.empty(); }),
               phases.end());
  return phases;
}

// The key tiles and, when dQ is fused, their blocks per phase: tiles of a
// head group where that tiling fuses too (fewer items per tile might leave
// too few per phase), else tiles of one head.
Tiling key_tiling_of(const Problem& p, std::vector<std::vector<std::vector<int64_t>>>* phases,
                     bool* per_head) {
  const int lanes = simd_lanes();
  Tiling t = best_tiling(p, lanes, Looks::at_queries);
  *phases = band_tiles(p, t, per_head);
  if (t.head_group > 1 && phases->empty()) {
    Tiling single = make_tiling(p, lanes, Looks::at_queries);
    auto fused = band_tiles(p, single, per_head);
    if (!fused.empty()) {
      *phases = std::move(fused);
      return single;
    }
  }
  return t;
}

}  // namespace

int backward_phases(const Problem& p) {
  bool per_head = false;
  std::vector<std::vector<std::vector<int64_t>>> phases;
  key_tiling_of(p, &phases, &per_head);
  return static_cast<int>(phases.size());
}

void backward_pass(const Problem& p, const BackwardArgs& args, int threads) {
  BackwardJob job;
  job.problem = &p;
  job.args = &args;
  job.tokens = p.tokens();
  const int lanes = simd_lanes();
  job.query_tiling = make_tiling(p, lanes, Looks::at_keys);
  job.key_tiling = key_tiling_of(p, &job.blocks_of_phase, &job.block_per_head);
  job.query.prepare(args.query, p.rank(), threads);
  job.key.prepare(args.key, p.rank(), threads);
  job.value.prepare(args.value, p.rank(), threads);
  job.output.prepare(args.output, p.rank(), threads);
  job.grad_output.prepare(args.grad_output, p.rank(), threads);
  const int g = job.key_tiling.head_group;
  if (g > 1) {
    // Kept per calling thread: one call at a time on each.
    thread_local AlignedFloats queries, grad_outputs;
    job.grouped_query.prepare_grouped(args.query, p.rank(), g, threads, queries);
    job.grouped_grad_output.prepare_grouped(args.grad_output, p.rank(), g, threads, grad_outputs);
  }
  job.extra_key.prepare(args.extra_key, 1, threads);
  job.extra_value.prepare(args.extra_value, 1, threads);
  for (int a = p.rank() - 1; a >= 0; --a) {
    job.token_stride[a] = a == p.rank() - 1 ? 1 : job.token_stride[a + 1] * p.extent[a + 1];
  }
  const size_t rows = static_cast<size_t>(p.batch * p.tokens() * p.heads);
  job.delta.resize(rows);
  job.lse2.resize(rows);
  if (g > 1) {
    job.grouped_delta.resize(rows / g * kHeadBlock);
    job.grouped_lse2.resize(rows / g * kHeadBlock);
  }
  job.scale2 = static_cast<float>(p.scale()) * kLog2e;
  job.fused = !job.blocks_of_phase.empty();
  if (job.fused) {
    job.dq_stride = (p.head_dim + lanes - 1) / lanes * lanes;
    job.dq = hwy::AllocateAligned<float>(rows * static_cast<size_t>(job.dq_stride));
  }

  delta_pass(job, threads);
  if (job.fused) {
    for (size_t phase = 0; phase < job.blocks_of_phase.size(); ++phase) {
      key_pass(job, threads, &job.blocks_of_phase[phase], phase + 1 == job.blocks_of_phase.size());
    }
  } else {
    key_pass(job, threads, nullptr, true);
  }
  query_pass(job, threads);
}

}  // namespace gna::cpu
