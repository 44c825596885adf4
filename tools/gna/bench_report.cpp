#include "bench_report.hpp"

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "cli.hpp"
#include "gna/error.hpp"
#include "gna/sim.hpp"
#if GNA_WITH_CPU
#include "cpu/passes.hpp"
#endif

namespace gna::cli {
namespace {

// The tiles the sm90 kernel of the timed pass would pick for this problem
// (whichever backend ran), or why it has none.
struct SimLine {
  bool found = false;
  std::string tiles, why_none;
  double tile_bound = 0.0, predicted_s = 0.0;
  double padded_flops = 0.0;  // FLOPs of the work the tiles really do
};

SimLine simulate_pick(const Problem& p, bool backward) {
  SimLine line;
  try {
    if (backward) {
      const sim::RankedBackwardTiles pick = sim::choose_backward_tiles(p);
      line.tiles = pick.tiles.describe();
      line.tile_bound = pick.sim.tile_bound;
      line.predicted_s = pick.predicted_s;
      line.padded_flops = 2.0 * static_cast<double>(pick.sim.work_done) *
                          static_cast<double>(p.batch * p.kv_heads) *
                          static_cast<double>(3 * p.head_dim + 2 * p.head_dim_v);
    } else {
      const sim::RankedTiles pick = sim::choose_tiles(p);
      line.tiles = pick.tiles.describe();
      line.tile_bound = pick.sim.tile_bound;
      line.predicted_s = pick.predicted_s;
      line.padded_flops = 2.0 * static_cast<double>(pick.sim.work_done) *
                          static_cast<double>(p.batch * p.heads) *
                          static_cast<double>(p.head_dim + p.head_dim_v);
    }
    line.found = true;
  } catch (const Error& e) {
    line.why_none = e.what();
  }
  return line;
}

}  // namespace

void print_bench(const BenchResult& r, bool json) {
  const Problem& p = r.problem;
  const double flops = r.backward ? p.backward_flops() : p.forward_flops();
  const double tflops = flops / (r.median_ms * 1e-3) / 1e12;
  // Dense attention over the same tokens does this many times more work.
  const double flop_bound = p.dense_forward_flops() / p.forward_flops();
  const SimLine sim = simulate_pick(p, r.backward);
  if (json) {
    std::cout << "{\"backend\": " << json_string(r.backend)
              << ", \"device\": " << json_string(r.device)
              << ", \"problem\": " << json_string(p.describe())
              << ", \"pass\": " << json_string(r.backward ? "backward" : "forward")
              << ", \"time_ms\": " << json_number(r.median_ms)
              << ", \"min_time_ms\": " << json_number(r.min_ms)
              << ", \"iters\": " << r.iters
              << ", \"flops\": " << json_number(flops)
              << ", \"tflops\": " << json_number(tflops)
              << ", \"flop_bound\": " << json_number(flop_bound)
              << ", \"sim_tiles\": " << (sim.found ? json_string(sim.tiles) : "null")
              << ", \"tile_bound\": " << (sim.found ? json_number(sim.tile_bound) : "null")
              << ", \"predicted_ms\": " << (sim.found ? json_number(sim.predicted_s * 1e3) : "null")
              << "}\n";
    return;
  }
  std::printf("backend     %s on %s\n", r.backend.c_str(), r.device.c_str());
  std::printf("problem     %s\n", p.describe().c_str());
  std::printf("pass        %s\n", r.backward ? "backward" : "forward");
  std::printf("time        %.4f ms (median of %lld, min %.4f)\n", r.median_ms,
              static_cast<long long>(r.iters), r.min_ms);
  std::printf("useful      %.3f TFLOP/s (%.4g FLOP)\n", tflops, flops);
  std::printf("flop bound  %.2fx less work than dense attention of the same size\n", flop_bound);
#if GNA_WITH_CPU
  if (r.backend == "cpu") std::printf("cpu tiles   %s\n", cpu::describe_tiles(p).c_str());
#endif
  if (!sim.found) {
    std::printf("sim         no sm90 tiles: %s\n", sim.why_none.c_str());
    return;
  }
  std::printf("sim tiles   %s (the tiles the sm90 kernel would use)\n", sim.tiles.c_str());
  std::printf("sim bound   tile bound %.2fx (dense work / tile work), predicted %.4f ms\n",
              sim.tile_bound, sim.predicted_s * 1e3);
  if (r.backend == "sm90") {
    // Throughput on the work the tiles really do: how close the MMAs run to peak.
    std::printf("sim work    %.3f TFLOP/s on the padded tile work\n",
                sim.padded_flops / (r.median_ms * 1e-3) / 1e12);
  }
}

}  // namespace gna::cli
