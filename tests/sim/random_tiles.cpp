#include "random_tiles.hpp"

#include "harness/tensors.hpp"

namespace gna::simtest {
namespace {

int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

}  // namespace

Problem random_small_problem(std::mt19937_64& rng) {
  harness::RandomSpec spec;
  spec.max_extent = 24;
  return harness::random_problem(rng, spec);
}

TileConfig random_tiles(std::mt19937_64& rng, int rank) {
  TileConfig t;
  t.rank = rank;
  for (int a = 0; a < rank; ++a) {
    t.q_tile[a] = uniform(rng, 1, 6);
    t.kv_tile[a] = uniform(rng, 1, 6);
  }
  t.kv_tiling = uniform(rng, 0, 1) ? KvTiling::window_start : KvTiling::fixed_grid;
  return t;
}

}  // namespace gna::simtest
