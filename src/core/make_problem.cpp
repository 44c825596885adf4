// Reads a Problem off the caller's tensors and checks that every tensor
// agrees with it: rank, dtype, device, extents, strides.
#include <initializer_list>
#include <limits>
#include <string>

#include "core/check.hpp"
#include "core/checked.hpp"
#include "gna/attention.hpp"

namespace gna {

using detail::concat;
using detail::fail;
using detail::indexed;

namespace {

struct Dim {
  int64_t size;
  const char* meaning;  // "batch", "spatial extent X1", ...
};

// A tensor's expected layout, at most kMaxTensorDims dimensions, kept in
// place: every call builds several (no heap allocation per call).
class Dims {
 public:
  Dims() = default;
  Dims(std::initializer_list<Dim> dims) {
    for (const Dim& d : dims) push_back(d);
  }
  void push_back(Dim d) { dims_[n_++] = d; }
  size_t size() const { return static_cast<size_t>(n_); }
  const Dim& operator[](size_t i) const { return dims_[i]; }

 private:
  Dim dims_[kMaxTensorDims] = {};
  int n_ = 0;
};

const char* spatial_name(int a) {
  static const char* names[] = {"spatial extent X0", "spatial extent X1", "spatial extent X2"};
  return names[a];
}

std::string layout_of(const Dims& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += concat(i ? ", " : "", dims[i].meaning);
  return s + "]";
}

void check_required(const TensorView& t, const char* name) {
  if (!t.defined()) fail(ErrorKind::type, name, "None", "this tensor is required");
}

// Checks one tensor against the layout the problem implies. `dims[i].size`
// of -1 means "any size" (the first tensor defines it).
void check_tensor(const TensorView& t, const char* name, const Dims& dims,
                  DType dtype, Device device, bool written) {
  const int ndim = static_cast<int>(dims.size());
  if (t.ndim != ndim) {
    fail(ErrorKind::type, concat(name, ".ndim"), t.ndim,
         concat("expected ", ndim, " dimensions ", layout_of(dims)));
  }
  if (t.dtype != dtype) {
    fail(ErrorKind::type, concat(name, ".dtype"), dtype_name(t.dtype),
         concat("expected ", dtype_name(dtype)));
  }
  if (t.device != device) {
    fail(ErrorKind::type, concat(name, ".device"), device_name(t.device),
         concat("all tensors must be on ", device_name(device)));
  }
  // Any single size or product beyond 2^62 elements cannot be indexed safely.
  constexpr int64_t kMaxElements = int64_t{1} << 62;
  int64_t numel = 1;
  // Names are built only for a message: this runs for every dimension of
  // every tensor of every call.
  for (int i = 0; i < ndim; ++i) {
    if (t.shape[i] < 0) {
      fail(ErrorKind::value, concat(name, ".shape[", i, "]"), t.shape[i], "must be >= 0");
    }
    if (dims[i].size >= 0 && t.shape[i] != dims[i].size) {
      fail(ErrorKind::value, concat(name, ".shape[", i, "]"), t.shape[i],
           concat("expected ", dims[i].size, " (", dims[i].meaning, ") for layout ",
                  layout_of(dims)));
    }
    if (t.shape[i] > 0 && numel > kMaxElements / t.shape[i]) {
      fail(ErrorKind::value, concat(name, ".shape"), "too large", "more than 2^62 elements");
    }
    numel *= t.shape[i];
    if (t.stride[i] < 0) {
      fail(ErrorKind::value, concat(name, ".stride[", i, "]"), t.stride[i], "must be >= 0");
    }
  }
  // The last element's offset (sum of (shape - 1) * stride) must be
  // countable too: the strides are the caller's, not derived from the shape.
  int64_t last = 0;
  for (int i = 0; i < ndim && numel > 0; ++i) {
    last = detail::checked_offset(
        last, t.shape[i], t.stride[i], [&] { return concat(name, ".stride[", i, "]"); },
        "element offset");
  }
  // Stride 0 aliases elements of an output, unless it has no elements at all
  // (numpy gives empty arrays zero strides).
  for (int i = 0; i < ndim && written && numel > 0; ++i) {
    if (t.stride[i] == 0 && t.shape[i] > 1) {
      fail(ErrorKind::value, concat(name, ".stride[", i, "]"), 0,
           "an output with stride 0 would write several results to one element");
    }
  }
  if (numel > 0 && t.data == nullptr) {
    fail(ErrorKind::value, concat(name, ".data"), "null", "non-empty tensor needs memory");
  }
}

// Shapes common to forward and backward.
struct Layouts {
  Dims q, k, v, o, lse, xk, xv;
};

Problem read_shapes(const Params& params, const TensorView& q, const TensorView& k,
                    const TensorView& v, const TensorView& xk, const TensorView& xv,
                    Layouts& out) {
  if (params.rank < 1 || params.rank > kMaxSpatialRank) {
    fail(ErrorKind::value, "rank", params.rank, "spatial rank must be 1, 2 or 3");
  }
  const int r = params.rank;
  check_required(q, "query");
  check_required(k, "key");
  check_required(v, "value");
  if (q.ndim != r + 3) {
    fail(ErrorKind::type, "query.ndim", q.ndim,
         concat("a ", r, "-D neighborhood needs query of ", r + 3,
                " dimensions [batch, X0", r > 1 ? ", X1" : "", r > 2 ? ", X2" : "",
                ", heads, head_dim]"));
  }
  if (q.dtype != DType::f32 && q.dtype != DType::f16 && q.dtype != DType::bf16 &&
      q.dtype != DType::f64) {
    fail(ErrorKind::type, "query.dtype", static_cast<int>(q.dtype), "unknown dtype");
  }
  Problem p;
  p.params = params;
  p.dtype = q.dtype;
  p.batch = q.shape[0];
  for (int a = 0; a < r; ++a) p.extent[a] = q.shape[1 + a];
  p.heads = q.shape[r + 1];
  p.head_dim = q.shape[r + 2];
  if (k.ndim == r + 3) p.kv_heads = k.shape[r + 1];
  if (v.ndim == r + 3) p.head_dim_v = v.shape[r + 2];

  Dims tokens{{p.batch, "batch"}};
  for (int a = 0; a < r; ++a) tokens.push_back({p.extent[a], spatial_name(a)});
  auto with = [&](Dims dims, Dim heads, Dim dim) {
    dims.push_back(heads);
    if (dim.size != -2) dims.push_back(dim);
    return dims;
  };
  out.q = with(tokens, {p.heads, "heads"}, {p.head_dim, "head_dim"});
  out.k = with(tokens, {p.kv_heads, "kv_heads"}, {p.head_dim, "head_dim"});
  out.v = with(tokens, {p.kv_heads, "kv_heads"}, {p.head_dim_v, "head_dim_v"});
  out.o = with(tokens, {p.heads, "heads"}, {p.head_dim_v, "head_dim_v"});
  out.lse = with(tokens, {p.heads, "heads"}, {-2, ""});

  check_tensor(q, "query", out.q, p.dtype, q.device, false);
  check_tensor(k, "key", out.k, p.dtype, q.device, false);
  check_tensor(v, "value", out.v, p.dtype, q.device, false);

  if (xk.defined() != xv.defined()) {
    fail(ErrorKind::value, xk.defined() ? "additional_values" : "additional_keys", "None",
         "additional_keys and additional_values must be given together");
  }
  if (xk.defined()) {
    if (xk.ndim == 4) p.extra_kv = xk.shape[1];
    out.xk = {{p.batch, "batch"}, {p.extra_kv, "additional tokens"},
              {p.kv_heads, "kv_heads"}, {p.head_dim, "head_dim"}};
    out.xv = {{p.batch, "batch"}, {p.extra_kv, "additional tokens"},
              {p.kv_heads, "kv_heads"}, {p.head_dim_v, "head_dim_v"}};
    check_tensor(xk, "additional_keys", out.xk, p.dtype, q.device, false);
    check_tensor(xv, "additional_values", out.xv, p.dtype, q.device, false);
  }
  return p;
}

}  // namespace

Problem make_problem(const Params& params, const ForwardArgs& args) {
  Layouts l;
  Problem p = read_shapes(params, args.query, args.key, args.value, args.extra_key,
                          args.extra_value, l);
  const Device dev = args.query.device;
  check_required(args.output, "output");
  check_tensor(args.output, "output", l.o, p.dtype, dev, true);
  if (args.lse.defined()) check_tensor(args.lse, "lse", l.lse, DType::f32, dev, true);
  validate(p);
  return p;
}

Problem make_problem(const Params& params, const BackwardArgs& args) {
  Layouts l;
  Problem p = read_shapes(params, args.query, args.key, args.value, args.extra_key,
                          args.extra_value, l);
  const Device dev = args.query.device;
  check_required(args.output, "output");
  check_required(args.lse, "lse");
  check_required(args.grad_output, "grad_output");
  check_required(args.grad_query, "grad_query");
  check_required(args.grad_key, "grad_key");
  check_required(args.grad_value, "grad_value");
  check_tensor(args.output, "output", l.o, p.dtype, dev, false);
  check_tensor(args.lse, "lse", l.lse, DType::f32, dev, false);
  check_tensor(args.grad_output, "grad_output", l.o, p.dtype, dev, false);
  if (args.grad_lse.defined()) {
    check_tensor(args.grad_lse, "grad_lse", l.lse, DType::f32, dev, false);
  }
  check_tensor(args.grad_query, "grad_query", l.q, p.dtype, dev, true);
  check_tensor(args.grad_key, "grad_key", l.k, p.dtype, dev, true);
  check_tensor(args.grad_value, "grad_value", l.v, p.dtype, dev, true);
  if (args.extra_key.defined()) {
    check_required(args.grad_extra_key, "grad_additional_keys");
    check_required(args.grad_extra_value, "grad_additional_values");
    check_tensor(args.grad_extra_key, "grad_additional_keys", l.xk, p.dtype, dev, true);
    check_tensor(args.grad_extra_value, "grad_additional_values", l.xv, p.dtype, dev, true);
  }
  validate(p);
  return p;
}

}  // namespace gna
