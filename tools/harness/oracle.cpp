#include "harness/oracle.hpp"

#include <algorithm>
#include <cmath>

#include "core/half.hpp"

namespace gna::harness {
namespace {

// One axis, spelled out exactly as docs/semantics.md words it.
bool axis_sees(int64_t n, const AxisParams& ax, int64_t query, int64_t key) {
  const int64_t d = ax.dilation, k = ax.kernel_size, s = ax.stride;
  // 1. Dilation groups; attention never crosses them.
  if (query % d != key % d) return false;
  const int64_t g = query % d;
  const int64_t p = query / d;                  // query's in-group position
  const int64_t q = key / d;                    // key's in-group position
  int64_t m = 0;                                // tokens of group g: ceil((n - g) / d)
  for (int64_t i = g; i < n; i += d) ++m;
  // 3. Runs of s queries share the window of their leader.
  const int64_t run_first = (p / s) * s;
  if (ax.is_causal) {
    // 5. Leader is the last of the run; keys from leader - k + 1 up to p.
    const int64_t leader = std::min(run_first + s - 1, m - 1);
    const int64_t first = std::max<int64_t>(leader - k + 1, 0);
    return first <= q && q <= p;
  }
  // 2. + 4. Reaches L and R around a center clamped into [L, m - 1 - R].
  const int64_t left = k / 2;
  const int64_t right = k - 1 - left;
  const int64_t leader = std::min(run_first + s / 2, m - 1);
  int64_t center = leader;
  if (center < left) center = left;
  if (center > m - 1 - right) center = m - 1 - right;
  return center - left <= q && q <= center + right;
}

void coords(const Problem& p, int64_t t, int64_t* x) {
  for (int a = p.rank() - 1; a >= 0; --a) {
    x[a] = t % p.extent[a];
    t /= p.extent[a];
  }
}

// Offset of element e of (b, token t or additional token, head h).
int64_t offset(const Problem& p, const TensorView& t, int64_t b, int64_t token, int64_t h,
               int64_t e, bool additional) {
  if (additional) {
    return b * t.stride[0] + token * t.stride[1] + h * t.stride[2] + e * t.stride[3];
  }
  int64_t x[kMaxSpatialRank];
  coords(p, token, x);
  int64_t off = b * t.stride[0] + h * t.stride[p.rank() + 1];
  for (int a = 0; a < p.rank(); ++a) off += x[a] * t.stride[1 + a];
  if (t.ndim == p.rank() + 3) off += e * t.stride[p.rank() + 2];
  return off;
}

double get(const Problem& p, const TensorView& t, int64_t b, int64_t token, int64_t h, int64_t e,
           bool additional = false) {
  return detail::load_as_double(t.data, t.dtype, offset(p, t, b, token, h, e, additional));
}

void put(const Problem& p, const TensorView& t, int64_t b, int64_t token, int64_t h, int64_t e,
         double v, bool additional = false) {
  detail::store_from_double(t.data, t.dtype, offset(p, t, b, token, h, e, additional), v);
}

// Key list of the dense problem: T spatial keys then Nx additional ones.
struct Keys {
  const Problem& p;
  const TensorView& k;
  const TensorView& v;
  const TensorView& xk;
  const TensorView& xv;
  int64_t count() const { return p.tokens() + p.extra_kv; }
  bool extra(int64_t j) const { return j >= p.tokens(); }
  int64_t index(int64_t j) const { return extra(j) ? j - p.tokens() : j; }
  double key(int64_t b, int64_t j, int64_t h, int64_t e) const {
    return get(p, extra(j) ? xk : k, b, index(j), h, e, extra(j));
  }
  double value(int64_t b, int64_t j, int64_t h, int64_t e) const {
    return get(p, extra(j) ? xv : v, b, index(j), h, e, extra(j));
  }
};

bool allowed(const Problem& p, const std::vector<bool>& mask, int64_t i, int64_t j) {
  return j >= p.tokens() || mask[static_cast<size_t>(i * p.tokens() + j)];
}

double score(const Problem& p, const TensorView& q, const Keys& keys, int64_t b, int64_t i,
             int64_t h, int64_t j) {
  const int64_t hk = h / (p.heads / p.kv_heads);
  double s = 0.0;
  for (int64_t e = 0; e < p.head_dim; ++e) s += get(p, q, b, i, h, e) * keys.key(b, j, hk, e);
  return s * p.scale();
}

}  // namespace

std::vector<bool> oracle_mask(const Problem& p) {
  const int64_t T = p.tokens();
  std::vector<bool> mask(static_cast<size_t>(T * T));
  int64_t xi[kMaxSpatialRank], xj[kMaxSpatialRank];
  for (int64_t i = 0; i < T; ++i) {
    coords(p, i, xi);
    for (int64_t j = 0; j < T; ++j) {
      coords(p, j, xj);
      bool all = true;
      for (int a = 0; a < p.rank() && all; ++a) {
        all = axis_sees(p.extent[a], p.params.axis[a], xi[a], xj[a]);
      }
      mask[static_cast<size_t>(i * T + j)] = all;
    }
  }
  return mask;
}

void oracle_forward(const Problem& p, const ForwardArgs& args) {
  const std::vector<bool> mask = oracle_mask(p);
  const Keys keys{p, args.key, args.value, args.extra_key, args.extra_value};
  std::vector<double> s(static_cast<size_t>(keys.count()));
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t h = 0; h < p.heads; ++h) {
      const int64_t hk = h / (p.heads / p.kv_heads);
      for (int64_t i = 0; i < p.tokens(); ++i) {
        double max = -INFINITY;
        for (int64_t j = 0; j < keys.count(); ++j) {
          s[j] = allowed(p, mask, i, j) ? score(p, args.query, keys, b, i, h, j) : -INFINITY;
          max = std::max(max, s[j]);
        }
        double sum = 0.0;
        for (int64_t j = 0; j < keys.count(); ++j) sum += std::exp(s[j] - max);
        for (int64_t e = 0; e < p.head_dim_v; ++e) {
          double o = 0.0;
          for (int64_t j = 0; j < keys.count(); ++j) {
            if (s[j] > -INFINITY) o += std::exp(s[j] - max) / sum * keys.value(b, j, hk, e);
          }
          put(p, args.output, b, i, h, e, o);
        }
        if (args.lse.defined()) {
          const int64_t off = offset(p, args.lse, b, i, h, 0, false);
          detail::store_from_double(args.lse.data, DType::f32, off, max + std::log(sum));
        }
      }
    }
  }
}

void oracle_backward(const Problem& p, const BackwardArgs& args) {
  const std::vector<bool> mask = oracle_mask(p);
  const Keys keys{p, args.key, args.value, args.extra_key, args.extra_value};
  const int64_t T = p.tokens(), N = keys.count(), D = p.head_dim, Dv = p.head_dim_v;
  const int64_t group = p.heads / p.kv_heads;
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t hk = 0; hk < p.kv_heads; ++hk) {
      // Dense gradients of this kv head's keys and values, summed over its query heads.
      std::vector<double> dk(static_cast<size_t>(N * D), 0.0), dv(static_cast<size_t>(N * Dv), 0.0);
      for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
        for (int64_t i = 0; i < T; ++i) {
          // Float64 recomputes the row's softmax (the float32 lse would limit
          // its gradients), as the reference backend does; other dtypes read
          // the lse: max = lse, sum = 1.
          double max = detail::load_as_double(args.lse.data, DType::f32,
                                              offset(p, args.lse, b, i, h, 0, false));
          double sum = 1.0;
          if (p.dtype == DType::f64) {
            max = -INFINITY;
            sum = 0.0;
            for (int64_t j = 0; j < N; ++j) {
              if (allowed(p, mask, i, j)) max = std::max(max, score(p, args.query, keys, b, i, h, j));
            }
            for (int64_t j = 0; j < N; ++j) {
              if (allowed(p, mask, i, j)) sum += std::exp(score(p, args.query, keys, b, i, h, j) - max);
            }
          }
          double delta = 0.0;
          for (int64_t e = 0; e < Dv; ++e) {
            delta += get(p, args.grad_output, b, i, h, e) * get(p, args.output, b, i, h, e);
          }
          if (args.grad_lse.defined()) {
            delta -= detail::load_as_double(args.grad_lse.data, DType::f32,
                                            offset(p, args.grad_lse, b, i, h, 0, false));
          }
          std::vector<double> dq(static_cast<size_t>(D), 0.0);
          for (int64_t j = 0; j < N; ++j) {
            if (!allowed(p, mask, i, j)) continue;
            const double prob = std::exp(score(p, args.query, keys, b, i, h, j) - max) / sum;
            double dp = 0.0;
            for (int64_t e = 0; e < Dv; ++e) {
              const double g = get(p, args.grad_output, b, i, h, e);
              dp += g * keys.value(b, j, hk, e);
              dv[j * Dv + e] += prob * g;
            }
            const double ds = prob * (dp - delta) * p.scale();
            for (int64_t e = 0; e < D; ++e) {
              dq[e] += ds * keys.key(b, j, hk, e);
              dk[j * D + e] += ds * get(p, args.query, b, i, h, e);
            }
          }
          for (int64_t e = 0; e < D; ++e) put(p, args.grad_query, b, i, h, e, dq[e]);
        }
      }
      for (int64_t j = 0; j < N; ++j) {
        const bool x = keys.extra(j);
        const TensorView& gk = x ? args.grad_extra_key : args.grad_key;
        const TensorView& gv = x ? args.grad_extra_value : args.grad_value;
        for (int64_t e = 0; e < D; ++e) put(p, gk, b, keys.index(j), hk, e, dk[j * D + e], x);
        for (int64_t e = 0; e < Dv; ++e) put(p, gv, b, keys.index(j), hk, e, dv[j * Dv + e], x);
      }
    }
  }
}

}  // namespace gna::harness
