// One tensor of more than 2^31 elements: 1-D, batch 1, T = 2^24 + 37 tokens,
// one head, D = Dv = 128, fp16, window 9 with dilation 2, so Q, K, V, O (and
// dQ, dK, dV, dO) each hold 2^31 + 4736 elements and every offset past token
// 2^24 overflows 32 bits.
//
// The CPU reference cannot run a problem this size, so the test checks a
// sample of rows (the first, around the middle, around token 2^24 where
// element offsets cross 2^31, and the last) against values computed here in
// fp64 straight from window::key_range / window::query_range, the same rules
// the reference uses. Inputs repeat with a period of P = 65537 tokens (a
// prime, so 2^24 and 2^25 tokens -- the distance a 32-bit wrap would jump --
// are not multiples of it): token t holds row t mod P of a random pattern.
// The backward reads O and LSE from the backend's own forward, as run_case
// does, and the reference gradients use those same rows.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <random>
#include <vector>

#include "core/half.hpp"
#include "core/window.hpp"
#include "gpu_test.hpp"
#include "harness/buffer.hpp"

namespace gna::gpu_test {
namespace {

constexpr int64_t kTokens = (int64_t{1} << 24) + 37;
constexpr int64_t kDim = 128;
constexpr int64_t kPeriod = 65537;

void cuda_ok(cudaError_t status, const char* what) {
  ASSERT_EQ(status, cudaSuccess) << what << ": " << cudaGetErrorString(status);
}

// A [1, T, 1, 128] fp16 tensor on the device whose token t holds pattern row t mod P.
struct PeriodicTensor {
  std::vector<uint16_t> pattern;  // P x 128, fp16 bits
  harness::Buffer buffer;
  TensorView view;

  PeriodicTensor(Device device, std::mt19937_64& rng)
      : pattern(static_cast<size_t>(kPeriod * kDim)),
        buffer(device, static_cast<size_t>(kTokens * kDim) * 2) {
    std::uniform_real_distribution<float> value(-1.0f, 1.0f);
    for (uint16_t& h : pattern) h = detail::float_to_f16(value(rng));
    view = TensorView::contiguous(buffer.data(), DType::f16, {1, kTokens, 1, kDim}, device);
    fill();
  }
  // Upload one period, then double the filled prefix with device copies;
  // every copy starts at a multiple of the period, so the pattern holds.
  void fill() {
    auto* base = static_cast<unsigned char*>(buffer.data());
    const size_t total = buffer.bytes();
    size_t filled = std::min(total, pattern.size() * 2);
    buffer.upload(pattern.data(), filled);
    while (filled < total) {
      const size_t n = std::min(filled, total - filled);
      cuda_ok(cudaMemcpy(base + filled, base, n, cudaMemcpyDeviceToDevice), "cudaMemcpy");
      filled += n;
    }
  }
  double at(int64_t token, int64_t e) const {
    return detail::f16_to_float(pattern[static_cast<size_t>((token % kPeriod) * kDim + e)]);
  }
};

// A written device tensor, read back row by row.
struct OutputTensor {
  harness::Buffer buffer;
  TensorView view;
  int64_t row_elems;
  DType dtype;

  OutputTensor(Device device, DType type, int64_t dim)
      : buffer(device, static_cast<size_t>(kTokens * dim) * dtype_size(type)),
        row_elems(dim),
        dtype(type) {
    buffer.fill_byte(0xff);  // NaN: rows nobody writes fail
    view = dim == 1 ? TensorView::contiguous(buffer.data(), type, {1, kTokens, 1})
                    : TensorView::contiguous(buffer.data(), type, {1, kTokens, 1, dim});
    view.device = device;
  }
  std::vector<double> row(int64_t token) const {
    const size_t bytes = static_cast<size_t>(row_elems) * dtype_size(dtype);
    std::vector<unsigned char> host(bytes);
    const auto* src = static_cast<const unsigned char*>(buffer.data()) + token * bytes;
    EXPECT_EQ(cudaMemcpy(host.data(), src, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    std::vector<double> out(static_cast<size_t>(row_elems));
    for (int64_t e = 0; e < row_elems; ++e) out[e] = detail::load_as_double(host.data(), dtype, e);
    return out;
  }
};

class Huge : public GpuTest {
 protected:
  window::Axis axis_{kTokens, 9, 1, 2, false};

  window::Range keys_of(int64_t t) const {
    const int64_t g = window::group_of(axis_, t);
    return window::key_range(axis_, window::position_of(axis_, t), window::group_length(axis_, g));
  }
  window::Range queries_of(int64_t t) const {
    const int64_t g = window::group_of(axis_, t);
    return window::query_range(axis_, window::position_of(axis_, t),
                               window::group_length(axis_, g));
  }
  int64_t token(int64_t group, int64_t position) const {
    return window::index_of(axis_, group, position);
  }
  static double dot(const PeriodicTensor& a, int64_t ta, const PeriodicTensor& b, int64_t tb) {
    double s = 0.0;
    for (int64_t e = 0; e < kDim; ++e) s += a.at(ta, e) * b.at(tb, e);
    return s;
  }
};

// Compares one row with its reference; gradients get tolerance relative to
// their size beyond 1, as in harness::run_case.
void expect_row(const char* what, int64_t t, const std::vector<double>& got,
                const std::vector<double>& want, double tol) {
  double ref_max = 0.0, err = 0.0;
  for (size_t e = 0; e < want.size(); ++e) {
    ref_max = std::max(ref_max, std::fabs(want[e]));
    err = std::isfinite(got[e]) ? std::max(err, std::fabs(got[e] - want[e])) : INFINITY;
  }
  EXPECT_LE(err, tol * std::max(1.0, ref_max)) << what << " row " << t;
}

TEST_P(Huge, MoreThan2To31Elements) {
  Problem p = window_problem({kTokens}, {9}, {1}, {2});
  p.heads = 1;
  p.head_dim = p.head_dim_v = kDim;
  const std::string why = reason(p, Pass::forward);
  if (!why.empty()) GTEST_SKIP() << backend_ << ": " << why;
  const bool backward = reason(p, Pass::backward).empty();
  size_t free_bytes = 0, total_bytes = 0;
  cuda_ok(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  const size_t tensor_bytes = static_cast<size_t>(kTokens * kDim) * 2;
  const size_t need = (backward ? 8 : 4) * tensor_bytes + (size_t{1} << 30);
  if (free_bytes < need) {
    GTEST_SKIP() << "needs " << (need >> 30) << " GiB of free device memory, has "
                 << (free_bytes >> 30);
  }
  ASSERT_GT(kTokens * kDim, int64_t{1} << 31);

  std::mt19937_64 rng(7);
  const PeriodicTensor q(device_, rng), k(device_, rng), v(device_, rng);
  OutputTensor o(device_, DType::f16, kDim), lse(device_, DType::f32, 1);
  ForwardArgs fa;
  fa.query = q.view;
  fa.key = k.view;
  fa.value = v.view;
  fa.output = o.view;
  fa.lse = lse.view;
  Options options;
  options.backend = backend_;
  ASSERT_EQ(gna::forward(p.params, fa, options), backend_);
  harness::synchronize(device_);

  const int64_t half = int64_t{1} << 23, wrap = int64_t{1} << 24;
  const std::vector<int64_t> rows{0,        1,    2,        half,        half + 1,    wrap - 2,
                                  wrap - 1, wrap, wrap + 1, kTokens - 3, kTokens - 2, kTokens - 1};
  const double scale = p.scale();
  // Forward reference of query t: LSE and O.
  auto forward_row = [&](int64_t t, double& lse_t, std::vector<double>& out) {
    const window::Range r = keys_of(t);
    const int64_t g = window::group_of(axis_, t);
    double max = -INFINITY;
    for (int64_t j = r.lo; j <= r.hi; ++j) max = std::max(max, scale * dot(q, t, k, token(g, j)));
    double sum = 0.0;
    for (int64_t j = r.lo; j <= r.hi; ++j) sum += std::exp(scale * dot(q, t, k, token(g, j)) - max);
    lse_t = max + std::log(sum);
    out.assign(kDim, 0.0);
    for (int64_t j = r.lo; j <= r.hi; ++j) {
      const double w = std::exp(scale * dot(q, t, k, token(g, j)) - lse_t);
      for (int64_t e = 0; e < kDim; ++e) out[e] += w * v.at(token(g, j), e);
    }
  };
  for (int64_t t : rows) {
    double lse_t = 0.0;
    std::vector<double> out;
    forward_row(t, lse_t, out);
    expect_row("output", t, o.row(t), out, harness::tolerance(DType::f16, false));
    EXPECT_NEAR(lse.row(t)[0], lse_t, harness::tolerance(DType::f16, true)) << "lse row " << t;
  }
  if (!backward) {
    std::cout << "[ INFO     ] " << backend_ << " has no backward: " << reason(p, Pass::backward)
              << "\n";
    return;
  }

  const PeriodicTensor dout(device_, rng);
  OutputTensor dq(device_, DType::f16, kDim), dk(device_, DType::f16, kDim),
      dv(device_, DType::f16, kDim);
  BackwardArgs ba;
  ba.query = q.view;
  ba.key = k.view;
  ba.value = v.view;
  ba.output = o.view;
  ba.lse = lse.view;
  ba.grad_output = dout.view;
  ba.grad_query = dq.view;
  ba.grad_key = dk.view;
  ba.grad_value = dv.view;
  ASSERT_EQ(gna::backward(p.params, ba, options), backend_);
  harness::synchronize(device_);

  // delta_t = dO_t . O_t with the backend's own O, as the backward reads it.
  auto delta_of = [&](int64_t t) {
    const std::vector<double> out = o.row(t);
    double d = 0.0;
    for (int64_t e = 0; e < kDim; ++e) d += dout.at(t, e) * out[e];
    return d;
  };
  for (int64_t t : rows) {
    // dQ of query t over its keys.
    const int64_t g = window::group_of(axis_, t);
    const double lse_t = lse.row(t)[0], delta_t = delta_of(t);
    std::vector<double> want_dq(kDim, 0.0);
    const window::Range keys = keys_of(t);
    for (int64_t j = keys.lo; j <= keys.hi; ++j) {
      const int64_t y = token(g, j);
      const double prob = std::exp(scale * dot(q, t, k, y) - lse_t);
      const double ds = prob * (dot(dout, t, v, y) - delta_t);
      for (int64_t e = 0; e < kDim; ++e) want_dq[e] += scale * ds * k.at(y, e);
    }
    expect_row("grad_query", t, dq.row(t), want_dq, harness::tolerance(DType::f16, false));

    // dK, dV of key t over the queries that see it.
    std::vector<double> want_dk(kDim, 0.0), want_dv(kDim, 0.0);
    const window::Range queries = queries_of(t);
    for (int64_t i = queries.lo; i <= queries.hi; ++i) {
      const int64_t x = token(g, i);
      const double prob = std::exp(scale * dot(q, x, k, t) - lse.row(x)[0]);
      const double ds = prob * (dot(dout, x, v, t) - delta_of(x));
      for (int64_t e = 0; e < kDim; ++e) {
        want_dv[e] += prob * dout.at(x, e);
        want_dk[e] += scale * ds * q.at(x, e);
      }
    }
    expect_row("grad_key", t, dk.row(t), want_dk, harness::tolerance(DType::f16, false));
    expect_row("grad_value", t, dv.row(t), want_dv, harness::tolerance(DType::f16, false));
  }
}

GNA_GPU_INSTANTIATE(Huge);

}  // namespace
}  // namespace gna::gpu_test
