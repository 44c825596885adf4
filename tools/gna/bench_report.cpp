#include "bench_report.hpp"

#include <cstdio>
#include <iostream>

#include "cli.hpp"

namespace gna::cli {

void print_bench(const BenchResult& r, bool json) {
  const Problem& p = r.problem;
  const double flops = r.backward ? p.backward_flops() : p.forward_flops();
  const double tflops = flops / (r.median_ms * 1e-3) / 1e12;
  // Dense attention over the same tokens does this many times more work.
  const double flop_bound = p.dense_forward_flops() / p.forward_flops();
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
              << ", \"flop_bound\": " << json_number(flop_bound) << "}\n";
    return;
  }
  std::printf("backend     %s on %s\n", r.backend.c_str(), r.device.c_str());
  std::printf("problem     %s\n", p.describe().c_str());
  std::printf("pass        %s\n", r.backward ? "backward" : "forward");
  std::printf("time        %.4f ms (median of %lld, min %.4f)\n", r.median_ms,
              static_cast<long long>(r.iters), r.min_ms);
  std::printf("useful      %.3f TFLOP/s (%.4g FLOP)\n", tflops, flops);
  std::printf("flop bound  %.2fx less work than dense attention of the same size\n", flop_bound);
}

}  // namespace gna::cli
