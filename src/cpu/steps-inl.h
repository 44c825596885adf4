// Per-target helpers every pass of the cpu backend shares: the rows a tile's
// lanes own, the rows one step gathers (with its mask bias), and writing
// packed results back into the caller's tensors.

#if defined(GNA_CPU_STEPS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef GNA_CPU_STEPS_INL_H_
#undef GNA_CPU_STEPS_INL_H_
#else
#define GNA_CPU_STEPS_INL_H_
#endif

#include <hwy/highway.h>

#include <cstdint>

#include "cpu/kernels-inl.h"
#include "cpu/passes.hpp"
#include "cpu/rows.hpp"
#include "cpu/tile_walk.hpp"

HWY_BEFORE_NAMESPACE();
namespace gna::cpu {
namespace HWY_NAMESPACE {

// rows[l] = the row of lane l of the walk's tile in `source` (batch b, head h).
HWY_INLINE void LaneRows(const TileWalk& w, const Fp32Rows& source, int64_t b, int64_t h,
                         const float** rows) {
  int64_t offset[kMaxLanes];
  w.lane_offsets(source.spatial_strides(), offset);
  const float* origin = source.origin(b, h);
  for (int l = 0; l < w.lanes(); ++l) rows[l] = origin + offset[l];
}

// The tokens of one step, gathered: rows of two tensors (keys and values,
// or queries and output gradients) and, for a step that is not clean, the
// mask bias of every token (one vector each) in `bias`.
struct StepRows {
  const float* first[kStepTokens];
  const float* second[kStepTokens];
  int64_t token[kStepTokens];  // row-major token index, when asked for
  size_t count = 0;
};

// axis_bias[a]: room for one chunk's bias per axis (kStepTokens vectors).
// token_stride: row-major token strides of the grid, or nullptr when the
// token indices are not needed.
HWY_INLINE void GatherStep(DF d, const TileWalk& w, const Step& step, const Fp32Rows& first,
                           const Fp32Rows& second, int64_t b, int64_t h,
                           const int64_t* token_stride, float* const* axis_bias, float* bias,
                           StepRows& out) {
  const size_t L = hn::Lanes(d);
  const int last = w.rank() - 1;
  bool masked[kMaxSpatialRank] = {false, false, false};
  for (int a = 0; a < w.rank(); ++a) {
    masked[a] = !step.chunk[a]->clean;
    if (masked[a]) FillBias(d, w, a, *step.chunk[a], axis_bias[a]);
  }
  // Consecutive in-group tokens along the last axis are one dilation apart.
  const int64_t first_step = first.stride(1 + last) * w.dilation(last);
  const int64_t second_step = second.stride(1 + last) * w.dilation(last);
  size_t n = 0;
  for_each_run(w, step, [&](const int64_t* y, const int64_t* j, int64_t count) {
    const float* f = first.row(b, y, h);
    const float* s = second.row(b, y, h);
    for (int64_t i = 0; i < count; ++i) {
      out.first[n + i] = f + i * first_step;
      out.second[n + i] = s + i * second_step;
    }
    if (token_stride != nullptr) {
      int64_t t = 0;
      for (int a = 0; a < w.rank(); ++a) t += y[a] * token_stride[a];
      for (int64_t i = 0; i < count; ++i) out.token[n + i] = t + i * w.dilation(last);
    }
    if (!step.clean) {
      VF outer = hn::Zero(d);
      for (int a = 0; a < last; ++a) {
        if (masked[a]) {
          outer = hn::Add(outer, hn::Load(d, axis_bias[a] + (j[a] - step.chunk[a]->lo) * L));
        }
      }
      float* to = bias + n * L;
      if (masked[last]) {
        for (int64_t i = 0; i < count; ++i) {
          hn::Store(hn::Add(outer, hn::Load(d, axis_bias[last] + i * L)), d, to + i * L);
        }
      } else {
        for (int64_t i = 0; i < count; ++i) hn::Store(outer, d, to + i * L);
      }
    }
    n += static_cast<size_t>(count);
  });
  out.count = n;
}

// Writes packed[e * L + l] * row_scale[l] (e < dim) into the row of `t` at
// element offset offset[l], for every lane: straight into the rows when t
// is fp32 with unit element stride, else through `staged` (L * dim floats)
// and a conversion of the valid lanes. Invalid lanes repeat a valid lane's
// token, so a direct write of theirs puts the same values in the same row.
HWY_INLINE void WriteRows(DF d, const float* packed, size_t dim, const float* row_scale,
                          const TensorView& t, const int64_t* offset, const bool* valid,
                          float* staged, float* spare) {
  const size_t L = hn::Lanes(d);
  const bool direct = t.dtype == DType::f32 && t.stride[t.ndim - 1] == 1;
  float* rows[kMaxLanes];
  for (size_t l = 0; l < L; ++l) {
    rows[l] = direct ? static_cast<float*>(t.data) + offset[l] : staged + l * dim;
  }
  UnpackRows(d, packed, dim, row_scale, rows, spare);
  if (direct) return;
  for (size_t l = 0; l < L; ++l) {
    if (valid[l]) store_row(t, offset[l], rows[l], 1, static_cast<int64_t>(dim), 1.0f);
  }
}

// WriteRows into row (b, lane l's token, h) of `t` for the walk's tile.
HWY_INLINE void WriteLanes(DF d, const TileWalk& w, const float* packed, size_t dim,
                           const float* row_scale, const TensorView& t, int64_t b, int64_t h,
                           float* staged, float* spare) {
  int64_t offset[kMaxLanes];
  w.lane_offsets(t.stride + 1, offset);
  const int64_t origin = b * t.stride[0] + h * t.stride[w.rank() + 1];
  for (int l = 0; l < w.lanes(); ++l) offset[l] += origin;
  WriteRows(d, packed, dim, row_scale, t, offset, w.valid_lanes(), staged, spare);
}

// A vector of one value in every lane, as lane array.
HWY_INLINE void FillLanes(DF d, float value, float* lanes) { hn::Store(hn::Set(d, value), d, lanes); }

}  // namespace HWY_NAMESPACE
}  // namespace gna::cpu
HWY_AFTER_NAMESPACE();

#endif  // GNA_CPU_STEPS_INL_H_
