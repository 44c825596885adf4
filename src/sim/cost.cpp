// The time model: per-CTA cost from its tile loads, then CTAs onto SMs.
#include <algorithm>
#include <utility>
#include <vector>

#include "gna/sim.hpp"
#include "sim/makespan.hpp"

namespace gna::sim {

// Heaviest CTAs first, each bucket of equal CTAs spread over the least loaded
// SMs: whole rounds go to every SM (a full wave), the rest to the least
// loaded. Exact wave quantization for uniform work, LPT-like otherwise.
double makespan(std::vector<CtaCost> ctas, int sms) {
  std::sort(ctas.begin(), ctas.end(),
            [](const CtaCost& x, const CtaCost& y) { return x.seconds > y.seconds; });
  std::vector<double> busy(static_cast<size_t>(sms), 0.0);  // kept ascending
  for (const CtaCost& c : ctas) {
    const double rounds = static_cast<double>(c.count / sms);
    const int64_t rest = c.count % sms;
    if (rounds > 0) {
      for (double& b : busy) b += rounds * c.seconds;
    }
    for (int64_t i = 0; i < rest; ++i) busy[static_cast<size_t>(i)] += c.seconds;
    if (rest > 0) std::sort(busy.begin(), busy.end());
  }
  return busy.back();
}

namespace {

double tile_mma_seconds(const Problem& p, const TileConfig& tiles, const CostModel& cost) {
  const double flops = 2.0 * static_cast<double>(tiles.q_tokens() * tiles.kv_tokens()) *
                       static_cast<double>(p.head_dim + p.head_dim_v);
  return flops / (cost.peak_flops / cost.sms);
}

double cta_seconds(int64_t visited, int64_t masked, double mma_s, const CostModel& cost) {
  return cost.per_query_tile_s + static_cast<double>(visited) * (mma_s + cost.per_kv_tile_s) +
         static_cast<double>(masked) * cost.mask_fraction * mma_s;
}

}  // namespace

double predict_seconds(const Problem& p, const TileConfig& tiles, const SimResult& r,
                       const CostModel& cost) {
  const double mma_s = tile_mma_seconds(p, tiles, cost);
  std::vector<CtaCost> ctas;
  for (const TileLoad& l : r.loads) {
    ctas.push_back({cta_seconds(l.visited, l.masked, mma_s, cost), l.count * p.batch * p.heads});
  }
  return ctas.empty() ? 0.0 : makespan(std::move(ctas), cost.sms);
}

double predict_dense_seconds(const Problem& p, const TileConfig& tiles, const CostModel& cost) {
  const int64_t tokens = p.tokens();
  const int64_t keys = tokens + p.extra_kv;
  if (p.empty() || keys == 0) return 0.0;
  const int64_t q = tiles.q_tokens(), kv = tiles.kv_tokens();
  // Keys and additional KV form one sequence; only its ragged end is masked.
  const int64_t visited = (keys + kv - 1) / kv;
  const int64_t masked = keys % kv ? 1 : 0;
  const int64_t ctas = (tokens + q - 1) / q * p.batch * p.heads;
  const double seconds = cta_seconds(visited, masked, tile_mma_seconds(p, tiles, cost), cost);
  return makespan({{seconds, ctas}}, cost.sms);
}

}  // namespace gna::sim
