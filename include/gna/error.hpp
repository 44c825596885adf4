// Every rejected input raises gna::Error naming the argument, the value and
// the rule, so the user knows what to change. Bindings map the kind onto
// their own exception types (Python: ValueError / TypeError).
#pragma once

#include <stdexcept>
#include <string>

namespace gna {

enum class ErrorKind {
  value,        // a value breaks a rule (window larger than the axis, ...)
  type,         // wrong dtype, device or rank
  unsupported,  // valid problem, but the chosen backend cannot run it
  runtime,      // a device call failed
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string argument, const std::string& message)
      : std::runtime_error(message), kind_(kind), argument_(std::move(argument)) {}
  ErrorKind kind() const { return kind_; }
  const std::string& argument() const { return argument_; }

 private:
  ErrorKind kind_;
  std::string argument_;
};

}  // namespace gna
