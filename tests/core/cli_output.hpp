// Reading what a `gna` run wrote, for the CLI tests.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace gna::test {

// A sanitizer build notes each allocation it refuses on stderr
// ("==pid==WARNING: AddressSanitizer failed to allocate ..."); that line is
// the sanitizer's, not gna's, so it is left out of the one-line count.
inline std::string without_sanitizer_notes(const std::string& err) {
  std::string out, line;
  std::istringstream in(err);
  while (std::getline(in, line)) {
    if (line.rfind("==", 0) == 0 && line.find("failed to allocate") != std::string::npos) continue;
    out += line + "\n";
  }
  if (!err.empty() && err.back() != '\n' && !out.empty()) out.pop_back();
  return out;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace gna::test
