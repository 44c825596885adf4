#include "problem_info.hpp"

#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/slab.hpp"
#include "gna/attention.hpp"
#include "gna/error.hpp"
#include "gna/problem.hpp"
#include "gna/sim.hpp"

namespace nb = nanobind;

namespace gna::python {
namespace {

// A problem described by sizes alone (no tensors), as Python passes it.
struct Spec {
  std::vector<int64_t> shape;
  // (kernel_size, stride, dilation, is_causal) of each axis
  std::vector<std::tuple<int64_t, int64_t, int64_t, bool>> axes;
  int64_t batch = 1, heads = 1, kv_heads = 1, head_dim = 64, head_dim_v = 64, extra_kv = 0;
  std::string dtype = "float16";
};

DType dtype_of(const std::string& name) {
  for (DType d : {DType::f32, DType::f16, DType::bf16, DType::f64}) {
    if (name == dtype_name(d)) return d;
  }
  throw Error(ErrorKind::type, "dtype",
              "dtype = '" + name + "': expected float16, bfloat16, float32 or float64");
}

Problem problem_of(const Spec& s) {
  const size_t rank = s.shape.size();
  if (rank < 1 || rank > static_cast<size_t>(kMaxSpatialRank)) {
    throw Error(ErrorKind::value, "shape",
                "shape has " + std::to_string(rank) + " extents: expected 1, 2 or 3");
  }
  if (s.axes.size() != rank) {
    throw Error(ErrorKind::value, "axes",
                "axes has " + std::to_string(s.axes.size()) + " entries, shape " +
                    std::to_string(rank));
  }
  Problem p;
  p.params.rank = static_cast<int>(rank);
  for (size_t a = 0; a < rank; ++a) {
    p.extent[a] = s.shape[a];
    const auto& [kernel_size, stride, dilation, is_causal] = s.axes[a];
    p.params.axis[a] = AxisParams{kernel_size, stride, dilation, is_causal};
  }
  p.batch = s.batch;
  p.heads = s.heads;
  p.kv_heads = s.kv_heads;
  p.head_dim = s.head_dim;
  p.head_dim_v = s.head_dim_v;
  p.extra_kv = s.extra_kv;
  p.dtype = dtype_of(s.dtype);
  validate(p);
  return p;
}

// Full attention over the same tokens: what the dense peers compute.
Problem dense_of(Problem p) {
  for (int a = 0; a < p.rank(); ++a) p.params.axis[a] = AxisParams{p.extent[a], 1, 1, false};
  return p;
}

nb::dict simulate(const Spec& spec) {
  const Problem p = problem_of(spec);
  const Problem dense = dense_of(p);
  nb::dict out;
  out["problem"] = p.describe();
  out["forward_flops"] = p.forward_flops();
  out["backward_flops"] = p.backward_flops();
  out["dense_forward_flops"] = dense.forward_flops();
  out["dense_backward_flops"] = dense.backward_flops();
  // The sm90 chooser's pick; a problem no sm90 tile fits gets the reason.
  try {
    if (p.empty()) throw Error(ErrorKind::unsupported, "shape", "empty problem: nothing to tile");
    const sim::RankedTiles r = sim::choose_tiles(p);
    nb::dict sm90;
    sm90["tiles"] = r.tiles.describe();
    sm90["visited_kv_tiles"] = r.sim.visited_kv_tiles;
    sm90["masked_kv_tiles"] = r.sim.masked_kv_tiles;
    sm90["flop_bound"] = r.sim.flop_bound;
    sm90["tile_bound"] = r.sim.tile_bound;
    sm90["predicted_ms"] = r.predicted_s * 1e3;
    sm90["predicted_speedup"] = r.predicted_speedup;
    out["sm90"] = sm90;
  } catch (const Error& e) {
    out["sm90"] = nb::none();
    out["sm90_reason"] = std::string(e.what());
  }
  return out;
}

// (name, reason) of every compiled backend, in the order `auto` tries them;
// an empty reason means it can run the problem.
std::vector<std::pair<std::string, std::string>> backends_for(const Spec& spec, bool backward,
                                                              const std::string& device,
                                                              int device_index) {
  if (device != "cpu" && device != "cuda") {
    throw Error(ErrorKind::value, "device", "device = '" + device + "': expected cpu or cuda");
  }
  const Device d = device == "cuda" ? Device{DeviceType::cuda, device_index} : Device{};
  std::vector<std::pair<std::string, std::string>> out;
  const Pass pass = backward ? Pass::backward : Pass::forward;
  for (const BackendInfo& b : backends(problem_of(spec), pass, d)) {
    if (b.compiled) out.emplace_back(b.name, b.reason);
  }
  return out;
}

// slab::plan of the queries [first, last] on one axis of a valid problem:
// ((key_lo, key_hi), (grid_lo, grid_hi)), absolute indices, inclusive.
using Span = std::pair<int64_t, int64_t>;
std::pair<Span, Span> slab_plan(int64_t length, std::tuple<int64_t, int64_t, int64_t, bool> axis,
                                int64_t first, int64_t last) {
  const auto& [kernel_size, stride, dilation, is_causal] = axis;
  Spec spec;  // the whole axis must itself be a valid 1-D problem
  spec.shape = {length};
  spec.axes = {axis};
  problem_of(spec);
  if (first <= last && (first < 0 || last >= length)) {
    throw Error(ErrorKind::value, "first",
                "queries " + std::to_string(first) + ".." + std::to_string(last) +
                    " do not lie on an axis of " + std::to_string(length) + " tokens");
  }
  const slab::Plan p =
      slab::plan(window::Axis{length, kernel_size, stride, dilation, is_causal}, first, last);
  return {{p.keys.lo, p.keys.hi}, {p.grid.lo, p.grid.hi}};
}

}  // namespace

void bind_problem_info(nb::module_& m) {
  nb::class_<Spec>(m, "ProblemSpec",
                   "A problem by its sizes alone (shape and axes: one entry per axis)")
      .def(nb::init<>())
      .def_rw("shape", &Spec::shape)
      .def_rw("axes", &Spec::axes, "(kernel_size, stride, dilation, is_causal) of each axis")
      .def_rw("batch", &Spec::batch)
      .def_rw("heads", &Spec::heads)
      .def_rw("kv_heads", &Spec::kv_heads)
      .def_rw("head_dim", &Spec::head_dim)
      .def_rw("head_dim_v", &Spec::head_dim_v)
      .def_rw("extra_kv", &Spec::extra_kv)
      .def_rw("dtype", &Spec::dtype);
  m.def("simulate", &simulate, nb::arg("spec"),
        "FLOPs of the problem and of dense attention over its tokens (forward, backward), and\n"
        "the sm90 tile chooser's pick with its bounds and cost-model time ('sm90': None and\n"
        "'sm90_reason' when no sm90 tile fits). Raises ValueError naming a bad argument.");
  m.def("validate", [](const Spec& spec) { problem_of(spec); }, nb::arg("spec"),
        "Raises ValueError / TypeError naming the argument when the problem breaks a rule.");
  m.def("slab_plan", &slab_plan, nb::arg("length"), nb::arg("axis"), nb::arg("first"),
        nb::arg("last"),
        "The halo rule of gna.distributed on one axis of `length` tokens with\n"
        "axis = (kernel_size, stride, dilation, is_causal), for the queries [first, last]\n"
        "(inclusive): ((key_lo, key_hi), (grid_lo, grid_hi)): the keys they see, and the\n"
        "local grid on which one call gives them their whole-axis windows. An empty slab\n"
        "(first > last) gets empty ranges (lo > hi).");
  m.def("backends", &backends_for, nb::arg("spec"), nb::arg("backward") = false,
        nb::arg("device") = "cpu", nb::arg("device_index") = 0,
        "(name, reason) of each compiled backend in the order backend='auto' tries them;\n"
        "an empty reason means the backend can run the problem on that device.");
}

}  // namespace gna::python
