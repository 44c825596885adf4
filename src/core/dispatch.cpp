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
#if GNA_WITH_CPU
    list.push_back(cpu_backend());
#endif
    list.push_back(reference_backend());
    return list;
  }();
  return all;
}

namespace {

// Every backend name the project knows, built or not, in `auto` order.
const std::vector<std::string>& known_names() {
  static const std::vector<std::string> names{"sm90", "cuda-generic", "cpu", "reference"};
  return names;
}

const Backend* find(const std::string& name) {
  for (const Backend* b : registry()) {
    if (name == b->name()) return b;
  }
  return nullptr;
}

// Why `b` cannot run this call: problem-level limits first, then tensors.
template <typename Args>
std::string why_not(const Backend* b, const Problem& p, Pass pass, const Args& args) {
  std::string reason = b->cannot_run(p, pass, args.query.device);
  if (reason.empty()) reason = b->cannot_run_tensors(p, args);
  return reason;
}

template <typename Args>
const Backend* choose(const Problem& p, Pass pass, const Args& args, const std::string& name) {
  const Device device = args.query.device;
  if (name == "auto" || name.empty()) {
    std::string reasons;
    for (const Backend* b : registry()) {
      const std::string reason = why_not(b, p, pass, args);
      if (reason.empty()) return b;
      reasons += concat(reasons.empty() ? "" : "; ", b->name(), ": ", reason);
    }
    throw Error(ErrorKind::unsupported, "backend",
                concat("backend = auto: no backend can run ", p.describe(), " on ",
                       device_name(device), " (", reasons, ")"));
  }
  const Backend* b = find(name);
  if (b == nullptr) {
    std::string known;
    for (const std::string& n : known_names()) known += concat(known.empty() ? "" : ", ", n);
    const bool is_known = std::find(known_names().begin(), known_names().end(), name) !=
                          known_names().end();
    fail(ErrorKind::value, "backend", name,
         is_known ? concat("not built into this library (build with ",
                           name == "cpu" ? "Highway" : "CUDA", " to get it)")
                  : concat("unknown backend; known: auto, ", known));
  }
  const std::string reason = why_not(b, p, pass, args);
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
  const detail::Backend* b = detail::choose(p, Pass::forward, args, options.backend);
  if (!p.empty() && !options.check_only) b->forward(p, args, options);
  return b->name();
}

namespace {

// An empty problem has no work, except that keys and values nobody attends
// to (kv heads without query heads, additional KV without query tokens)
// still have a gradient, zero, and their tensors have elements to hold it.
bool has_unattended_key_gradients(const BackwardArgs& a) {
  for (const TensorView* g : {&a.grad_key, &a.grad_value, &a.grad_extra_key, &a.grad_extra_value}) {
    if (g->defined() && g->numel() > 0) return true;
  }
  return false;
}

}  // namespace

std::string backward(const Params& params, const BackwardArgs& args, const Options& options) {
  const Problem p = make_problem(params, args);
  const detail::Backend* b = detail::choose(p, Pass::backward, args, options.backend);
  if (options.check_only) return b->name();
  if (!p.empty() || has_unattended_key_gradients(args)) b->backward(p, args, options);
  return b->name();
}

#if !GNA_WITH_CUDA
int cuda_device_count() { return 0; }
#endif

}  // namespace gna
