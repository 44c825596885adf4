#include "gna/tiles.hpp"

#include <sstream>

namespace gna {

int64_t TileConfig::q_tokens() const {
  int64_t n = 1;
  for (int a = 0; a < rank; ++a) n *= q_tile[a];
  return n;
}

int64_t TileConfig::kv_tokens() const {
  int64_t n = 1;
  for (int a = 0; a < rank; ++a) n *= kv_tile[a];
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
