// Constants shared by host code and the PTX wrappers.
#pragma once

#include <cstdint>

namespace gna::sm90 {

// Swizzle mode of a tile whose rows are 64 or 128 bytes long, in the
// encoding of the wgmma descriptor: TMA writes that pattern and wgmma must
// be told the same one.
enum class Swizzle : uint64_t { b64 = 2, b128 = 1 };

}  // namespace gna::sm90
