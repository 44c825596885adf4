// The step shared by backward passes 2 and 3: one query row's contribution
// to the gradient of one key row (k, v), for the warp's current slice:
//   P  = exp(scale q.k - LSE),  dV += P dO,  dK += P (dO . v - delta) q
// (dK is multiplied by scale once, when stored).
#pragma once

#include "cuda/generic/dispatch.cuh"
#include "cuda/generic/neighborhood.cuh"
#include "cuda/generic/warp_row.cuh"

namespace gna::cuda_generic {

// Adds query (batch b, coordinates x = token t, head h). `delta` is pass 1's
// [B, T, H] output.
template <typename T, int C>
__device__ __forceinline__ void add_query(const BackwardParams& p, const float* delta,
                                          const WarpRow<T, C>& k, const WarpRow<T, C>& v, int64_t b,
                                          const int64_t* x, int64_t t, int64_t h, int lane,
                                          WarpSlice<C>& dk, WarpSlice<C>& dv) {
  const Shape& s = p.shape;
  const LaneRow<T> q = lane_row<T>(p.q, p.q.row(b, x, h), lane);
  const LaneRow<T> dout = lane_row<T>(p.dout, p.dout.row(b, x, h), lane);
  const float prob = expf(k.dot(q) * s.scale - load_f32(p.lse, p.lse.row(b, x, h)));
  const float dp = v.dot(dout);
  dv.add(prob, dout);
  dk.add(prob * (dp - delta[(b * s.tokens + t) * s.heads + h]), q);
}

}  // namespace gna::cuda_generic
