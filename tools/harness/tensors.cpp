#include "harness/tensors.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/checked.hpp"
#include "core/half.hpp"

namespace gna::harness {
namespace {

using detail::concat;

template <typename T>
T pick(std::mt19937_64& rng, const std::vector<T>& options) {
  return options[std::uniform_int_distribution<size_t>(0, options.size() - 1)(rng)];
}

int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

bool chance(std::mt19937_64& rng, double p) {
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng) < p;
}

// Logical shape of each slot for a problem.
std::vector<int64_t> shape_of(const Problem& p, Tensors::Slot slot) {
  std::vector<int64_t> s{p.batch};
  for (int a = 0; a < p.rank(); ++a) s.push_back(p.extent[a]);
  auto extra = [&](int64_t d) { return std::vector<int64_t>{p.batch, p.extra_kv, p.kv_heads, d}; };
  switch (slot) {
    case Tensors::q: case Tensors::dq: s.push_back(p.heads); s.push_back(p.head_dim); break;
    case Tensors::k: case Tensors::dk: s.push_back(p.kv_heads); s.push_back(p.head_dim); break;
    case Tensors::v: case Tensors::dv: s.push_back(p.kv_heads); s.push_back(p.head_dim_v); break;
    case Tensors::o: case Tensors::dout: s.push_back(p.heads); s.push_back(p.head_dim_v); break;
    case Tensors::lse: case Tensors::dlse: s.push_back(p.heads); break;
    case Tensors::xk: case Tensors::dxk: return extra(p.head_dim);
    case Tensors::xv: case Tensors::dxv: return extra(p.head_dim_v);
    default: break;
  }
  return s;
}

// Strides for `shape` under `layout`; returns the number of elements spanned.
int64_t strides_for(const std::vector<int64_t>& shape, Layout layout, int64_t* stride) {
  const int n = static_cast<int>(shape.size());
  std::vector<int> order(n);  // memory order, outermost first
  for (int i = 0; i < n; ++i) order[i] = i;
  // heads-first: move the heads dimension (n - 2) right after batch.
  if (layout == Layout::heads_first && n >= 4) {
    order.erase(order.begin() + (n - 2));
    order.insert(order.begin() + 1, n - 2);
  }
  using detail::checked_add;
  using detail::checked_mul;
  const char* what = "elements a tensor spans";
  int64_t step = layout == Layout::strided_dim ? 2 : 1;
  for (int i = n - 1; i >= 0; --i) {
    const int d = order[i];
    stride[d] = step;
    step = checked_mul(step, std::max<int64_t>(shape[d], 1), "batch", what);
    if (layout == Layout::padded) step = checked_add(step, 8, "batch", what);
  }
  int64_t span = 1;
  for (int i = 0; i < n; ++i) {
    if (shape[i] == 0) return 0;
    span = checked_add(span, checked_mul(shape[i] - 1, stride[i], "batch", what), "batch", what);
  }
  return span;
}

// Calls f(offset) for every logical element of a view.
template <typename F>
void for_each_element(const TensorView& t, F&& f) {
  if (t.numel() == 0) return;
  int64_t idx[kMaxTensorDims] = {};
  for (;;) {
    int64_t off = 0;
    for (int i = 0; i < t.ndim; ++i) off += idx[i] * t.stride[i];
    f(off);
    int d = t.ndim - 1;
    while (d >= 0 && ++idx[d] == t.shape[d]) idx[d--] = 0;
    if (d < 0) return;
  }
}

bool is_output(Tensors::Slot s) {
  return s == Tensors::o || s == Tensors::lse || s == Tensors::dq || s == Tensors::dk ||
         s == Tensors::dv || s == Tensors::dxk || s == Tensors::dxv;
}

}  // namespace

Problem random_problem(std::mt19937_64& rng, const RandomSpec& spec) {
  Problem p;
  p.params.rank = pick(rng, spec.ranks);
  const int r = p.params.rank;
  const int64_t per_axis = std::max<int64_t>(
      1, static_cast<int64_t>(std::pow(static_cast<double>(spec.max_tokens), 1.0 / r)));
  int64_t tokens = 1;
  for (int a = 0; a < r; ++a) {
    // Favor extents near the per-axis budget, but allow small ones too.
    const int64_t hi = std::min(spec.max_extent, std::max<int64_t>(1, spec.max_tokens / tokens));
    const int64_t lo = std::min(hi, std::max<int64_t>(1, per_axis / 2));
    p.extent[a] = chance(rng, 0.2) ? uniform(rng, 1, hi) : uniform(rng, lo, hi);
    tokens *= p.extent[a];
  }
  for (int a = 0; a < r; ++a) {
    AxisParams& ax = p.params.axis[a];
    const int64_t n = p.extent[a];
    ax.dilation = 1;
    if (spec.dilation && chance(rng, 0.3)) ax.dilation = std::max<int64_t>(1, std::min(uniform(rng, 2, 4), n / 2));
    const int64_t kmax = n / ax.dilation;
    const int choice = static_cast<int>(uniform(rng, 0, 5));
    ax.kernel_size = choice == 0 ? 1 : choice == 1 ? kmax : uniform(rng, 1, kmax);
    const int s_choice = static_cast<int>(uniform(rng, 0, 3));
    ax.stride = s_choice == 0 ? 1 : s_choice == 1 ? ax.kernel_size : uniform(rng, 1, ax.kernel_size);
    ax.is_causal = spec.causal && chance(rng, 0.3);
  }
  p.batch = uniform(rng, 1, spec.max_batch);
  p.kv_heads = uniform(rng, 1, spec.max_kv_heads);
  p.heads = p.kv_heads * uniform(rng, 1, spec.max_group);
  p.head_dim = pick(rng, spec.head_dims);
  p.head_dim_v = spec.different_value_dim && chance(rng, 0.3) ? pick(rng, spec.head_dims) : p.head_dim;
  p.extra_kv = spec.extra_kv && chance(rng, 0.25) ? uniform(rng, 1, 6) : 0;
  p.dtype = pick(rng, spec.dtypes);
  if (chance(rng, 0.3)) p.params.scale = std::uniform_real_distribution<double>(0.05, 0.5)(rng);
  validate(p);
  return p;
}

const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::contiguous: return "contiguous";
    case Layout::padded: return "padded";
    case Layout::heads_first: return "heads-first";
    case Layout::strided_dim: return "strided-dim";
  }
  return "?";
}

Layout random_layout(std::mt19937_64& rng, bool allow_strided_dim) {
  const int n = allow_strided_dim ? 4 : 3;
  const int i = static_cast<int>(uniform(rng, 0, n * 2 - 1));
  return i >= n ? Layout::contiguous : static_cast<Layout>(i);  // half contiguous
}

const char* slot_name(Tensors::Slot slot) {
  static const char* names[] = {"query", "key", "value", "output", "lse",
                                "additional_keys", "additional_values", "grad_output",
                                "grad_query", "grad_key", "grad_value",
                                "grad_additional_keys", "grad_additional_values", "grad_lse"};
  return names[slot];
}

Tensors::Tensors(const Problem& problem, Device device, Layout layout, bool grad_lse)
    : problem_(problem), device_(device), views_(slot_count), buffers_(slot_count) {
  for (int i = 0; i < slot_count; ++i) {
    const auto slot = static_cast<Slot>(i);
    if ((slot == xk || slot == xv || slot == dxk || slot == dxv) && problem.extra_kv == 0) continue;
    if (slot == dlse && !grad_lse) continue;
    const std::vector<int64_t> shape = shape_of(problem, slot);
    TensorView& t = views_[i];
    t.ndim = static_cast<int>(shape.size());
    t.dtype = slot == lse || slot == dlse ? DType::f32 : problem.dtype;
    t.device = device;
    std::copy(shape.begin(), shape.end(), t.shape);
    // LSE-shaped tensors have no head dim for heads_first to move.
    Layout own = layout;
    if (slot == lse) own = Layout::contiguous;
    if (slot == dlse && layout != Layout::contiguous) own = Layout::padded;
    const int64_t span = strides_for(shape, own, t.stride);
    const int64_t bytes = detail::checked_mul(span, static_cast<int64_t>(dtype_size(t.dtype)),
                                              "batch", concat(slot_name(slot), " bytes"));
    try {
      buffers_[i] = Buffer(device, static_cast<size_t>(bytes));
    } catch (const Error& e) {
      // Say which tensor could not be had, and how large it was.
      throw Error(e.kind(), e.argument(), concat(slot_name(slot), ": ", e.what()));
    }
    t.data = buffers_[i].data();
  }
}

void Tensors::randomize_inputs(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> value(-1.0, 1.0);
  for (int i = 0; i < slot_count; ++i) {
    const auto slot = static_cast<Slot>(i);
    const TensorView& t = views_[i];
    if (!t.defined() || is_output(slot)) continue;
    std::vector<unsigned char> host(buffers_[i].bytes());
    for_each_element(t, [&](int64_t off) {
      detail::store_from_double(host.data(), t.dtype, off, value(rng));
    });
    buffers_[i].upload(host.data(), host.size());
  }
  poison_outputs();
}

void Tensors::poison_outputs() {
  for (int i = 0; i < slot_count; ++i) {
    if (views_[i].defined() && is_output(static_cast<Slot>(i))) buffers_[i].fill_byte(0xff);
  }
}

void Tensors::copy_slot_from(const Tensors& other, Slot slot) {
  std::vector<unsigned char> host(other.buffers_[slot].bytes());
  other.buffers_[slot].download(host.data(), host.size());
  buffers_[slot].upload(host.data(), host.size());
}

void Tensors::copy_from(const Tensors& other) {
  for (int i = 0; i < slot_count; ++i) copy_slot_from(other, static_cast<Slot>(i));
}

void Tensors::copy_forward_results_from(const Tensors& other) {
  copy_slot_from(other, o);
  copy_slot_from(other, lse);
}

TensorView Tensors::host_view(Slot slot, std::vector<unsigned char>& storage) const {
  TensorView t = views_[slot];
  if (device_.type == DeviceType::cpu) return t;
  storage.resize(buffers_[slot].bytes());
  buffers_[slot].download(storage.data(), storage.size());
  t.data = storage.data();
  t.device = Device{};
  return t;
}

ForwardArgs Tensors::forward_args() const {
  ForwardArgs a;
  a.query = views_[q];
  a.key = views_[k];
  a.value = views_[v];
  a.output = views_[o];
  a.lse = views_[lse];
  a.extra_key = views_[xk];
  a.extra_value = views_[xv];
  return a;
}

BackwardArgs Tensors::backward_args() const {
  BackwardArgs a;
  a.query = views_[q];
  a.key = views_[k];
  a.value = views_[v];
  a.output = views_[o];
  a.lse = views_[lse];
  a.grad_output = views_[dout];
  a.extra_key = views_[xk];
  a.extra_value = views_[xv];
  a.grad_query = views_[dq];
  a.grad_key = views_[dk];
  a.grad_value = views_[dv];
  a.grad_extra_key = views_[dxk];
  a.grad_extra_value = views_[dxv];
  a.grad_lse = views_[dlse];
  return a;
}

Difference compare(const TensorView& a, const TensorView& b) {
  Difference d;
  // Walk both views in lockstep through their logical indices.
  if (a.numel() == 0) return d;
  int64_t idx[kMaxTensorDims] = {};
  for (;;) {
    int64_t oa = 0, ob = 0;
    for (int i = 0; i < a.ndim; ++i) {
      oa += idx[i] * a.stride[i];
      ob += idx[i] * b.stride[i];
    }
    const double va = detail::load_as_double(a.data, a.dtype, oa);
    const double vb = detail::load_as_double(b.data, b.dtype, ob);
    if (!std::isfinite(va) && std::isfinite(vb)) d.finite = false;
    d.max_abs = std::max(d.max_abs, std::fabs(va - vb));
    d.ref_max = std::max(d.ref_max, std::fabs(vb));
    int dim = a.ndim - 1;
    while (dim >= 0 && ++idx[dim] == a.shape[dim]) idx[dim--] = 0;
    if (dim < 0) break;
  }
  return d;
}

double tolerance(DType dtype, bool is_lse) {
  if (is_lse) return dtype == DType::f64 ? 1e-6 : 1e-3;  // LSE is fp32 everywhere
  switch (dtype) {
    case DType::f64: return 1e-9;
    case DType::f32: return 1e-4;
    case DType::f16: return 1e-2;
    case DType::bf16: return 5e-2;
  }
  return 0.0;
}

}  // namespace gna::harness
