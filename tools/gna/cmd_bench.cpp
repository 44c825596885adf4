// gna bench: time one problem on the best (or a chosen) backend and report
// time, useful TFLOP/s and how far the window's FLOP bound is.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "bench_report.hpp"
#include "cli.hpp"
#include "gna/attention.hpp"
#include "harness/tensors.hpp"
#include "problem_flags.hpp"
#include "tile_sweep.hpp"

namespace gna::cli {
namespace {

Device parse_device(const std::string& s) {
  if (s == "auto") return cuda_device_count() > 0 ? Device{DeviceType::cuda, 0} : Device{};
  if (s == "cpu") return Device{};
  if (s == "cuda" || s.rfind("cuda:", 0) == 0) {
    const int index = s == "cuda" ? 0 : static_cast<int>(parse_ints("device", s.substr(5)).at(0));
    if (index < 0 || index >= cuda_device_count()) {
      throw UsageError("--device " + s + ": " + std::to_string(cuda_device_count()) +
                       " CUDA device(s) visible");
    }
    return Device{DeviceType::cuda, index};
  }
  throw UsageError("--device must be auto, cpu, cuda or cuda:N, got '" + s + "'");
}

}  // namespace

int run_bench(int argc, char** argv) {
  std::vector<Option> options = window_options();
  const std::vector<Option> more{
      {"heads", "H", "query heads"},
      {"kv-heads", "H", "key/value heads (GQA/MQA; default: --heads)"},
      {"dim", "D", "head dim of Q and K"},
      {"dim-v", "D", "head dim of V and O (default: --dim)"},
      {"batch", "B", "batch size (default 1)"},
      {"extra-kv", "N", "additional KV tokens every query attends to (default 0)"},
      {"dtype", "f16|bf16|f32|f64", "element type"},
      {"backend", "NAME", "auto (default), cpu, reference, cuda-generic or sm90"},
      {"device", "auto|cpu|cuda[:N]", "where tensors live (default: a GPU if there is one)"},
      {"backward", "", "time the backward pass instead of the forward (tile options then apply to it)"},
      {"deterministic", "", "bitwise-reproducible backward (Options::deterministic)"},
      {"warmup", "N", "untimed runs first"},
      {"iters", "N", "timed runs; the median is reported"},
      {"sweep", "N", "time the sm90 kernel on the simulator's N best tile configurations"},
      {"json", "", "print the result as JSON"},
  };
  options.insert(options.end(), more.begin(), more.end());
  const std::vector<Option> tiles = tile_options();
  options.insert(options.end(), tiles.begin(), tiles.end());
  Command cmd("bench",
              "Time one problem. Defaults: on a GPU the 2-D case 256x256, window 80x80,\n"
              "24 heads, dim 128, f16; on the CPU 64x64, window 13x13, 4 heads, dim 64, f32.",
              options);
  if (!cmd.parse(argc, argv)) return 0;
  const Device device = parse_device(cmd.text("device", "auto"));
  const bool gpu = device.type == DeviceType::cuda;

  Problem p = window_problem(cmd, gpu ? "256x256" : "64x64", gpu ? "80x80" : "13x13");
  p.heads = cmd.integer("heads", gpu ? 24 : 4);
  p.kv_heads = cmd.integer("kv-heads", p.heads);
  p.head_dim = cmd.integer("dim", gpu ? 128 : 64);
  p.head_dim_v = cmd.integer("dim-v", p.head_dim);
  p.batch = cmd.integer("batch", 1);
  p.extra_kv = cmd.integer("extra-kv", 0);
  p.dtype = parse_dtype(cmd.text("dtype", gpu ? "f16" : "f32"));
  validate(p);
  const bool backward = cmd.flag("backward");
  const int64_t warmup = cmd.integer("warmup", gpu ? 5 : 2);
  const int64_t iters = cmd.integer("iters", gpu ? 20 : 10);
  if (warmup < 0 || iters < 1) throw UsageError("--warmup must be >= 0 and --iters >= 1");

  harness::Tensors tensors(p, device, harness::Layout::contiguous);
  std::mt19937_64 rng(7);
  tensors.randomize_inputs(rng);
  if (cmd.has("sweep")) {
    const int64_t top = cmd.integer("sweep", 0);
    if (top < 1) throw UsageError("--sweep must be >= 1");
    return run_tile_sweep(p, tensors, top, iters, cmd.flag("json"));
  }
  Options run_options;
  run_options.backend = cmd.text("backend", "auto");
  run_options.tiles = given_tiles(cmd, p.rank());
  run_options.deterministic = cmd.flag("deterministic");

  // The forward runs once in any case: the backward needs its O and LSE.
  // Tile options name the timed pass's tiles, so that forward picks its own.
  Options forward_options = run_options;
  if (backward) forward_options.tiles.reset();
  forward_options.backend = "auto";
  std::string used = forward(p.params, tensors.forward_args(), backward ? forward_options : run_options);
  auto run_once = [&] {
    used = backward ? gna::backward(p.params, tensors.backward_args(), run_options)
                    : forward(p.params, tensors.forward_args(), run_options);
  };
  for (int64_t i = 0; i < warmup; ++i) run_once();
  harness::synchronize(device);
  std::vector<double> times;
  harness::Timer timer(device);
  for (int64_t i = 0; i < iters; ++i) {
    timer.start();
    run_once();
    times.push_back(timer.stop_ms());
  }
  std::sort(times.begin(), times.end());

  BenchResult result;
  result.problem = p;
  result.backend = used;
  result.device = harness::device_description(device);
  result.backward = backward;
  result.median_ms = times[times.size() / 2];
  result.min_ms = times.front();
  result.iters = iters;
  print_bench(result, cmd.flag("json"));
  return 0;
}

}  // namespace gna::cli
