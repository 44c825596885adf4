#include "sim/tile_checks.hpp"

#include "core/check.hpp"
#include "core/checked.hpp"

namespace gna::sim {

using gna::detail::concat;
using gna::detail::fail;
using gna::detail::indexed;

void check_tiles(const Problem& p, const TileConfig& tiles) {
  if (tiles.rank != p.rank()) {
    fail(ErrorKind::value, "tiles.rank", tiles.rank,
         concat("a tile of a ", p.rank(), "-D problem has ", p.rank(), " extents"));
  }
  for (int a = 0; a < p.rank(); ++a) {
    if (tiles.q_tile[a] < 1) fail(ErrorKind::value, indexed("q_tile", a), tiles.q_tile[a], "must be >= 1");
    if (tiles.kv_tile[a] < 1) {
      fail(ErrorKind::value, indexed("kv_tile", a), tiles.kv_tile[a], "must be >= 1");
    }
  }
  // Tile token counts, and the pairs of one tile pair, must be countable.
  gna::detail::checked_mul(tiles.q_tokens(), tiles.kv_tokens(), "kv_tile",
                           "query-key pairs of one tile pair, q tokens * kv tokens");
}

}  // namespace gna::sim
