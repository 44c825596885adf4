#include "tile_sweep.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "gna/attention.hpp"
#include "gna/sim.hpp"
#include "harness/buffer.hpp"

namespace gna::cli {
namespace {

struct Measured {
  sim::RankedTiles ranked;
  double ms = 0.0;
};

double median_ms(const Problem& p, const harness::Tensors& tensors, const TileConfig& tiles,
                 int64_t iters) {
  Options options;
  options.backend = "sm90";
  options.tiles = tiles;
  forward(p.params, tensors.forward_args(), options);  // warm-up
  harness::Timer timer(tensors.device());
  std::vector<double> times;
  for (int64_t i = 0; i < iters; ++i) {
    timer.start();
    forward(p.params, tensors.forward_args(), options);
    times.push_back(timer.stop_ms());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

std::string row_json(const Measured& m) {
  const sim::SimResult& s = m.ranked.sim;
  return "{\"tiles\": " + json_string(m.ranked.tiles.describe()) +
         ", \"measured_ms\": " + json_number(m.ms) +
         ", \"predicted_ms\": " + json_number(m.ranked.predicted_s * 1e3) +
         ", \"tile_bound\": " + json_number(s.tile_bound) +
         ", \"visited_kv_tiles\": " + json_number(static_cast<double>(s.visited_kv_tiles)) +
         ", \"masked_kv_tiles\": " + json_number(static_cast<double>(s.masked_kv_tiles)) +
         ", \"q_tiles\": " + json_number(static_cast<double>(s.q_tiles)) + "}";
}

}  // namespace

int run_tile_sweep(const Problem& p, const harness::Tensors& tensors, int64_t top, int64_t iters,
                   bool json) {
  const std::vector<sim::RankedTiles> ranked = sim::rank_tiles(p, sim::sm90_candidates(p));
  if (ranked.empty()) throw UsageError("no sm90 tile configuration fits this problem");
  std::vector<Measured> rows;
  for (size_t i = 0; i < ranked.size() && static_cast<int64_t>(i) < top; ++i) {
    rows.push_back({ranked[i], median_ms(p, tensors, ranked[i].tiles, iters)});
  }
  const Measured& pick = rows.front();  // the chooser's pick is the top-ranked one
  const Measured& best =
      *std::min_element(rows.begin(), rows.end(),
                        [](const Measured& a, const Measured& b) { return a.ms < b.ms; });
  if (json) {
    std::vector<std::string> items;
    for (const Measured& m : rows) items.push_back(row_json(m));
    std::cout << "{\"problem\": " << json_string(p.describe())
              << ", \"candidates\": " << ranked.size() << ", \"swept\": " << rows.size()
              << ", \"pick\": " << row_json(pick) << ", \"best\": " << row_json(best)
              << ", \"pick_over_best\": " << json_number(pick.ms / best.ms)
              << ", \"results\": " << json_list(items) << "}\n";
    return 0;
  }
  std::printf("%s\n%zu candidates, %zu swept (best predicted first)\n", p.describe().c_str(),
              ranked.size(), rows.size());
  std::printf("%-32s %11s %12s %10s %8s %8s\n", "tiles", "measured ms", "predicted ms",
              "tile bound", "visited", "masked");
  for (const Measured& m : rows) {
    std::printf("%-32s %11.4f %12.4f %10.2f %8lld %8lld\n", m.ranked.tiles.describe().c_str(),
                m.ms, m.ranked.predicted_s * 1e3, m.ranked.sim.tile_bound,
                static_cast<long long>(m.ranked.sim.visited_kv_tiles),
                static_cast<long long>(m.ranked.sim.masked_kv_tiles));
  }
  std::printf("chooser's pick %s: %.4f ms; best measured %s: %.4f ms (pick / best = %.3f)\n",
              pick.ranked.tiles.describe().c_str(), pick.ms, best.ranked.tiles.describe().c_str(),
              best.ms, pick.ms / best.ms);
  return 0;
}

}  // namespace gna::cli
