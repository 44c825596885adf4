// attention_forward / attention_backward (cross-attention, packed variable
// length) against softmax attention and its gradients written out here, on
// every CPU backend built, over random problems: more keys than queries,
// more queries than keys (query pieces whose key gradients add up), equal
// lengths with causal masking, GQA, Dv != D, sequences without queries.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gna/gna.hpp"

namespace gna {
namespace {

struct Case {
  int64_t heads = 4, kv_heads = 2, dim = 6, dim_v = 3;
  bool causal = false;
  double scale = 0.4;
  int64_t batch = 1;
  std::vector<int64_t> lq, lk;  // one entry per sequence (packed when more than one)
  bool packed = false;
};

struct Data {
  std::vector<double> q, k, v, dout, dlse;
  int64_t Lq = 0, Lk = 0;
};

std::vector<int64_t> offsets(const std::vector<int64_t>& lengths) {
  std::vector<int64_t> out{0};
  for (int64_t n : lengths) out.push_back(out.back() + n);
  return out;
}

// Softmax attention of each sequence, forward and backward, in double.
struct Expected {
  std::vector<double> out, lse, dq, dk, dv;
};

Expected direct(const Case& c, const Data& d) {
  const int64_t H = c.heads, Hk = c.kv_heads, D = c.dim, Dv = c.dim_v, B = c.batch;
  Expected e;
  e.out.assign(B * d.Lq * H * Dv, 0.0);
  e.lse.assign(B * d.Lq * H, 0.0);
  e.dq.assign(d.q.size(), 0.0);
  e.dk.assign(d.k.size(), 0.0);
  e.dv.assign(d.v.size(), 0.0);
  const auto qo = offsets(c.lq), ko = offsets(c.lk);
  for (int64_t b = 0; b < B; ++b)
    for (size_t s = 0; s < c.lq.size(); ++s)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t hk = h / (H / Hk);
        for (int64_t i = qo[s]; i < qo[s + 1]; ++i) {
          const int64_t qi = (b * d.Lq + i) * H + h;
          std::vector<double> p;
          double max = -INFINITY;
          for (int64_t j = ko[s]; j < ko[s + 1]; ++j) {
            const bool seen = !c.causal || j - ko[s] <= i - qo[s];
            double dot = 0.0;
            const int64_t kj = (b * d.Lk + j) * Hk + hk;
            for (int64_t x = 0; x < D; ++x) dot += d.q[qi * D + x] * d.k[kj * D + x];
            p.push_back(seen ? c.scale * dot : -INFINITY);
            max = std::max(max, p.back());
          }
          double sum = 0.0;
          for (double& x : p) sum += (x = std::exp(x - max));
          for (double& x : p) x /= sum;
          e.lse[qi] = max + std::log(sum);
          double delta = 0.0;
          for (size_t j = 0; j < p.size(); ++j) {
            const int64_t kj = (b * d.Lk + ko[s] + static_cast<int64_t>(j)) * Hk + hk;
            for (int64_t x = 0; x < Dv; ++x) e.out[qi * Dv + x] += p[j] * d.v[kj * Dv + x];
          }
          for (int64_t x = 0; x < Dv; ++x) delta += e.out[qi * Dv + x] * d.dout[qi * Dv + x];
          for (size_t j = 0; j < p.size(); ++j) {
            const int64_t kj = (b * d.Lk + ko[s] + static_cast<int64_t>(j)) * Hk + hk;
            double dp = 0.0;
            for (int64_t x = 0; x < Dv; ++x) {
              dp += d.dout[qi * Dv + x] * d.v[kj * Dv + x];
              e.dv[kj * Dv + x] += p[j] * d.dout[qi * Dv + x];
            }
            const double ds = p[j] * (dp - delta + d.dlse[qi]);
            for (int64_t x = 0; x < D; ++x) {
              e.dq[qi * D + x] += c.scale * ds * d.k[kj * D + x];
              e.dk[kj * D + x] += c.scale * ds * d.q[qi * D + x];
            }
          }
        }
      }
  return e;
}

void expect_near(const std::vector<double>& a, const std::vector<double>& b, double tol,
                 const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_NEAR(a[i], b[i], tol) << what << " element " << i;
  }
}

void run(const Case& c, const std::string& backend, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  Data d;
  for (int64_t n : c.lq) d.Lq += n;
  for (int64_t n : c.lk) d.Lk += n;
  const int64_t B = c.batch, H = c.heads, Hk = c.kv_heads;
  auto fill = [&](std::vector<double>& x, int64_t n) {
    x.resize(n);
    for (double& y : x) y = normal(rng);
  };
  fill(d.q, B * d.Lq * H * c.dim);
  fill(d.k, B * d.Lk * Hk * c.dim);
  fill(d.v, B * d.Lk * Hk * c.dim_v);
  fill(d.dout, B * d.Lq * H * c.dim_v);
  fill(d.dlse, B * d.Lq * H);
  const Expected e = direct(c, d);

  // Float64 on the reference, float32 on the cpu backend.
  const DType dtype = backend == "reference" ? DType::f64 : DType::f32;
  auto buffer = [&](const std::vector<double>& x) {
    std::vector<unsigned char> bytes(x.size() * dtype_size(dtype));
    for (size_t i = 0; i < x.size(); ++i) {
      if (dtype == DType::f64) reinterpret_cast<double*>(bytes.data())[i] = x[i];
      else reinterpret_cast<float*>(bytes.data())[i] = static_cast<float>(x[i]);
    }
    return bytes;
  };
  auto values = [&](const std::vector<unsigned char>& bytes) {
    std::vector<double> x(bytes.size() / dtype_size(dtype));
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = dtype == DType::f64 ? reinterpret_cast<const double*>(bytes.data())[i]
                                 : reinterpret_cast<const float*>(bytes.data())[i];
    }
    return x;
  };
  auto q = buffer(d.q), k = buffer(d.k), v = buffer(d.v), dout = buffer(d.dout);
  std::vector<float> dlse(d.dlse.begin(), d.dlse.end()), lse(d.dlse.size());
  std::vector<unsigned char> out(e.out.size() * dtype_size(dtype)), dq(q.size()), dk(k.size()),
      dv(v.size());
  auto view = [&](void* p, std::initializer_list<int64_t> shape, DType t) {
    return TensorView::contiguous(p, t, shape);
  };
  ForwardArgs f;
  f.query = view(q.data(), {B, d.Lq, H, c.dim}, dtype);
  f.key = view(k.data(), {B, d.Lk, Hk, c.dim}, dtype);
  f.value = view(v.data(), {B, d.Lk, Hk, c.dim_v}, dtype);
  f.output = view(out.data(), {B, d.Lq, H, c.dim_v}, dtype);
  f.lse = view(lse.data(), {B, d.Lq, H}, DType::f32);
  Sequences s;
  if (c.packed) s = Sequences{offsets(c.lq), offsets(c.lk)};
  Options o;
  o.backend = backend;
  const DenseParams params{c.causal, c.scale};
  attention_forward(params, f, s, o);
  const double tol = dtype == DType::f64 ? 1e-10 : 2e-5;
  expect_near(values(out), e.out, tol, "output");
  expect_near(std::vector<double>(lse.begin(), lse.end()), e.lse, 2e-5, "lse");

  BackwardArgs g;
  g.query = f.query;
  g.key = f.key;
  g.value = f.value;
  g.output = f.output;
  g.lse = f.lse;
  g.grad_output = view(dout.data(), {B, d.Lq, H, c.dim_v}, dtype);
  g.grad_lse = view(dlse.data(), {B, d.Lq, H}, DType::f32);
  g.grad_query = view(dq.data(), {B, d.Lq, H, c.dim}, dtype);
  g.grad_key = view(dk.data(), {B, d.Lk, Hk, c.dim}, dtype);
  g.grad_value = view(dv.data(), {B, d.Lk, Hk, c.dim_v}, dtype);
  attention_backward(params, g, s, o);
  // The LSE is stored in float32: gradients through it carry its rounding.
  const double gtol = dtype == DType::f64 ? 1e-5 : 1e-4;
  expect_near(values(dq), e.dq, gtol, "grad_query");
  expect_near(values(dk), e.dk, gtol, "grad_key");
  expect_near(values(dv), e.dv, gtol, "grad_value");
}

std::vector<std::string> cpu_backends() {
  std::vector<std::string> out;
  for (const std::string& b : backend_names()) {
    if (b == "reference" || b == "cpu") out.push_back(b);
  }
  return out;
}

TEST(Sequences, CrossAttentionMoreKeysThanQueries) {
  Case c;
  c.batch = 2;
  c.lq = {5};
  c.lk = {11};
  for (const auto& b : cpu_backends()) run(c, b, 1);
}

TEST(Sequences, CrossAttentionMoreQueriesThanKeys) {
  Case c;
  c.batch = 2;
  c.lq = {11};  // pieces of 4, 4 and 3 queries
  c.lk = {4};
  for (const auto& b : cpu_backends()) run(c, b, 2);
}

TEST(Sequences, CausalSelfAttention) {
  Case c;
  c.causal = true;
  c.lq = {7};
  c.lk = {7};
  for (const auto& b : cpu_backends()) run(c, b, 3);
}

TEST(Sequences, PackedVariableLength) {
  Case c;
  c.packed = true;
  c.lq = {3, 0, 9, 4, 1};
  c.lk = {6, 2, 3, 4, 1};  // a sequence without queries: its keys get zero gradients
  for (const auto& b : cpu_backends()) run(c, b, 4);
}

TEST(Sequences, PackedCausal) {
  Case c;
  c.packed = true;
  c.causal = true;
  c.lq = {3, 5, 1};
  c.lk = {3, 5, 1};
  for (const auto& b : cpu_backends()) run(c, b, 5);
}

TEST(Sequences, RulesNameTheArgument) {
  std::vector<double> x(64, 0.0), out(64), lse(64);
  ForwardArgs f;
  f.query = TensorView::contiguous(x.data(), DType::f64, {1, 4, 1, 2});
  f.key = TensorView::contiguous(x.data(), DType::f64, {1, 3, 1, 2});
  f.value = f.key;
  f.output = TensorView::contiguous(out.data(), DType::f64, {1, 4, 1, 2});
  auto expect = [&](const DenseParams& p, const Sequences& s, const std::string& argument) {
    try {
      attention_forward(p, f, s);
      FAIL() << "no error for " << argument;
    } catch (const Error& e) {
      EXPECT_EQ(e.argument(), argument) << e.what();
      EXPECT_EQ(e.kind(), ErrorKind::value) << e.what();
    }
  };
  expect(DenseParams{true, {}}, {}, "is_causal");  // 4 queries, 3 keys
  expect({}, Sequences{{0, 4}, {0, 2}}, "cumulative_seqlen_KV[1]");  // ends before 3 keys
  expect({}, Sequences{{1, 4}, {0, 3}}, "cumulative_seqlen_Q[0]");
  expect({}, Sequences{{0, 3, 2, 4}, {0, 1, 2, 3}}, "cumulative_seqlen_Q[2]");
  expect({}, Sequences{{0, 2, 4}, {0, 3}}, "cumulative_seqlen_KV");
  expect({}, Sequences{{0, 2, 4}, {0, 3, 3}}, "key");  // 2 queries, no keys
}

// Offsets in GPU memory are for CUDA tensors (cuda-generic's packed
// kernels); with CPU tensors, and for other backends, the call says so.
TEST(Sequences, DeviceOffsetsNeedCudaTensors) {
  std::vector<float> x(64, 0.0f), out(64);
  const std::vector<int32_t> offsets{0, 4};
  ForwardArgs f;
  f.query = TensorView::contiguous(x.data(), DType::f32, {1, 4, 1, 2});
  f.key = f.query;
  f.value = f.query;
  f.output = TensorView::contiguous(out.data(), DType::f32, {1, 4, 1, 2});
  const DeviceOffsets d{offsets.data(), offsets.data(), 1, 4, 4, nullptr};
  try {
    attention_forward(DenseParams{}, f, d);
    FAIL() << "no error for device offsets with CPU tensors";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "cumulative_seqlen_Q") << e.what();
  }
  Options reference;
  reference.backend = "reference";
  try {
    attention_forward(DenseParams{}, f, d, reference);
    FAIL() << "no error for device offsets on the reference backend";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "backend") << e.what();
    EXPECT_EQ(e.kind(), ErrorKind::unsupported) << e.what();
  }
}

// Every status code the GPU's offsets check records has a message naming
// the argument; ok has none.
TEST(Sequences, OffsetsStatusMessages) {
  EXPECT_EQ(describe(OffsetsStatus{}), "");
  const std::vector<std::pair<OffsetsStatus, std::string>> cases{
      {{OffsetsStatus::query_start, 0, 3, 0}, "cumulative_seqlen_Q[0] = 3: must be 0"},
      {{OffsetsStatus::key_start, 0, 1, 0}, "cumulative_seqlen_KV[0] = 1: must be 0"},
      {{OffsetsStatus::query_decreasing, 2, 4, 6}, "cumulative_seqlen_Q[2] = 4: must be >= "
                                                   "cumulative_seqlen_Q[1] = 6"},
      {{OffsetsStatus::key_decreasing, 1, -1, 0}, "cumulative_seqlen_KV[1] = -1: must be >="},
      {{OffsetsStatus::query_end, 3, 9, 8}, "cumulative_seqlen_Q[3] = 9: must equal the 8"},
      {{OffsetsStatus::key_end, 3, 7, 8}, "cumulative_seqlen_KV[3] = 7: must equal the 8"},
      {{OffsetsStatus::no_keys, 1, 5, 0}, "key = sequence 1: 0 key tokens for 5 queries"},
      {{OffsetsStatus::causal_lengths, 0, 3, 4}, "is_causal = True with sequence 0: 3 queries"},
      {{OffsetsStatus::query_above_max, 1, 6, 4}, "max_seqlen_Q = 4: sequence 1: 6 query"},
      {{OffsetsStatus::key_above_max, 0, 5, 4}, "max_seqlen_KV = 4: sequence 0: 5 key"},
  };
  for (const auto& [status, start] : cases) {
    EXPECT_EQ(describe(status).rfind(start, 0), 0u) << describe(status);
  }
}

}  // namespace
}  // namespace gna
