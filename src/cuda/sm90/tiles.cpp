#include "cuda/sm90/tiles.hpp"

#include <cstdint>

#include "core/check.hpp"
#include "cuda/sm90/config.hpp"

namespace gna::sm90 {
namespace {

bool power_of_two(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace

std::string tile_error(const Problem& p, const TileConfig& t) {
  using detail::concat;
  if (t.rank != p.rank()) return concat("tile rank ", t.rank, " differs from problem rank ", p.rank());
  if (t.q_tokens() != kQueryTileTokens) {
    return concat("query tile ", t.describe(), " must hold ", kQueryTileTokens, " tokens");
  }
  if (t.kv_tokens() != kv_tile_tokens(p.head_dim)) {
    return concat("KV tile must hold ", kv_tile_tokens(p.head_dim), " tokens for head dim ",
                  p.head_dim);
  }
  for (int a = 0; a < p.rank(); ++a) {
    const int64_t d = p.params.axis[a].dilation;
    if (!power_of_two(t.q_tile[a]) || !power_of_two(t.kv_tile[a])) {
      return concat("tile extents must be powers of two (axis ", a, ")");
    }
    // Axis 0 is split into several boxes when needed (split_log2).
    if (a > 0 && (t.q_tile[a] * d > 256 || t.kv_tile[a] * d > 256)) {
      return concat("tile extent * dilation must be <= 256 (TMA box limit) on axis ", a);
    }
  }
  return "";
}

}  // namespace gna::sm90
