// How the cpu backend reads and writes the caller's tensors. Its kernels
// broadcast single elements of fp32 rows with unit element stride; any other
// tensor (fp16, bf16, strided head dim, zero strides) is converted once per
// call into a contiguous fp32 copy, O(tokens) memory. Results are written
// straight into the caller's layout and dtype.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/scratch.hpp"

#include "gna/tensor.hpp"

namespace gna::cpu {

// Rows of D fp32 elements of a [B, X0, (X1, (X2)), H, D] tensor (rank 1 for
// the [B, N, H, D] additional KV tensors).
class Fp32Rows {
 public:
  // Uses `t` itself when it is fp32 with unit element stride, else converts
  // it (on `threads` threads). An undefined tensor gives undefined rows.
  void prepare(const TensorView& t, int rank, int threads);
  // A copy regrouped by heads for tiles of `group` heads (1, 2 or 4,
  // tile_walk.hpp): "head" h of the rows is the group of heads
  // [h * group, (h + 1) * group), and element e of its row is kHeadBlock
  // floats from e * kHeadBlock on, the group's heads repeated to fill them.
  // `storage` holds the copy (kept by the caller across calls: memory
  // that stays mapped, not first-touched anew every call).
  void prepare_grouped(const TensorView& t, int rank, int group, int threads,
                       AlignedFloats& storage);

  bool defined() const { return base_ != nullptr; }
  // The row of batch b, spatial coordinates x, head h.
  const float* row(int64_t b, const int64_t* x, int64_t h) const {
    int64_t off = b * stride_[0] + h * stride_[rank_ + 1];
    for (int a = 0; a < rank_; ++a) off += x[a] * stride_[1 + a];
    return base_ + off;
  }
  // The row of batch b, token n, head h of a rank-1 tensor.
  const float* row(int64_t b, int64_t n, int64_t h) const {
    return base_ + b * stride_[0] + n * stride_[1] + h * stride_[2];
  }
  int64_t stride(int dim) const { return stride_[dim]; }
  const int64_t* spatial_strides() const { return stride_ + 1; }
  // The row of batch b, head h at spatial offset 0 (add the spatial part).
  const float* origin(int64_t b, int64_t h) const {
    return base_ + b * stride_[0] + h * stride_[rank_ + 1];
  }

 private:
  const float* base_ = nullptr;
  int rank_ = 1;
  int64_t stride_[kMaxTensorDims] = {};
  std::vector<float> copy_;
};

// out[e * kHeadBlock + k] = in[k][e] for e < dim and k < kHeadBlock: one
// element of kHeadBlock rows after another (SIMD, src/cpu/forward.cpp).
void interleave_rows(const float* const* in, int64_t dim, float* out);

// Writes n values src[0], src[step], ..., each times `scale`, into the row
// that starts at element offset `row` of `t`, rounded to t's dtype.
void store_row(const TensorView& t, int64_t row, const float* src, int64_t step, int64_t n,
               float scale);

// Sets every element of `t` (any layout) to zero.
void zero_fill(const TensorView& t);

// Calls visit(offset) with the element offset of every element of `t` (any
// layout), last axis fastest, until a call returns false. Returns whether
// every call returned true.
template <class Visit>
bool for_each_element(const TensorView& t, Visit visit) {
  if (!t.defined() || t.numel() == 0) return true;
  int64_t idx[kMaxTensorDims] = {};
  for (;;) {
    int64_t off = 0;
    for (int i = 0; i < t.ndim; ++i) off += idx[i] * t.stride[i];
    if (!visit(off)) return false;
    int d = t.ndim - 1;
    while (d >= 0 && ++idx[d] == t.shape[d]) idx[d--] = 0;
    if (d < 0) return true;
  }
}

}  // namespace gna::cpu
