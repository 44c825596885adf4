// The single dispatch point: validate, pick a backend, run it.
#include <algorithm>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/check.hpp"

namespace gna {

namespace detail {

const std::vector<const Backend*>& registry() {
  static const std::vector<const Backend*> all = [] {
    std::vector<const Backend*> list;
#if GNA_WITH_SM90
    list.push_back(sm90_backend());
#endif
#if GNA_WITH_CUDA
    list.push_back(cuda_generic_backend());
#endif
    list.push_back(reference_backend());
    return list;
  }();
  return all;
}

namespace {

// Every backend name the project knows, built or not, in `auto` order.
const std::vector<std::string>& known_names() {
  static const std::vector<std::string> names{"sm90", "cuda-generic", "reference"};
  return names;
}

const Backend* find(const std::string& name) {
  for (const Backend* b : registry()) {
    if (name == b->name()) return b;
  }
  return nullptr;
}

std::string join_reasons(const Problem& p, Pass pass, Device device) {
  std::string s;
  for (const BackendInfo& info : backends(p, pass, device)) {
    s += concat(s.empty() ? "" : "; ", info.name, ": ", info.reason);
  }
  return s;
}

const Backend* choose(const Problem& p, Pass pass, Device device, const std::string& name) {
  if (name == "auto" || name.empty()) {
    for (const Backend* b : registry()) {
      if (b->cannot_run(p, pass, device).empty()) return b;
    }
    throw Error(ErrorKind::unsupported, "backend",
                concat("backend = auto: no backend can run ", p.describe(), " on ",
                       device_name(device), " (", join_reasons(p, pass, device), ")"));
  }
  const Backend* b = find(name);
  if (b == nullptr) {
    std::string known;
    for (const std::string& n : known_names()) known += concat(known.empty() ? "" : ", ", n);
    const bool is_known = std::find(known_names().begin(), known_names().end(), name) !=
                          known_names().end();
    fail(ErrorKind::value, "backend", name,
         is_known ? concat("not built into this library (build with CUDA to get it)")
                  : concat("unknown backend; known: auto, ", known));
  }
  const std::string reason = b->cannot_run(p, pass, device);
  if (!reason.empty()) fail_unsupported(name, reason);
  return b;
}

}  // namespace
}  // namespace detail

std::vector<BackendInfo> backends(const Problem& problem, Pass pass, Device device) {
  std::vector<BackendInfo> out;
  for (const std::string& name : detail::known_names()) {
    const detail::Backend* b = detail::find(name);
    BackendInfo info{name, b != nullptr, ""};
    info.reason = b ? b->cannot_run(problem, pass, device)
                    : std::string("not built into this library");
    out.push_back(info);
  }
  return out;
}

std::vector<std::string> backend_names() {
  std::vector<std::string> names;
  for (const detail::Backend* b : detail::registry()) names.emplace_back(b->name());
  return names;
}

std::string forward(const Params& params, const ForwardArgs& args, const Options& options) {
  const Problem p = make_problem(params, args);
  const detail::Backend* b =
      detail::choose(p, Pass::forward, args.query.device, options.backend);
  if (!p.empty()) b->forward(p, args, options);
  return b->name();
}

std::string backward(const Params& params, const BackwardArgs& args, const Options& options) {
  const Problem p = make_problem(params, args);
  const detail::Backend* b =
      detail::choose(p, Pass::backward, args.query.device, options.backend);
  if (!p.empty()) b->backward(p, args, options);
  return b->name();
}

#if !GNA_WITH_CUDA
int cuda_device_count() { return 0; }
#endif

}  // namespace gna
