#include "gna/version.hpp"

namespace gna {

// GNA_VERSION comes from CMake (VERSION) on this file alone, so a version
// bump recompiles one file.
const char* version() { return GNA_VERSION; }

}  // namespace gna
