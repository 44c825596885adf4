// The library's version, from the file VERSION at the root of the source
// tree: the same number `gna --version` and Python's gna.__version__ report.
#pragma once

namespace gna {

// "MAJOR.MINOR.PATCH" of the library linked in (not of the headers compiled
// against, should the two differ).
const char* version();

}  // namespace gna
