#include "gna/problem.hpp"

#include <cmath>
#include <sstream>

#include "core/axes.hpp"
#include "core/box.hpp"
#include "core/check.hpp"

namespace gna {

using detail::concat;
using detail::fail;
using detail::indexed;

int64_t Problem::tokens() const {
  int64_t n = 1;
  for (int a = 0; a < rank(); ++a) n *= extent[a];
  return n;
}

double Problem::scale() const {
  return params.scale ? *params.scale : 1.0 / std::sqrt(static_cast<double>(head_dim));
}

bool Problem::empty() const { return batch == 0 || heads == 0 || tokens() == 0; }

// The neighborhood is a Cartesian product and so are the queries, so the
// total pair count factorizes into per-axis sums.
int64_t Problem::visible_pairs() const {
  if (empty()) return 0;
  int64_t pairs = 1;
  for (int a = 0; a < rank(); ++a) {
    const window::Axis ax = detail::axis_of(*this, a);
    int64_t sum = 0;
    for (int64_t i = 0; i < ax.length; ++i) sum += window::keys_seen(ax, i);
    pairs *= sum;
  }
  return pairs;
}

double Problem::forward_flops() const {
  const double pairs = static_cast<double>(visible_pairs()) +
                       static_cast<double>(tokens()) * static_cast<double>(extra_kv);
  return 2.0 * pairs * static_cast<double>(batch * heads) *
         static_cast<double>(head_dim + head_dim_v);
}

// Recompute S, then dP, dV, dQ, dK: three products over D and two over Dv.
double Problem::backward_flops() const {
  const double pairs = static_cast<double>(visible_pairs()) +
                       static_cast<double>(tokens()) * static_cast<double>(extra_kv);
  return 2.0 * pairs * static_cast<double>(batch * heads) *
         static_cast<double>(3 * head_dim + 2 * head_dim_v);
}

double Problem::dense_forward_flops() const {
  const double t = static_cast<double>(tokens());
  return 2.0 * t * (t + static_cast<double>(extra_kv)) * static_cast<double>(batch * heads) *
         static_cast<double>(head_dim + head_dim_v);
}

std::string Problem::describe() const {
  auto join = [&](auto get) {
    std::ostringstream os;
    for (int a = 0; a < rank(); ++a) os << (a ? "x" : "") << get(a);
    return os.str();
  };
  std::ostringstream os;
  os << rank() << "-D " << join([&](int a) { return extent[a]; })
     << " window " << join([&](int a) { return params.axis[a].kernel_size; })
     << " stride " << join([&](int a) { return params.axis[a].stride; })
     << " dilation " << join([&](int a) { return params.axis[a].dilation; })
     << " causal " << join([&](int a) { return params.axis[a].is_causal ? 1 : 0; })
     << " B=" << batch << " H=" << heads << "/" << kv_heads << " D=" << head_dim << "/"
     << head_dim_v << " " << dtype_name(dtype);
  if (extra_kv) os << " extra_kv=" << extra_kv;
  return os.str();
}

void validate(const Problem& p) {
  if (p.params.rank < 1 || p.params.rank > kMaxSpatialRank) {
    fail(ErrorKind::value, "rank", p.params.rank, "spatial rank must be 1, 2 or 3");
  }
  if (p.batch < 0) fail(ErrorKind::value, "batch", p.batch, "must be >= 0");
  for (int a = 0; a < p.rank(); ++a) {
    if (p.extent[a] < 0) fail(ErrorKind::value, indexed("extent", a), p.extent[a], "must be >= 0");
  }
  const bool empty = p.empty();
  for (int a = 0; a < p.rank(); ++a) {
    const AxisParams& ax = p.params.axis[a];
    if (ax.kernel_size < 1) {
      fail(ErrorKind::value, indexed("kernel_size", a), ax.kernel_size, "must be >= 1");
    }
    if (ax.stride < 1) fail(ErrorKind::value, indexed("stride", a), ax.stride, "must be >= 1");
    if (ax.dilation < 1) {
      fail(ErrorKind::value, indexed("dilation", a), ax.dilation, "must be >= 1");
    }
    if (ax.stride > ax.kernel_size) {
      fail(ErrorKind::value, indexed("stride", a), ax.stride,
           concat("stride must not exceed kernel_size[", a, "] = ", ax.kernel_size));
    }
    // An empty problem has no axis to fit the window into; nothing runs.
    if (!empty && ax.kernel_size > p.extent[a] / ax.dilation) {
      fail(ErrorKind::value, indexed("kernel_size", a), ax.kernel_size,
           concat("kernel_size * dilation = ", ax.kernel_size, " * ", ax.dilation,
                  " must not exceed the axis length ", p.extent[a]));
    }
  }
  if (p.heads < 0) fail(ErrorKind::value, "heads", p.heads, "must be >= 0");
  // No heads at all is an empty problem; otherwise every query head needs a
  // key/value head to read.
  if (p.kv_heads < (p.heads == 0 ? 0 : 1)) {
    fail(ErrorKind::value, "kv_heads", p.kv_heads, "must be >= 1");
  }
  if (p.kv_heads > 0 && p.heads % p.kv_heads != 0) {
    fail(ErrorKind::value, "kv_heads", p.kv_heads,
         concat("query heads (", p.heads, ") must be a multiple of key/value heads"));
  }
  if (p.head_dim < 1) fail(ErrorKind::value, "head_dim", p.head_dim, "must be >= 1");
  if (p.head_dim_v < 1) fail(ErrorKind::value, "head_dim_v", p.head_dim_v, "must be >= 1");
  if (p.extra_kv < 0) {
    fail(ErrorKind::value, "additional_keys", p.extra_kv, "token count must be >= 0");
  }
  if (p.params.scale && !std::isfinite(*p.params.scale)) {
    fail(ErrorKind::value, "scale", *p.params.scale, "must be a finite number");
  }
}

std::vector<std::vector<int64_t>> neighborhood(const Problem& p,
                                               const std::vector<int64_t>& query) {
  validate(p);
  if (static_cast<int>(query.size()) != p.rank()) {
    fail(ErrorKind::value, "query", query.size(),
         concat("a query of a ", p.rank(), "-D problem has ", p.rank(), " coordinates"));
  }
  for (int a = 0; a < p.rank(); ++a) {
    if (query[a] < 0 || query[a] >= p.extent[a]) {
      fail(ErrorKind::value, indexed("query", a), query[a],
           concat("must lie in [0, ", p.extent[a], ")"));
    }
  }
  std::vector<std::vector<int64_t>> keys;
  detail::for_each_token(detail::Axes(p).keys_of(query.data()), [&](const int64_t* y) {
    keys.emplace_back(y, y + p.rank());
  });
  return keys;
}

}  // namespace gna
