// What the generic kernels receive: the problem's shape with its window
// axes, and every tensor as a base pointer plus 64-bit element strides.
// Passed by value as kernel parameters; built on the host from the caller's
// TensorViews, so any layout (non-contiguous, broadcast inputs) just works.
#pragma once

#include <cstdint>

#include "core/axes.hpp"
#include "core/window.hpp"
#include "gna/attention.hpp"

namespace gna::cuda_generic {

// A heads-last tensor seen as rows of elements: element e of the row at
// (batch b, spatial coordinates x, head h) lies at
//   b * batch + x[0] * token[0] + x[1] * token[1] + x[2] * token[2] + h * head + e * elem.
// Additional KV [B, Nx, Hkv, D] use token[0] as the Nx stride. LSE rows
// have a single element (elem unused). Every offset is 64-bit.
struct Rows {
  void* data = nullptr;  // null for an optional tensor that was not given
  int64_t batch = 0;
  int64_t token[kMaxSpatialRank] = {0, 0, 0};
  int64_t head = 0;
  int64_t elem = 0;

  GNA_HD int64_t row(int64_t b, const int64_t* x, int64_t h) const {
    return b * batch + x[0] * token[0] + x[1] * token[1] + x[2] * token[2] + h * head;
  }
  GNA_HD int64_t extra_row(int64_t b, int64_t n, int64_t h) const {
    return b * batch + n * token[0] + h * head;
  }
};

// The problem with every axis past the rank padded to length 1, window 1,
// so kernels always loop over three axes.
struct Shape {
  window::Axis axis[kMaxSpatialRank];
  int64_t batch = 1;
  int64_t tokens = 1;  // spatial tokens per batch and head
  int64_t heads = 1;   // query heads
  int64_t kv_heads = 1;
  int64_t group = 1;       // query heads per kv head
  int64_t head_dim = 1;    // D of Q, K
  int64_t head_dim_v = 1;  // Dv of V, O
  int64_t extra_kv = 0;    // additional KV tokens per batch
  float scale = 1.0f;
};

struct ForwardParams {
  Shape shape;
  Rows q, k, v, o, lse, xk, xv;
};

struct BackwardParams {
  Shape shape;
  Rows q, k, v, o, lse, dout, dlse, xk, xv;  // inputs (dlse optional)
  Rows dq, dk, dv, dxk, dxv;                 // outputs
};

// ---- Host side: from the public API to kernel parameters. ----

inline Shape shape_of(const Problem& p) {
  Shape s;
  for (int a = 0; a < p.rank(); ++a) s.axis[a] = detail::axis_of(p, a);
  s.batch = p.batch;
  s.tokens = p.tokens();
  s.heads = p.heads;
  s.kv_heads = p.kv_heads;
  s.group = p.heads / p.kv_heads;
  s.head_dim = p.head_dim;
  s.head_dim_v = p.head_dim_v;
  s.extra_kv = p.extra_kv;
  s.scale = static_cast<float>(p.scale());
  return s;
}

// [B, X0, (X1, (X2)), H, (D)] tensors; LSE has no D dimension.
inline Rows spatial_rows(const TensorView& t, int rank) {
  Rows r;
  if (!t.defined()) return r;
  r.data = t.data;
  r.batch = t.stride[0];
  for (int a = 0; a < rank; ++a) r.token[a] = t.stride[1 + a];
  r.head = t.stride[rank + 1];
  r.elem = t.ndim > rank + 2 ? t.stride[rank + 2] : 0;
  return r;
}

// [B, Nx, Hkv, D] additional KV tensors.
inline Rows extra_rows(const TensorView& t) {
  Rows r;
  if (!t.defined()) return r;
  r.data = t.data;
  r.batch = t.stride[0];
  r.token[0] = t.stride[1];
  r.head = t.stride[2];
  r.elem = t.stride[3];
  return r;
}

inline ForwardParams forward_params(const Problem& p, const ForwardArgs& a) {
  const int r = p.rank();
  ForwardParams f;
  f.shape = shape_of(p);
  f.q = spatial_rows(a.query, r);
  f.k = spatial_rows(a.key, r);
  f.v = spatial_rows(a.value, r);
  f.o = spatial_rows(a.output, r);
  f.lse = spatial_rows(a.lse, r);
  f.xk = extra_rows(a.extra_key);
  f.xv = extra_rows(a.extra_value);
  return f;
}

inline BackwardParams backward_params(const Problem& p, const BackwardArgs& a) {
  const int r = p.rank();
  BackwardParams b;
  b.shape = shape_of(p);
  b.q = spatial_rows(a.query, r);
  b.k = spatial_rows(a.key, r);
  b.v = spatial_rows(a.value, r);
  b.o = spatial_rows(a.output, r);
  b.lse = spatial_rows(a.lse, r);
  b.dout = spatial_rows(a.grad_output, r);
  b.dlse = spatial_rows(a.grad_lse, r);
  b.xk = extra_rows(a.extra_key);
  b.xv = extra_rows(a.extra_value);
  b.dq = spatial_rows(a.grad_query, r);
  b.dk = spatial_rows(a.grad_key, r);
  b.dv = spatial_rows(a.grad_value, r);
  b.dxk = extra_rows(a.grad_extra_key);
  b.dxv = extra_rows(a.grad_extra_value);
  return b;
}

}  // namespace gna::cuda_generic
