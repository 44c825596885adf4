// Helpers that turn a broken rule into a gna::Error of the form
//   "<argument> = <value>: <rule>"
// so every message names what the user passed and what to change.
#pragma once

#include <sstream>
#include <string>

#include "gna/error.hpp"

namespace gna::detail {

template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

template <typename Value>
[[noreturn]] void fail(ErrorKind kind, const std::string& argument, const Value& value,
                       const std::string& rule) {
  throw Error(kind, argument, concat(argument, " = ", value, ": ", rule));
}

[[noreturn]] inline void fail_unsupported(const std::string& backend, const std::string& reason) {
  throw Error(ErrorKind::unsupported, "backend",
              concat("backend = ", backend, ": cannot run this problem: ", reason));
}

// "name[i]" for per-axis and per-dimension arguments.
inline std::string indexed(const std::string& name, int i) { return concat(name, "[", i, "]"); }

}  // namespace gna::detail
