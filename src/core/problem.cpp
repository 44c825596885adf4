#include "gna/problem.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/axes.hpp"
#include "core/box.hpp"
#include "core/check.hpp"
#include "core/checked.hpp"

namespace gna {

using detail::concat;
using detail::fail;
using detail::indexed;

int64_t Problem::tokens() const {
  int64_t n = 1;
  for (int a = 0; a < rank(); ++a) {
    if (extent[a] < 0) return 0;  // validate() names the negative extent
    n = detail::checked_mul(n, extent[a], "extent", "the token count, the product of extents");
  }
  return n;
}

double Problem::scale() const {
  return params.scale ? *params.scale : 1.0 / std::sqrt(static_cast<double>(head_dim));
}

bool Problem::empty() const { return batch == 0 || heads == 0 || tokens() == 0; }

namespace {

// Keys seen by all queries of one dilation group of m tokens: the sum of
// window::keys_seen over the group, in closed form so that huge axes cost
// nothing (tests/core/window_test.cpp checks it against that loop).
__int128 group_pairs(const window::Axis& ax, int64_t m) {
  const __int128 k = ax.kernel, s = ax.stride, n = m;
  // A non-causal window shifts inward at borders: always k keys (k <= m).
  if (!ax.causal) return n * k;
  // Causal: query p sees p + 1 - max(leader(p) - k + 1, 0) keys, where the
  // leader of a full run r is r*s + s - 1 and that of a partial last run m - 1.
  __int128 total = n * (n + 1) / 2;
  const __int128 full_runs = n / s;
  const __int128 first_cut = (k - s) / s + 1;  // first run with leader - k + 1 > 0
  if (full_runs > first_cut) {
    const __int128 runs = full_runs - first_cut;
    const __int128 run_sum = (first_cut + full_runs - 1) * runs / 2;
    total -= s * (s * run_sum + (s - k) * runs);
  }
  const __int128 partial = n - full_runs * s;
  if (partial > 0 && n > k) total -= partial * (n - k);
  return total;
}

// Sum of keys_seen over one axis: its dilation groups have two lengths.
__int128 axis_pairs(const window::Axis& ax) {
  const int64_t shorter = ax.length / ax.dilation, longer_groups = ax.length % ax.dilation;
  __int128 sum = 0;
  if (shorter > 0) sum += static_cast<__int128>(ax.dilation - longer_groups) * group_pairs(ax, shorter);
  if (longer_groups > 0) sum += static_cast<__int128>(longer_groups) * group_pairs(ax, shorter + 1);
  return sum;
}

}  // namespace

// The neighborhood is a Cartesian product and so are the queries, so the
// total pair count factorizes into per-axis sums.
int64_t Problem::visible_pairs() const {
  if (empty()) return 0;
  __int128 pairs = 1;
  for (int a = 0; a < rank(); ++a) {
    pairs *= axis_pairs(detail::axis_of(*this, a));
    if (pairs > detail::kMaxCount) {
      fail(ErrorKind::value, "extent", describe(),
           "more than 2^62 visible query-key pairs per batch and head");
    }
  }
  return static_cast<int64_t>(pairs);
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

namespace {

// Every tensor of the problem must have a countable element and byte size
// (2^62), so that nothing downstream (allocation, offsets, loops) wraps.
void check_sizes(const Problem& p) {
  const int64_t t = p.tokens();
  const auto bytes = static_cast<int64_t>(dtype_size(p.dtype));
  using detail::checked_product;
  checked_product({p.batch, t, p.heads, p.head_dim, bytes}, "batch",
                  "query bytes, batch * tokens * heads * head_dim * element size");
  checked_product({p.batch, t, p.heads, p.head_dim_v, bytes}, "batch",
                  "output bytes, batch * tokens * heads * head_dim_v * element size");
  checked_product({p.batch, t, p.kv_heads, std::max(p.head_dim, p.head_dim_v), bytes}, "batch",
                  "key/value bytes, batch * tokens * kv_heads * head_dim * element size");
  checked_product({p.batch, t, p.heads, 4}, "batch",
                  "lse bytes, batch * tokens * heads * 4");
  checked_product({p.batch, p.extra_kv, p.kv_heads, std::max(p.head_dim, p.head_dim_v), bytes},
                  "additional_keys",
                  "additional KV bytes, batch * tokens * kv_heads * head_dim * element size");
}

}  // namespace

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
  // Within 2^64, scale * score stays finite in float32 for every score of
  // half-precision inputs and for ordinary scores of wider ones; a larger
  // scale would overflow the backends' fp32 scores to inf and NaN.
  if (p.params.scale && std::fabs(*p.params.scale) > kMaxScale) {
    fail(ErrorKind::value, "scale", *p.params.scale,
         "|scale| must be at most 2^64 (1.8e19): scale * score would overflow");
  }
  check_sizes(p);
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
