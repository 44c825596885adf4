// gna._C: the entry points of the C++ library for Python. Callers allocate
// every output (torch or numpy, on the tensors' device) and pass the CUDA
// stream to run on, so nothing here knows about any framework.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "gna/gna.hpp"
#include "problem_info.hpp"
#include "tensor_view.hpp"

namespace nb = nanobind;

namespace gna::python {
namespace {

struct Window {
  std::vector<int64_t> kernel_size, stride, dilation;
  std::vector<bool> is_causal;
  std::optional<double> scale;
};

Params params_of(const Window& w) {
  const size_t rank = w.kernel_size.size();
  if (rank < 1 || rank > static_cast<size_t>(kMaxSpatialRank)) {
    throw Error(ErrorKind::value, "kernel_size",
                "kernel_size has " + std::to_string(rank) + " entries: expected 1, 2 or 3");
  }
  auto check_length = [&](size_t n, const char* name) {
    if (n != rank) {
      throw Error(ErrorKind::value, name,
                  std::string(name) + " has " + std::to_string(n) + " entries, kernel_size " +
                      std::to_string(rank));
    }
  };
  check_length(w.stride.size(), "stride");
  check_length(w.dilation.size(), "dilation");
  check_length(w.is_causal.size(), "is_causal");
  Params p;
  p.rank = static_cast<int>(rank);
  for (size_t a = 0; a < rank; ++a) {
    p.axis[a] = AxisParams{w.kernel_size[a], w.stride[a], w.dilation[a], w.is_causal[a]};
  }
  p.scale = w.scale;
  return p;
}

// A call's window: a Window, or the tuple (kernel_size, stride, dilation,
// is_causal, scale) of the same fields. Python keeps its per-window plans
// as tuples: a Window held by a live autograd graph at interpreter exit
// would read as a leak to nanobind, and a tuple costs nothing to pass.
Params params_of(nb::handle window) {
  if (nb::isinstance<Window>(window)) return params_of(nb::cast<const Window&>(window));
  if (!nb::isinstance<nb::tuple>(window) || nb::len(window) != 5) {
    throw Error(ErrorKind::type, "window",
                "window must be a gna._C.Window or a tuple (kernel_size, stride, dilation, "
                "is_causal, scale)");
  }
  Window w;
  w.kernel_size = nb::cast<std::vector<int64_t>>(window[0]);
  w.stride = nb::cast<std::vector<int64_t>>(window[1]);
  w.dilation = nb::cast<std::vector<int64_t>>(window[2]);
  w.is_causal = nb::cast<std::vector<bool>>(window[3]);
  if (!window[4].is_none()) w.scale = nb::cast<double>(window[4]);
  return params_of(w);
}

// Where a call finds its CPU thread count: a Python callable returning it
// (gna registers torch.get_num_threads when torch is there), else the
// library's default. Kept for the life of the process, never released.
PyObject* g_thread_source = nullptr;

void set_thread_source(nb::object source) {
  PyObject* old = g_thread_source;
  g_thread_source = source.is_none() ? nullptr : source.release().ptr();
  Py_XDECREF(old);
}

// Asked with the GIL held, before a call releases it.
int threads_for_call() {
  if (g_thread_source == nullptr) return 0;
  const int n = nb::cast<int>(nb::handle(g_thread_source)());
  return n > 0 ? n : 0;
}

// The thread count is asked (a Python call) only for work on CPU tensors,
// the only work that uses it.
Options options_of(const std::string& backend, uintptr_t stream, const TensorView& query) {
  Options o;
  o.backend = backend;
  o.stream = reinterpret_cast<void*>(stream);
  if (!query.defined() || query.device.type == DeviceType::cpu) o.threads = threads_for_call();
  return o;
}

// NATTEN's q_tile_shape / kv_tile_shape: the sm90 forward's tiles (other
// backends have none). Both or neither; the sm90 backend checks the values.
std::optional<TileConfig> tiles_of(const std::optional<std::vector<int64_t>>& q_tile,
                                   const std::optional<std::vector<int64_t>>& kv_tile, int rank,
                                   KvTiling kv_tiling = KvTiling::window_start) {
  if (!q_tile && !kv_tile) return std::nullopt;
  if (!q_tile || !kv_tile) {
    throw Error(ErrorKind::value, q_tile ? "kv_tile_shape" : "q_tile_shape",
                std::string(q_tile ? "kv_tile_shape" : "q_tile_shape") +
                    " = None: pass q_tile_shape and kv_tile_shape together, or neither");
  }
  TileConfig t;
  t.rank = rank;
  t.kv_tiling = kv_tiling;
  for (const auto& [name, tile, out] :
       {std::tuple{"q_tile_shape", &*q_tile, t.q_tile}, {"kv_tile_shape", &*kv_tile, t.kv_tile}}) {
    if (tile->size() != static_cast<size_t>(rank)) {
      throw Error(ErrorKind::value, name,
                  std::string(name) + " has " + std::to_string(tile->size()) +
                      " entries: expected " + std::to_string(rank) + " (one per spatial axis)");
    }
    for (int a = 0; a < rank; ++a) out[a] = (*tile)[a];
  }
  return t;
}

Sequences sequences_of(const std::optional<std::vector<int64_t>>& query_offsets,
                       const std::optional<std::vector<int64_t>>& key_offsets) {
  Sequences s;
  if (query_offsets.has_value() != key_offsets.has_value()) {
    const char* missing = query_offsets ? "cumulative_seqlen_KV" : "cumulative_seqlen_Q";
    throw Error(ErrorKind::value, missing,
                std::string(missing) +
                    " = None: pass cumulative_seqlen_Q and cumulative_seqlen_KV together");
  }
  if (query_offsets) {
    s.query_offsets = *query_offsets;
    s.key_offsets = *key_offsets;
  }
  return s;
}

// The views every forward call passes: inputs, output and LSE.
ForwardArgs forward_views(const InArray& query, const InArray& key, const InArray& value,
                          const OutArray& output, const OutArray& lse) {
  ForwardArgs args;
  args.query = view_of(query, "query");
  args.key = view_of(key, "key");
  args.value = view_of(value, "value");
  args.output = view_of(output, "output");
  args.lse = view_of(lse, "lse");
  return args;
}

// The views every backward call passes: the forward's tensors, the incoming
// gradients and the gradients of query, key and value.
BackwardArgs backward_views(const InArray& query, const InArray& key, const InArray& value,
                            const InArray& output, const InArray& lse,
                            const InArray& grad_output, const InArray& grad_lse,
                            const OutArray& grad_query, const OutArray& grad_key,
                            const OutArray& grad_value) {
  BackwardArgs args;
  args.query = view_of(query, "query");
  args.key = view_of(key, "key");
  args.value = view_of(value, "value");
  args.output = view_of(output, "output");
  args.lse = view_of(lse, "lse");
  args.grad_output = view_of(grad_output, "grad_output");
  args.grad_lse = view_of(grad_lse, "grad_lse");
  args.grad_query = view_of(grad_query, "grad_query");
  args.grad_key = view_of(grad_key, "grad_key");
  args.grad_value = view_of(grad_value, "grad_value");
  return args;
}

std::string forward(const InArray& query, const InArray& key, const InArray& value,
                    const OutArray& output, const OutArray& lse,
                    const InArray& additional_keys, const InArray& additional_values,
                    nb::handle window, const std::string& backend, uintptr_t stream,
                    const std::optional<std::vector<int64_t>>& q_tile,
                    const std::optional<std::vector<int64_t>>& kv_tile) {
  ForwardArgs args = forward_views(query, key, value, output, lse);
  args.extra_key = view_of(additional_keys, "additional_keys");
  args.extra_value = view_of(additional_values, "additional_values");
  const Params params = params_of(window);
  Options options = options_of(backend, stream, args.query);
  options.tiles = tiles_of(q_tile, kv_tile, params.rank);
  // The views keep no Python object alive themselves; the caller's
  // arguments do, so the work can run without the GIL.
  nb::gil_scoped_release no_gil;
  return gna::forward(params, args, options);
}

// An output view the forward would write, [*query.shape[:-1], Dv], over
// memory nobody reads or writes: check_forward runs nothing.
TensorView unwritten_output(const TensorView& query, const TensorView& value) {
  alignas(256) static unsigned char nowhere[256];
  TensorView o = query;
  if (o.ndim < 1) return o;
  if (value.ndim >= 1) o.shape[o.ndim - 1] = value.shape[value.ndim - 1];
  int64_t step = 1;
  for (int i = o.ndim - 1; i >= 0; --i) {
    o.stride[i] = step;
    // Only the strides' signs and zeros are checked; saturate, never wrap.
    step = o.shape[i] > 0 && step <= (int64_t{1} << 62) / o.shape[i] ? step * o.shape[i] : step;
  }
  o.data = nowhere;
  return o;
}

// Every rule of a forward call (tensors, window, backend) checked before its
// caller allocates the outputs: an output too large to allocate must not
// hide the rule the inputs break.
std::string check_forward(const InArray& query, const InArray& key, const InArray& value,
                          const InArray& additional_keys, const InArray& additional_values,
                          nb::handle window, const std::string& backend) {
  ForwardArgs args;
  args.query = view_of(query, "query");
  args.key = view_of(key, "key");
  args.value = view_of(value, "value");
  args.extra_key = view_of(additional_keys, "additional_keys");
  args.extra_value = view_of(additional_values, "additional_values");
  args.output = unwritten_output(args.query, args.value);
  Options options;
  options.backend = backend;
  options.check_only = true;
  return gna::forward(params_of(window), args, options);
}

std::string backward(const InArray& query, const InArray& key, const InArray& value,
                     const InArray& output, const InArray& lse, const InArray& grad_output,
                     const InArray& grad_lse, const InArray& additional_keys,
                     const InArray& additional_values, const OutArray& grad_query,
                     const OutArray& grad_key, const OutArray& grad_value,
                     const OutArray& grad_additional_keys,
                     const OutArray& grad_additional_values, nb::handle window,
                     const std::string& backend, uintptr_t stream, bool deterministic,
                     const std::optional<std::vector<int64_t>>& q_tile,
                     const std::optional<std::vector<int64_t>>& kv_tile) {
  BackwardArgs args = backward_views(query, key, value, output, lse, grad_output, grad_lse,
                                     grad_query, grad_key, grad_value);
  args.extra_key = view_of(additional_keys, "additional_keys");
  args.extra_value = view_of(additional_values, "additional_values");
  args.grad_extra_key = view_of(grad_additional_keys, "grad_additional_keys");
  args.grad_extra_value = view_of(grad_additional_values, "grad_additional_values");
  const Params params = params_of(window);
  Options options = options_of(backend, stream, args.query);
  options.deterministic = deterministic;
  // The sm90 backward's KV tiles lie on the fixed grid.
  options.tiles = tiles_of(q_tile, kv_tile, params.rank, KvTiling::fixed_grid);
  nb::gil_scoped_release no_gil;
  return gna::backward(params, args, options);
}

std::string attention_forward(const InArray& query, const InArray& key, const InArray& value,
                              const OutArray& output, const OutArray& lse, bool is_causal,
                              std::optional<double> scale,
                              const std::optional<std::vector<int64_t>>& query_offsets,
                              const std::optional<std::vector<int64_t>>& key_offsets,
                              const std::string& backend, uintptr_t stream,
                              const std::optional<std::vector<int64_t>>& q_tile,
                              const std::optional<std::vector<int64_t>>& kv_tile) {
  const ForwardArgs args = forward_views(query, key, value, output, lse);
  const Sequences sequences = sequences_of(query_offsets, key_offsets);
  Options options = options_of(backend, stream, args.query);
  options.tiles = tiles_of(q_tile, kv_tile, 1);
  nb::gil_scoped_release no_gil;
  return gna::attention_forward(DenseParams{is_causal, scale}, args, sequences, options);
}

std::string attention_backward(const InArray& query, const InArray& key, const InArray& value,
                               const InArray& output, const InArray& lse,
                               const InArray& grad_output, const InArray& grad_lse,
                               const OutArray& grad_query, const OutArray& grad_key,
                               const OutArray& grad_value, bool is_causal,
                               std::optional<double> scale,
                               const std::optional<std::vector<int64_t>>& query_offsets,
                               const std::optional<std::vector<int64_t>>& key_offsets,
                               const std::string& backend, uintptr_t stream, bool deterministic,
                               const std::optional<std::vector<int64_t>>& q_tile,
                               const std::optional<std::vector<int64_t>>& kv_tile) {
  const BackwardArgs args = backward_views(query, key, value, output, lse, grad_output, grad_lse,
                                           grad_query, grad_key, grad_value);
  const Sequences sequences = sequences_of(query_offsets, key_offsets);
  Options options = options_of(backend, stream, args.query);
  options.deterministic = deterministic;
  options.tiles = tiles_of(q_tile, kv_tile, 1, KvTiling::fixed_grid);
  nb::gil_scoped_release no_gil;
  return gna::attention_backward(DenseParams{is_causal, scale}, args, sequences, options);
}

// Packed variable-length attention on offsets in GPU memory: the int32
// offsets and the status record come as device addresses (torch's
// data_ptr()), so nothing is copied to the host and nothing waits.
DeviceOffsets device_offsets_of(uintptr_t query_offsets, uintptr_t key_offsets,
                                int64_t sequences, int64_t query_max, int64_t key_max,
                                uintptr_t status) {
  DeviceOffsets d;
  d.query = reinterpret_cast<const int32_t*>(query_offsets);
  d.key = reinterpret_cast<const int32_t*>(key_offsets);
  d.sequences = sequences;
  d.query_max = query_max;
  d.key_max = key_max;
  d.status = reinterpret_cast<int32_t*>(status);
  return d;
}

std::string packed_forward(const InArray& query, const InArray& key, const InArray& value,
                           const OutArray& output, const OutArray& lse, bool is_causal,
                           std::optional<double> scale, uintptr_t query_offsets,
                           uintptr_t key_offsets, int64_t sequences, int64_t query_max,
                           int64_t key_max, uintptr_t status, const std::string& backend,
                           uintptr_t stream) {
  const ForwardArgs args = forward_views(query, key, value, output, lse);
  const DeviceOffsets d =
      device_offsets_of(query_offsets, key_offsets, sequences, query_max, key_max, status);
  const Options options = options_of(backend, stream, args.query);
  nb::gil_scoped_release no_gil;
  return gna::attention_forward(DenseParams{is_causal, scale}, args, d, options);
}

std::string packed_backward(const InArray& query, const InArray& key, const InArray& value,
                            const InArray& output, const InArray& lse,
                            const InArray& grad_output, const InArray& grad_lse,
                            const OutArray& grad_query, const OutArray& grad_key,
                            const OutArray& grad_value, bool is_causal,
                            std::optional<double> scale, uintptr_t query_offsets,
                            uintptr_t key_offsets, int64_t sequences, uintptr_t status,
                            const std::string& backend, uintptr_t stream) {
  const BackwardArgs args = backward_views(query, key, value, output, lse, grad_output, grad_lse,
                                           grad_query, grad_key, grad_value);
  const DeviceOffsets d = device_offsets_of(query_offsets, key_offsets, sequences, -1, -1, status);
  const Options options = options_of(backend, stream, args.query);
  nb::gil_scoped_release no_gil;
  return gna::attention_backward(DenseParams{is_causal, scale}, args, d, options);
}

std::string describe_offsets_status(int32_t code, int32_t index, int32_t value,
                                    int32_t expected) {
  OffsetsStatus s;
  s.code = code;
  s.index = index;
  s.value = value;
  s.expected = expected;
  return gna::describe(s);
}

// Problem-level names the C++ core reports, as the Python argument that
// carries them, so every message names something the caller passed.
const char* python_argument(const std::string& argument) {
  // "extent[i]", or "extent" for a count of tokens or pairs past 2^62.
  const bool per_axis_extent = argument.rfind("extent", 0) == 0;
  if (argument == "heads" || argument == "head_dim" || argument == "batch" || per_axis_extent) {
    return "query";
  }
  if (argument == "kv_heads") return "key";
  if (argument == "head_dim_v") return "value";
  return nullptr;
}

// "backend = auto: no backend can run ...": NATTEN's class for a valid
// problem none of its backends runs is NotImplementedError; an explicitly
// named backend that cannot run it stays a ValueError.
bool no_backend_at_all(const Error& e) {
  return e.kind() == ErrorKind::unsupported && e.argument() == "backend" &&
         std::string(e.what()).rfind("backend = auto:", 0) == 0;
}

// gna::Error -> ValueError / TypeError / NotImplementedError / RuntimeError
// with the message kept and the C++ argument name in the exception's
// `argument` attribute.
void translate_error(const std::exception_ptr& error, void*) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    PyObject* type = PyExc_RuntimeError;
    switch (e.kind()) {
      case ErrorKind::value:
      case ErrorKind::unsupported: type = PyExc_ValueError; break;
      case ErrorKind::type: type = PyExc_TypeError; break;
      case ErrorKind::runtime: type = PyExc_RuntimeError; break;
    }
    if (no_backend_at_all(e)) type = PyExc_NotImplementedError;
    std::string message = e.what();
    if (const char* name = python_argument(e.argument())) message = name + (": " + message);
    nb::object exception = nb::handle(type)(message);
    nb::setattr(exception, "argument", nb::str(e.argument().c_str()));
    PyErr_SetObject(type, exception.ptr());
  }
}

}  // namespace
}  // namespace gna::python

NB_MODULE(_C, m) {
  using namespace gna::python;
  m.doc() = "gna C++ core: generalized neighborhood attention on DLPack arrays";
  nb::register_exception_translator(translate_error);

  nb::class_<Window>(m, "Window",
                     "Per-axis window parameters (lists of one entry per spatial axis)")
      .def(nb::init<std::vector<int64_t>, std::vector<int64_t>, std::vector<int64_t>,
                    std::vector<bool>, std::optional<double>>(),
           nb::arg("kernel_size"), nb::arg("stride"), nb::arg("dilation"), nb::arg("is_causal"),
           nb::arg("scale").none())
      .def_ro("kernel_size", &Window::kernel_size)
      .def_ro("stride", &Window::stride)
      .def_ro("dilation", &Window::dilation)
      .def_ro("is_causal", &Window::is_causal)
      .def_ro("scale", &Window::scale);

  m.def("forward", &forward, nb::arg("query"), nb::arg("key"), nb::arg("value"),
        nb::arg("output"), nb::arg("lse").none(), nb::arg("additional_keys").none(),
        nb::arg("additional_values").none(), nb::arg("window"), nb::arg("backend") = "auto",
        nb::arg("stream") = 0, nb::arg("q_tile").none() = nb::none(),
        nb::arg("kv_tile").none() = nb::none(),
        "Writes output (and lse when given); returns the name of the backend that ran.\n"
        "q_tile/kv_tile (both or neither) force the sm90 forward's tiles.");
  m.def("attention_forward", &attention_forward, nb::arg("query"), nb::arg("key"),
        nb::arg("value"), nb::arg("output"), nb::arg("lse").none(), nb::arg("is_causal"),
        nb::arg("scale").none(), nb::arg("query_offsets").none(), nb::arg("key_offsets").none(),
        nb::arg("backend") = "auto", nb::arg("stream") = 0, nb::arg("q_tile").none() = nb::none(),
        nb::arg("kv_tile").none() = nb::none(),
        "Dense (cross-, variable-length) attention [B, L, H, D]; offsets: packed sequences.");
  m.def("attention_backward", &attention_backward, nb::arg("query"), nb::arg("key"),
        nb::arg("value"), nb::arg("output"), nb::arg("lse"), nb::arg("grad_output"),
        nb::arg("grad_lse").none(), nb::arg("grad_query"), nb::arg("grad_key"),
        nb::arg("grad_value"), nb::arg("is_causal"), nb::arg("scale").none(),
        nb::arg("query_offsets").none(), nb::arg("key_offsets").none(),
        nb::arg("backend") = "auto", nb::arg("stream") = 0, nb::arg("deterministic") = false,
        nb::arg("q_tile").none() = nb::none(), nb::arg("kv_tile").none() = nb::none(),
        "Gradients of attention_forward.");
  m.def("packed_forward", &packed_forward, nb::arg("query"), nb::arg("key"), nb::arg("value"),
        nb::arg("output"), nb::arg("lse").none(), nb::arg("is_causal"), nb::arg("scale").none(),
        nb::arg("query_offsets"), nb::arg("key_offsets"), nb::arg("sequences"),
        nb::arg("query_max"), nb::arg("key_max"), nb::arg("status"), nb::arg("backend"),
        nb::arg("stream"),
        "attention_forward on packed sequences whose int32 offsets are in GPU memory (device\n"
        "addresses; status: 4 int32 on the GPU, 0 for none). Never waits for the GPU.");
  m.def("packed_backward", &packed_backward, nb::arg("query"), nb::arg("key"), nb::arg("value"),
        nb::arg("output"), nb::arg("lse"), nb::arg("grad_output"), nb::arg("grad_lse").none(),
        nb::arg("grad_query"), nb::arg("grad_key"), nb::arg("grad_value"), nb::arg("is_causal"),
        nb::arg("scale").none(), nb::arg("query_offsets"), nb::arg("key_offsets"),
        nb::arg("sequences"), nb::arg("status"), nb::arg("backend"), nb::arg("stream"),
        "Gradients of packed_forward.");
  m.def("describe_offsets_status", &describe_offsets_status, nb::arg("code"), nb::arg("index"),
        nb::arg("value"), nb::arg("expected"),
        "The message of a packed call's status record (empty when code is 0).");
  m.def("check_forward", &check_forward, nb::arg("query"), nb::arg("key"), nb::arg("value"),
        nb::arg("additional_keys").none(), nb::arg("additional_values").none(),
        nb::arg("window"), nb::arg("backend") = "auto",
        "Checks a forward call without running it; returns the backend it would use.");
  m.def("backward", &backward, nb::arg("query"), nb::arg("key"), nb::arg("value"),
        nb::arg("output"), nb::arg("lse"), nb::arg("grad_output"),
        nb::arg("grad_lse").none(), nb::arg("additional_keys").none(),
        nb::arg("additional_values").none(), nb::arg("grad_query"), nb::arg("grad_key"),
        nb::arg("grad_value"), nb::arg("grad_additional_keys").none(),
        nb::arg("grad_additional_values").none(), nb::arg("window"),
        nb::arg("backend") = "auto", nb::arg("stream") = 0, nb::arg("deterministic") = false,
        nb::arg("q_tile").none() = nb::none(), nb::arg("kv_tile").none() = nb::none(),
        "Writes the gradients; returns the name of the backend that ran.\n"
        "q_tile/kv_tile (both or neither) force the sm90 backward's tiles.");
  m.def("backend_names", &gna::backend_names, "Backends compiled into this build.");
  m.def("version", &gna::version, "The library's version (the file VERSION of the source tree).");
  m.def("set_thread_source", &set_thread_source, nb::arg("source").none(),
        "A callable giving the CPU thread count of each call (None: the library's default).");
  m.def("cpu_threads", [] { return gna::cpu_threads(threads_for_call()); },
        "Threads the next call on CPU tensors uses.");
  m.def("cuda_device_count", &gna::cuda_device_count,
        "CUDA devices this build can use (0 without CUDA).");
  bind_problem_info(m);
}
