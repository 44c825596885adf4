// gna sim: the tile simulator and chooser on the command line. With tiles it
// prints the exact tile figures of one configuration; without, the chooser's
// ranking of the sm90 kernel's shapes; with --find-stride, the smallest
// strides that leave no element mask.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "core/checked.hpp"
#include "gna/error.hpp"
#include "gna/sim.hpp"
#include "problem_flags.hpp"

namespace gna::cli {
namespace {

Problem sim_problem(const Command& cmd) {
  Problem p = window_problem(cmd, "", "");
  p.heads = p.kv_heads = cmd.integer("heads", 1);
  p.batch = cmd.integer("batch", 1);
  p.head_dim = p.head_dim_v = cmd.integer("dim", 128);
  p.extra_kv = cmd.integer("extra-kv", 0);
  const std::string dtype = cmd.text("dtype", "f16");
  if (dtype != "f16" && dtype != "bf16") {
    throw UsageError("--dtype must be f16 or bf16 (the sm90 kernel's types), got '" + dtype + "'");
  }
  p.dtype = dtype == "f16" ? DType::f16 : DType::bf16;
  validate(p);
  return p;
}

// CTAs of the launch: query tiles x heads x batch, a count like any other.
int64_t ctas(const Problem& p, const sim::SimResult& s) {
  return gna::detail::checked_product({s.q_tiles, p.heads, p.batch}, "batch",
                                      "CTAs, query tiles * heads * batch");
}

sim::RankedTiles score(const Problem& p, const TileConfig& t) {
  return sim::rank_tiles(p, {t}).front();
}

std::string extents_json(const int64_t* e, int rank) {
  return json_list(std::vector<int64_t>(e, e + rank));
}

std::string figures_json(const Problem& p, const sim::RankedTiles& r) {
  const sim::SimResult& s = r.sim;
  return "{\"tiles\": " + json_string(r.tiles.describe()) +
         ", \"q_tile\": " + extents_json(r.tiles.q_tile, p.rank()) +
         ", \"kv_tile\": " + extents_json(r.tiles.kv_tile, p.rank()) +
         ", \"kv_tiling\": " + json_string(kv_tiling_name(r.tiles.kv_tiling)) +
         ", \"q_tiles\": " + json_number(s.q_tiles) +
         ", \"ctas\": " + json_number(ctas(p, s)) +
         ", \"visited_kv_tiles\": " + json_number(s.visited_kv_tiles) +
         ", \"masked_kv_tiles\": " + json_number(s.masked_kv_tiles) +
         ", \"extra_kv_tiles\": " + json_number(s.extra_kv_tiles) +
         ", \"min_visited_per_q_tile\": " + json_number(s.min_visited) +
         ", \"max_visited_per_q_tile\": " + json_number(s.max_visited) +
         ", \"mean_visited_per_q_tile\": " + json_number(s.mean_visited()) +
         ", \"useful_work\": " + json_number(s.useful_work) +
         ", \"work_done\": " + json_number(s.work_done) +
         ", \"dense_work\": " + json_number(s.dense_work) +
         ", \"flop_bound\": " + json_number(s.flop_bound) +
         ", \"tile_bound\": " + json_number(s.tile_bound) +
         ", \"predicted_ms\": " + json_number(r.predicted_s * 1e3) +
         ", \"predicted_speedup\": " + json_number(r.predicted_speedup) + "}";
}

// The figures of `r` with the problem and `more` (", key: value" pairs) added.
std::string top_level_json(const Problem& p, const sim::RankedTiles& r, const std::string& more) {
  std::string s = figures_json(p, r);
  s.pop_back();
  return s + ", \"problem\": " + json_string(p.describe()) + more + "}";
}

void print_figures(const Problem& p, const sim::RankedTiles& r) {
  const sim::SimResult& s = r.sim;
  const double share = s.visited_kv_tiles ? 100.0 * s.masked_kv_tiles / s.visited_kv_tiles : 0.0;
  std::printf("problem      %s\n", p.describe().c_str());
  std::printf("tiles        %s\n", r.tiles.describe().c_str());
  std::printf("query tiles  %lld per head (%lld CTAs)\n", static_cast<long long>(s.q_tiles),
              static_cast<long long>(ctas(p, s)));
  std::printf("kv tiles     %lld visited (per query tile %lld..%lld, mean %.2f), %lld masked "
              "(%.1f%%), %lld of additional KV\n",
              static_cast<long long>(s.visited_kv_tiles), static_cast<long long>(s.min_visited),
              static_cast<long long>(s.max_visited), s.mean_visited(),
              static_cast<long long>(s.masked_kv_tiles), share,
              static_cast<long long>(s.extra_kv_tiles));
  std::printf("work         useful %lld, done %lld, dense %lld (query-key pairs per head)\n",
              static_cast<long long>(s.useful_work), static_cast<long long>(s.work_done),
              static_cast<long long>(s.dense_work));
  std::printf("bounds       flop bound %.2fx, tile bound %.2fx\n", s.flop_bound, s.tile_bound);
  std::printf("predicted    %.4f ms, %.2fx faster than dense under the same cost model\n",
              r.predicted_s * 1e3, r.predicted_speedup);
}

void print_ranking(const Problem& p, const std::vector<sim::RankedTiles>& top) {
  std::printf("problem  %s\nflop bound %.2fx; sm90 tile shapes ranked by predicted time:\n",
              p.describe().c_str(), top.front().sim.flop_bound);
  std::printf("%4s  %-30s %8s %10s %10s %10s %11s %9s\n", "rank", "tiles", "q_tiles", "visited",
              "masked", "tile_bound", "predicted", "speedup");
  for (size_t i = 0; i < top.size(); ++i) {
    const sim::RankedTiles& r = top[i];
    std::printf("%4zu  %-30s %8lld %10lld %10lld %9.2fx %8.4f ms %8.2fx\n", i + 1,
                r.tiles.describe().c_str(), static_cast<long long>(r.sim.q_tiles),
                static_cast<long long>(r.sim.visited_kv_tiles),
                static_cast<long long>(r.sim.masked_kv_tiles), r.sim.tile_bound,
                r.predicted_s * 1e3, r.predicted_speedup);
  }
}

// `source` says where the tiles came from; empty when the user gave them.
int find_stride(const Problem& p, const TileConfig& tiles, const std::string& source, bool json) {
  const std::vector<int64_t> strides = sim::block_sparse_strides(p, tiles);
  if (json) {
    std::vector<std::string> items;
    for (int64_t s : strides) items.push_back(s ? json_number(s) : "null");
    std::cout << "{\"tiles\": " << json_string(tiles.describe())
              << ", \"chosen\": " << (source.empty() ? "false" : "true")
              << ", \"strides\": " << json_list(items) << "}\n";
    return 0;
  }
  std::printf("tiles  %s%s\n", tiles.describe().c_str(), source.c_str());
  for (int a = 0; a < p.rank(); ++a) {
    const int64_t s = strides[static_cast<size_t>(a)];
    std::printf("axis %d  window %lld: smallest block-sparse stride %s\n", a,
                static_cast<long long>(p.params.axis[a].kernel_size),
                s ? std::to_string(s).c_str() : "none");
  }
  if (p.extra_kv % tiles.kv_tokens()) {
    std::printf("note: the last tile of the %lld additional KV tokens is masked whatever the "
                "stride\n", static_cast<long long>(p.extra_kv));
  }
  return 0;
}

}  // namespace

int run_sim(int argc, char** argv) {
  std::vector<Option> options = window_options();
  const std::vector<Option> more{
      {"heads", "H", "query heads (default 1); CTAs = query tiles x heads x batch"},
      {"batch", "B", "batch size (default 1)"},
      {"dim", "D", "head dim (default 128); above 128 the sm90 KV tile has 64 tokens"},
      {"dtype", "f16|bf16", "element type (default f16)"},
      {"extra-kv", "N", "additional KV tokens every query attends to (default 0)"},
      {"q-tile", "T0[xT1..]", "query tile extents per axis (with --kv-tile)"},
      {"kv-tile", "T0[xT1..]", "KV tile extents per axis (with --q-tile)"},
      {"kv-tiling", "static|dynamic", "KV tiles on a fixed grid or at each query tile's window "
                                      "start (default dynamic; without tiles: limits the chooser)"},
      {"top", "N", "configurations the chooser lists (default 5)"},
      {"find-stride", "", "print the smallest stride per axis that needs no element mask"},
      {"json", "", "print JSON"},
  };
  options.insert(options.end(), more.begin(), more.end());
  Command cmd("sim",
              "Simulate the tiles a fused kernel visits: query tiles, visited and masked KV\n"
              "tiles, work done against useful and dense work. Without --q-tile/--kv-tile,\n"
              "rank the sm90 kernel's tile shapes by predicted time.",
              options);
  if (!cmd.parse(argc, argv)) return 0;
  const Problem p = sim_problem(cmd);
  const bool json = cmd.flag("json");
  const std::optional<TileConfig> tiles = given_tiles(cmd, p.rank());
  const int64_t top = cmd.integer("top", 5);
  if (top < 1) throw UsageError("--top must be >= 1");

  if (tiles) {
    if (cmd.flag("find-stride")) return find_stride(p, *tiles, "", json);
    const sim::RankedTiles r = score(p, *tiles);
    if (json) std::cout << top_level_json(p, r, "") << "\n";
    else print_figures(p, r);
    return 0;
  }

  std::vector<TileConfig> candidates = sim::sm90_candidates(p);
  if (cmd.has("kv-tiling")) {
    const KvTiling only = parse_tiling(cmd.text("kv-tiling", ""));
    candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                    [&](const TileConfig& c) { return c.kv_tiling != only; }),
                     candidates.end());
  }
  if (candidates.empty()) {
    try {
      sim::choose_tiles(p);
    } catch (const Error& e) {
      throw UsageError(std::string(e.what()) + "; give --q-tile and --kv-tile to simulate other tiles");
    }
    throw UsageError("no sm90 tile shape uses the --kv-tiling asked for");
  }
  if (cmd.flag("find-stride")) {
    const std::optional<sim::BlockSparsePick> pick = sim::sm90_block_sparse(p);
    if (pick) {
      return find_stride(p, pick->tiles, " (the sm90 shape with the smallest mask-free strides)",
                         json);
    }
  }
  std::vector<sim::RankedTiles> ranked = sim::rank_tiles(p, candidates);
  if (cmd.flag("find-stride")) {
    return find_stride(p, ranked.front().tiles,
                       " (no sm90 shape is mask-free on every axis; the chooser's pick)", json);
  }
  ranked.resize(std::min<size_t>(ranked.size(), static_cast<size_t>(top)));
  if (json) {
    // The pick's figures at the top level, so both modes share the fields.
    std::vector<std::string> items;
    for (const sim::RankedTiles& r : ranked) items.push_back(figures_json(p, r));
    std::cout << top_level_json(p, ranked.front(), ", \"ranked\": " + json_list(items)) << "\n";
  } else {
    print_ranking(p, ranked);
  }
  return 0;
}

}  // namespace gna::cli
