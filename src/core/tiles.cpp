#include "gna/tiles.hpp"

#include <sstream>

#include "core/checked.hpp"

namespace gna {

int64_t TileConfig::q_tokens() const {
  int64_t n = 1;
  for (int a = 0; a < rank; ++a) {
    n = detail::checked_mul(n, q_tile[a], "q_tile", "query tile tokens, the product of its extents");
  }
  return n;
}

int64_t TileConfig::kv_tokens() const {
  int64_t n = 1;
  for (int a = 0; a < rank; ++a) {
    n = detail::checked_mul(n, kv_tile[a], "kv_tile", "KV tile tokens, the product of its extents");
  }
  return n;
}

const char* kv_tiling_name(KvTiling tiling) {
  return tiling == KvTiling::fixed_grid ? "static" : "dynamic";
}

std::string TileConfig::describe() const {
  std::ostringstream os;
  os << "q ";
  for (int a = 0; a < rank; ++a) os << (a ? "x" : "") << q_tile[a];
  os << " kv ";
  for (int a = 0; a < rank; ++a) os << (a ? "x" : "") << kv_tile[a];
  os << " " << kv_tiling_name(kv_tiling);
  return os.str();
}

}  // namespace gna
