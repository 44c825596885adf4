// The interface every backend implements, and the registry that dispatch
// walks. A backend answers "can I run this?" with a reason, NATTEN-style, so
// an explicit request that cannot be served tells the user why.
#pragma once

#include <string>
#include <vector>

#include "gna/attention.hpp"

namespace gna::detail {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // Empty when the backend can run `problem` for `pass` on `device`.
  virtual std::string cannot_run(const Problem& problem, Pass pass, Device device) const = 0;
  // Limits that depend on the tensors themselves (alignment, strides),
  // checked before the backend is chosen for a call. Empty when fine.
  virtual std::string cannot_run_tensors(const Problem&, const ForwardArgs&) const { return ""; }
  virtual std::string cannot_run_tensors(const Problem&, const BackwardArgs&) const { return ""; }
  // Called only after cannot_run returned empty, and only for a non-empty
  // problem ...
  virtual void forward(const Problem& problem, const ForwardArgs& args,
                       const Options& options) const = 0;
  // ... except that backward also runs for an empty problem whose key/value
  // gradients have elements (kv heads but no query heads, or additional KV
  // but no query tokens): nobody attends to those keys, so it writes zeros.
  virtual void backward(const Problem& problem, const BackwardArgs& args,
                        const Options& options) const = 0;
};

// Backends compiled into this build, in the order `auto` prefers them.
const std::vector<const Backend*>& registry();

// Each backend's factory; defined in its own directory, absent when not built.
const Backend* reference_backend();
#if GNA_WITH_CPU
const Backend* cpu_backend();
#endif
#if GNA_WITH_CUDA
const Backend* cuda_generic_backend();
#endif
#if GNA_WITH_SM90
const Backend* sm90_backend();
#endif

}  // namespace gna::detail
