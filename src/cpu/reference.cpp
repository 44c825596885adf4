// The reference backend: exact generalized neighborhood attention on the
// CPU, every dtype, fp64 accumulation. It is the oracle every other backend
// is tested against, so it favors plain loops over speed; rows run in
// parallel so that test sweeps stay fast.
#include <cmath>
#include <vector>

#include "core/backend.hpp"
#include "core/box.hpp"
#include "core/check.hpp"
#include "cpu/layout.hpp"
#include "cpu/thread_pool.hpp"

namespace gna::cpu {
namespace {

using detail::Axes;
using detail::Box;
using detail::for_each_token;

int64_t token_index(const Problem& p, const int64_t* x) {
  int64_t t = 0;
  for (int a = 0; a < p.rank(); ++a) t = t * p.extent[a] + x[a];
  return t;
}

double dot(const double* a, const RowView& view, int64_t row, int64_t n) {
  double s = 0.0;
  for (int64_t e = 0; e < n; ++e) s += a[e] * view.load(row, e);
  return s;
}

// Additional KV tensors are [B, Nx, Hkv, D]: rank-1 row views.
int64_t extra_row(const RowView& view, int64_t b, int64_t n, int64_t h) {
  const int64_t x[1] = {n};
  return view.row(b, x, h);
}

void forward(const Problem& p, const ForwardArgs& args, int threads) {
  const int r = p.rank();
  const RowView Q{&args.query, r}, K{&args.key, r}, V{&args.value, r}, O{&args.output, r};
  const RowView LSE{&args.lse, r};
  const RowView XK{&args.extra_key, 1}, XV{&args.extra_value, 1};
  const Axes axes(p);
  const int64_t T = p.tokens(), H = p.heads, D = p.head_dim, Dv = p.head_dim_v;
  const int64_t group = p.heads / p.kv_heads;
  const double scale = p.scale();

  parallel_for(p.batch * T * H, threads, [&](int64_t row) {
    const int64_t h = row % H, t = (row / H) % T, b = row / (H * T), hk = h / group;
    int64_t x[kMaxSpatialRank] = {0, 0, 0};
    token_coords(p, t, x);
    thread_local std::vector<double> q, acc, scores;
    q.resize(D);
    acc.assign(Dv, 0.0);
    scores.clear();
    Q.load_row(Q.row(b, x, h), D, q.data());

    const Box keys = axes.keys_of(x);
    for_each_token(keys, [&](const int64_t* y) {
      scores.push_back(scale * dot(q.data(), K, K.row(b, y, hk), D));
    });
    for (int64_t n = 0; n < p.extra_kv; ++n) {
      scores.push_back(scale * dot(q.data(), XK, extra_row(XK, b, n, hk), D));
    }
    double max = -INFINITY;
    for (double s : scores) max = std::fmax(max, s);
    double sum = 0.0;
    for (double s : scores) sum += std::exp(s - max);
    const double lse = max + std::log(sum);

    size_t j = 0;
    auto accumulate = [&](const RowView& values, int64_t value_row) {
      // Normalized by the sum itself, not through lse: at huge scores the
      // lse's max + log(sum) rounds to max and would lose the sum.
      const double weight = std::exp(scores[j++] - max) / sum;
      for (int64_t e = 0; e < Dv; ++e) acc[e] += weight * values.load(value_row, e);
    };
    for_each_token(keys, [&](const int64_t* y) { accumulate(V, V.row(b, y, hk)); });
    for (int64_t n = 0; n < p.extra_kv; ++n) accumulate(XV, extra_row(XV, b, n, hk));

    const int64_t out_row = O.row(b, x, h);
    for (int64_t e = 0; e < Dv; ++e) O.store(out_row, e, acc[e]);
    if (args.lse.defined()) {
      detail::store_from_double(args.lse.data, DType::f32, LSE.row(b, x, h), lse);
    }
  });
}

// Backward in three passes, each writing only rows it owns (no atomics):
// per query (dQ and delta), per key (dK, dV), per additional key.
void backward(const Problem& p, const BackwardArgs& args, int threads) {
  const int r = p.rank();
  const RowView Q{&args.query, r}, K{&args.key, r}, V{&args.value, r}, O{&args.output, r};
  const RowView dO{&args.grad_output, r}, LSE{&args.lse, r}, dLSE{&args.grad_lse, r};
  const RowView dQ{&args.grad_query, r}, dK{&args.grad_key, r}, dV{&args.grad_value, r};
  const RowView XK{&args.extra_key, 1}, XV{&args.extra_value, 1};
  const RowView dXK{&args.grad_extra_key, 1}, dXV{&args.grad_extra_value, 1};
  const Axes axes(p);
  const int64_t T = p.tokens(), H = p.heads, D = p.head_dim, Dv = p.head_dim_v;
  const int64_t group = p.heads / p.kv_heads;
  const double scale = p.scale();
  // Float64 rows recompute their softmax here (its max and sum) instead of
  // reading the float32 lse, whose rounding would limit float64 gradients at
  // large scores. Narrower dtypes read the lse they are given, as every
  // other backend does (for them float32 is not the narrower part), except
  // where its rounding alone moves exp(s - lse) by more than ~6e-5: at
  // |lse| > 1e3 (the cpu backend hands such rows here, cpu/overflow.hpp).
  const bool recompute = p.dtype == DType::f64;
  constexpr double kLseTrusted = 1e3;
  const size_t rows = static_cast<size_t>(p.batch * T * H);
  std::vector<double> row_max(rows), row_sum(rows);
  // delta_i = dO_i . O_i - dLSE_i: the softmax Jacobian's row term.
  std::vector<double> delta(rows);

  parallel_for(p.batch * T * H, threads, [&](int64_t row) {
    const int64_t h = row % H, t = (row / H) % T, b = row / (H * T), hk = h / group;
    int64_t x[kMaxSpatialRank] = {0, 0, 0};
    token_coords(p, t, x);
    thread_local std::vector<double> q, g, dq, scores;
    q.resize(D);
    g.resize(Dv);
    dq.assign(D, 0.0);
    scores.clear();
    Q.load_row(Q.row(b, x, h), D, q.data());
    dO.load_row(dO.row(b, x, h), Dv, g.data());
    double d = dot(g.data(), O, O.row(b, x, h), Dv);
    if (args.grad_lse.defined()) {
      d -= detail::load_as_double(args.grad_lse.data, DType::f32, dLSE.row(b, x, h));
    }
    delta[row] = d;
    const Box keys = axes.keys_of(x);
    for_each_token(keys, [&](const int64_t* y) {
      scores.push_back(scale * dot(q.data(), K, K.row(b, y, hk), D));
    });
    for (int64_t n = 0; n < p.extra_kv; ++n) {
      scores.push_back(scale * dot(q.data(), XK, extra_row(XK, b, n, hk), D));
    }
    double max = -INFINITY, sum = 0.0;
    for (double s : scores) max = std::fmax(max, s);
    for (double s : scores) sum += std::exp(s - max);
    const double given = recompute ? 0.0 : detail::load_as_double(args.lse.data, DType::f32,
                                                                  LSE.row(b, x, h));
    if (!recompute && std::fabs(given) <= kLseTrusted) {  // max = lse, sum = 1
      max = given;
      sum = 1.0;
    }
    row_max[row] = max;
    row_sum[row] = sum;
    size_t j = 0;
    auto visit = [&](const RowView& keys, int64_t key_row, const RowView& values,
                     int64_t value_row) {
      const double prob = std::exp(scores[j++] - max) / sum;
      const double ds = prob * (dot(g.data(), values, value_row, Dv) - d);
      for (int64_t e = 0; e < D; ++e) dq[e] += ds * keys.load(key_row, e);
    };
    for_each_token(keys, [&](const int64_t* y) {
      visit(K, K.row(b, y, hk), V, V.row(b, y, hk));
    });
    for (int64_t n = 0; n < p.extra_kv; ++n) {
      visit(XK, extra_row(XK, b, n, hk), XV, extra_row(XV, b, n, hk));
    }
    const int64_t out_row = dQ.row(b, x, h);
    for (int64_t e = 0; e < D; ++e) dQ.store(out_row, e, scale * dq[e]);
  });

  // Accumulates one key's dK and dV over the query rows that see it.
  struct KeyGrad {
    std::vector<double> k, v, dk, dv, q, g;
  };
  auto add_query = [&](KeyGrad& kg, int64_t b, const int64_t* x, int64_t h) {
    Q.load_row(Q.row(b, x, h), D, kg.q.data());
    dO.load_row(dO.row(b, x, h), Dv, kg.g.data());
    double s = 0.0, dp = 0.0;
    for (int64_t e = 0; e < D; ++e) s += kg.q[e] * kg.k[e];
    for (int64_t e = 0; e < Dv; ++e) dp += kg.g[e] * kg.v[e];
    const size_t row = static_cast<size_t>((b * T + token_index(p, x)) * H + h);
    const double prob = std::exp(scale * s - row_max[row]) / row_sum[row];
    const double ds = prob * (dp - delta[row]);
    for (int64_t e = 0; e < Dv; ++e) kg.dv[e] += prob * kg.g[e];
    for (int64_t e = 0; e < D; ++e) kg.dk[e] += ds * kg.q[e];
  };
  auto start_key = [&](KeyGrad& kg, const RowView& keys, int64_t key_row, const RowView& values,
                       int64_t value_row) {
    kg.k.resize(D);
    kg.v.resize(Dv);
    kg.q.resize(D);
    kg.g.resize(Dv);
    kg.dk.assign(D, 0.0);
    kg.dv.assign(Dv, 0.0);
    keys.load_row(key_row, D, kg.k.data());
    values.load_row(value_row, Dv, kg.v.data());
  };
  auto finish_key = [&](const KeyGrad& kg, const RowView& dkeys, int64_t dk_row,
                        const RowView& dvalues, int64_t dv_row) {
    for (int64_t e = 0; e < D; ++e) dkeys.store(dk_row, e, scale * kg.dk[e]);
    for (int64_t e = 0; e < Dv; ++e) dvalues.store(dv_row, e, kg.dv[e]);
  };

  parallel_for(p.batch * T * p.kv_heads, threads, [&](int64_t row) {
    const int64_t hk = row % p.kv_heads, t = (row / p.kv_heads) % T;
    const int64_t b = row / (p.kv_heads * T);
    int64_t y[kMaxSpatialRank] = {0, 0, 0};
    token_coords(p, t, y);
    thread_local KeyGrad kg;
    start_key(kg, K, K.row(b, y, hk), V, V.row(b, y, hk));
    for_each_token(axes.queries_of(y), [&](const int64_t* x) {
      for (int64_t h = hk * group; h < (hk + 1) * group; ++h) add_query(kg, b, x, h);
    });
    finish_key(kg, dK, dK.row(b, y, hk), dV, dV.row(b, y, hk));
  });

  parallel_for(p.batch * p.extra_kv * p.kv_heads, threads, [&](int64_t row) {
    const int64_t hk = row % p.kv_heads, n = (row / p.kv_heads) % p.extra_kv;
    const int64_t b = row / (p.kv_heads * p.extra_kv);
    thread_local KeyGrad kg;
    start_key(kg, XK, extra_row(XK, b, n, hk), XV, extra_row(XV, b, n, hk));
    int64_t x[kMaxSpatialRank] = {0, 0, 0};
    for (int64_t t = 0; t < T; ++t) {
      token_coords(p, t, x);
      for (int64_t h = hk * group; h < (hk + 1) * group; ++h) add_query(kg, b, x, h);
    }
    finish_key(kg, dXK, extra_row(dXK, b, n, hk), dXV, extra_row(dXV, b, n, hk));
  });
}

class ReferenceBackend final : public detail::Backend {
 public:
  const char* name() const override { return "reference"; }
  std::string cannot_run(const Problem&, Pass, Device device) const override {
    if (device.type != DeviceType::cpu) {
      return detail::concat("tensors are on ", device_name(device),
                            "; the reference runs on CPU tensors");
    }
    return "";
  }
  void forward(const Problem& p, const ForwardArgs& args, const Options& o) const override {
    cpu::forward(p, args, thread_count(o.threads));
  }
  void backward(const Problem& p, const BackwardArgs& args, const Options& o) const override {
    cpu::backward(p, args, thread_count(o.threads));
  }
};

}  // namespace
}  // namespace gna::cpu

namespace gna::detail {
const Backend* reference_backend() {
  static const cpu::ReferenceBackend backend;
  return &backend;
}
}  // namespace gna::detail
