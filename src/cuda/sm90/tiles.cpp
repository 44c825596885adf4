#include "cuda/sm90/tiles.hpp"

#include <algorithm>
#include <cstdint>

#include "core/check.hpp"
#include "cuda/sm90/config.hpp"

namespace gna::sm90 {
namespace {

using detail::concat;

bool power_of_two(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

// Extents both kernels need: powers of two that TMA can load.
std::string extent_error(const Problem& p, const TileConfig& t) {
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

std::string rank_error(const Problem& p, const TileConfig& t) {
  if (t.rank != p.rank()) return concat("tile rank ", t.rank, " differs from problem rank ", p.rank());
  return "";
}

}  // namespace

std::string tile_error(const Problem& p, const TileConfig& t) {
  if (const std::string e = rank_error(p, t); !e.empty()) return e;
  if (t.q_tokens() != kQueryTileTokens) {
    return concat("query tile ", t.describe(), " must hold ", kQueryTileTokens, " tokens");
  }
  const int widest = static_cast<int>(std::max(p.head_dim, p.head_dim_v));
  if (t.kv_tokens() != kv_tile_tokens(widest)) {
    return concat("KV tile must hold ", kv_tile_tokens(widest), " tokens for head dim ", widest);
  }
  return extent_error(p, t);
}

std::string backward_tile_error(const Problem& p, const TileConfig& t) {
  if (const std::string e = rank_error(p, t); !e.empty()) return e;
  const int64_t q = backward_query_tile_tokens(static_cast<int>(p.head_dim));
  if (t.q_tokens() != q || t.kv_tokens() != kBackwardKvTileTokens) {
    return concat("the backward kernel needs query tiles of ", q, " and KV tiles of ",
                  kBackwardKvTileTokens, " tokens for head dim ", p.head_dim, ", got ", t.describe());
  }
  return extent_error(p, t);
}

}  // namespace gna::sm90
