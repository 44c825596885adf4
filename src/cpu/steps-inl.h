// Per-target helpers every pass of the cpu backend shares: the rows a tile's
// lanes own, the rows one step gathers (with its mask bias), and writing
// packed results back into the caller's tensors.

#if defined(GNA_CPU_STEPS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef GNA_CPU_STEPS_INL_H_
#undef GNA_CPU_STEPS_INL_H_
#else
#define GNA_CPU_STEPS_INL_H_
#endif

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include <algorithm>
#include <cstdint>

#include "cpu/kernels-inl.h"
#include "cpu/passes.hpp"
#include "cpu/rows.hpp"
#include "cpu/scratch.hpp"
#include "cpu/tile_walk.hpp"

HWY_BEFORE_NAMESPACE();
namespace gna::cpu {
namespace HWY_NAMESPACE {

// rows[l] = the row of lane l of the walk's tile in `source` (batch b, head
// h + l % head group: h is the first head of the tile's group).
HWY_INLINE void LaneRows(const TileWalk& w, const Fp32Rows& source, int64_t b, int64_t h,
                         const float** rows) {
  int64_t offset[kMaxLanes];
  w.lane_offsets(source.spatial_strides(), offset);
  const float* origin = source.origin(b, h);
  const int64_t head_stride = source.stride(w.rank() + 1);
  const int g = w.head_group();
  for (int l = 0; l < w.lanes(); ++l) rows[l] = origin + offset[l] + (l % g) * head_stride;
}

// Asks for the lanes' rows `ahead` floats further on (the next head's)
// while this item still computes: their first touch is a cache miss.
HWY_INLINE void PrefetchRows(const float* const* rows, int64_t ahead) {
  for (size_t l = 0; l < hn::Lanes(DF()); ++l) hwy::Prefetch(rows[l] + ahead);
}

// The tokens of one step, gathered: where the rows of two tensors (keys
// and values, or queries and output gradients) lie relative to the rows of
// a (batch, head), so that one gathering serves every head; and where they
// are for the (batch, head) of the current item.
struct StepRows {
  int64_t first_at[kStepTokens];
  int64_t second_at[kStepTokens];
  int64_t token[kStepTokens];  // row-major token index, when asked for
  const float* first[kStepTokens];
  const float* second[kStepTokens];
  size_t count = 0;
  bool biased = false;  // the step needs its mask bias

  void aim(const Fp32Rows& f, const Fp32Rows& s, int64_t b, int64_t h) {
    const float* fo = f.origin(b, h);
    const float* so = s.origin(b, h);
    for (size_t n = 0; n < count; ++n) {
      first[n] = fo + first_at[n];
      second[n] = so + second_at[n];
    }
  }
};

// Gathers one step of the walk's tile into `out`, with the mask bias of
// every token (one vector each) in `bias` when the step is not clean.
// axis_bias[a]: room for one chunk's bias per axis (kStepTokens vectors).
// token_stride: row-major token strides of the grid, or nullptr when the
// token indices are not needed.
HWY_INLINE void GatherStep(DF d, const TileWalk& w, const Step& step, const Fp32Rows& first,
                           const Fp32Rows& second, const int64_t* token_stride,
                           float* const* axis_bias, float* bias, StepRows& out) {
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
  const int64_t* first_stride = first.spatial_strides();
  const int64_t* second_stride = second.spatial_strides();
  size_t n = 0;
  for_each_run(w, step, [&](const int64_t* y, const int64_t* j, int64_t count) {
    int64_t f = 0, s = 0, t = 0;
    for (int a = 0; a <= last; ++a) {
      f += y[a] * first_stride[a];
      s += y[a] * second_stride[a];
      if (token_stride != nullptr) t += y[a] * token_stride[a];
    }
    for (int64_t i = 0; i < count; ++i) {
      out.first_at[n + i] = f + i * first_step;
      out.second_at[n + i] = s + i * second_step;
    }
    if (token_stride != nullptr) {
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
  out.biased = !step.clean;
}

// Steps of one tile whose gathering TileSteps keeps for the next head.
constexpr int kKeptSteps = 4;

// Per-thread memory of TileSteps: the walks of the current tile and of
// the one before it.
struct StepScratch {
  TileWalk walk[2];
  StepRows rows[kKeptSteps];
  AlignedFloats bias[kKeptSteps], axis_bias[kMaxSpatialRank];
};

// The steps of the current tile, for every head that visits it in a row
// (work items run heads innermost): the walk is kept, and so is the
// gathering of a tile of up to kKeptSteps steps (small windows, where
// gathering is a visible share of the work), also for the next tile when
// its walk is this one's moved (TileWalk::shifted_copy_of: then only the
// rows' offsets move); a tile of more steps gathers each step when it
// comes.
class TileSteps {
 public:
  // `first` and `second` are the rows gathered (keys and values, or
  // queries and output gradients); token_stride as for GatherStep.
  TileSteps(StepScratch& s, const Tiling& tiling, const Fp32Rows& first, const Fp32Rows& second,
            const int64_t* token_stride)
      : s_(s), tiling_(tiling), first_(first), second_(second), token_stride_(token_stride) {
    const size_t L = hn::Lanes(DF());
    for (int i = 0; i < kKeptSteps; ++i) {
      bias_[i] = s.bias[i].reserve(static_cast<size_t>(kStepTokens) * L);
    }
    for (int a = 0; a < kMaxSpatialRank; ++a) {
      axis_bias_[a] = s.axis_bias[a].reserve(static_cast<size_t>(kStepTokens) * L);
    }
  }

  // Moves to `tile` unless it is the current one.
  void start(int64_t tile) {
    if (tile == tile_) return;
    const TileWalk& previous = s_.walk[current_];
    current_ ^= 1;
    TileWalk& w = s_.walk[current_];
    w.start(tiling_, tile, kStepTokens);
    tile_ = tile;
    int64_t shift[kMaxSpatialRank] = {0, 0, 0};
    if (gathered_ && w.shifted_copy_of(previous, shift)) {
      move_gathered(shift);
    } else {
      gathered_ = false;
    }
  }

  const TileWalk& walk() const { return s_.walk[current_]; }

  // f(rows, bias) for every step of the tile, its rows aimed at batch b and
  // head h; bias is the step's mask bias, or nullptr for a clean step.
  template <class F>
  void for_each(int64_t b, int64_t h, F&& f) {
    const DF d;
    auto visit = [&](StepRows& rows, const float* bias) {
      rows.aim(first_, second_, b, h);
      f(static_cast<const StepRows&>(rows), rows.biased ? bias : nullptr);
    };
    const TileWalk& w = walk();
    const int64_t steps = w.steps();
    if (steps <= kKeptSteps) {
      if (!gathered_) {
        int i = 0;
        for_each_step(w, [&](const Step& step) { gather(d, step, i++); });
        gathered_ = true;
      }
      for (int i = 0; i < steps; ++i) visit(s_.rows[i], bias_[i]);
      return;
    }
    for_each_step(w, [&](const Step& step) {
      gather(d, step, 0);
      visit(s_.rows[0], bias_[0]);
    });
  }

 private:
  void gather(DF d, const Step& step, int i) {
    GatherStep(d, walk(), step, first_, second_, token_stride_, axis_bias_, bias_[i], s_.rows[i]);
  }

  // The kept steps' tokens moved by shift[a] along each axis a: their
  // offsets in both tensors and their token indices; masks stay.
  void move_gathered(const int64_t* shift) {
    int64_t f = 0, s = 0, t = 0;
    for (int a = 0; a < walk().rank(); ++a) {
      f += shift[a] * first_.spatial_strides()[a];
      s += shift[a] * second_.spatial_strides()[a];
      if (token_stride_ != nullptr) t += shift[a] * token_stride_[a];
    }
    for (int64_t i = 0; i < walk().steps(); ++i) {
      StepRows& rows = s_.rows[i];
      for (size_t n = 0; n < rows.count; ++n) {
        rows.first_at[n] += f;
        rows.second_at[n] += s;
      }
      if (token_stride_ == nullptr) continue;
      for (size_t n = 0; n < rows.count; ++n) rows.token[n] += t;
    }
  }

  StepScratch& s_;
  const Tiling& tiling_;
  const Fp32Rows &first_, &second_;
  const int64_t* token_stride_;
  float* bias_[kKeptSteps] = {};
  float* axis_bias_[kMaxSpatialRank] = {nullptr, nullptr, nullptr};
  int64_t tile_ = -1;
  int current_ = 0;        // which of s_.walk is this tile's
  bool gathered_ = false;  // s_.rows hold this tile's steps
};

// f(b, h, tile) for work items [begin, end) of `tiles` tiles and `heads`
// heads per batch, in (batch, tile, head) order: neighbouring items share
// rows in the caches (the heads of one token are adjacent in memory) and
// the walk of their tile (TileSteps).
template <class F>
HWY_INLINE void ForEachItem(int64_t tiles, int64_t heads, int64_t begin, int64_t end, F&& f) {
  for (int64_t item = begin; item < end; ++item) {
    f(item / (tiles * heads), item % heads, (item / heads) % tiles);
  }
}

// f(rows, nullptr) for the additional KV tokens of batch b and kv head hk,
// in steps (every query sees all of them: no mask).
template <class F>
HWY_INLINE void ForEachExtraStep(const Fp32Rows& keys, const Fp32Rows& values, int64_t extra,
                                 int64_t b, int64_t hk, StepRows& rows, F&& f) {
  for (int64_t first = 0; first < extra; first += kStepTokens) {
    rows.count = static_cast<size_t>(std::min(kStepTokens, extra - first));
    for (size_t i = 0; i < rows.count; ++i) {
      rows.first[i] = keys.row(b, first + static_cast<int64_t>(i), hk);
      rows.second[i] = values.row(b, first + static_cast<int64_t>(i), hk);
    }
    f(static_cast<const StepRows&>(rows), static_cast<const float*>(nullptr));
  }
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

// WriteRows into row (b, lane l's token, h + l % head group) of `t` for
// the walk's tile.
HWY_INLINE void WriteLanes(DF d, const TileWalk& w, const float* packed, size_t dim,
                           const float* row_scale, const TensorView& t, int64_t b, int64_t h,
                           float* staged, float* spare) {
  int64_t offset[kMaxLanes];
  w.lane_offsets(t.stride + 1, offset);
  const int64_t origin = b * t.stride[0] + h * t.stride[w.rank() + 1];
  const int g = w.head_group();
  for (int l = 0; l < w.lanes(); ++l) offset[l] += origin + (l % g) * t.stride[w.rank() + 1];
  WriteRows(d, packed, dim, row_scale, t, offset, w.valid_lanes(), staged, spare);
}

// WriteLanes for the tile of a head group whose result is a row per token
// regrouped by heads (AddRowsToGroupLanes: token t's at t * stride, element
// e of head k at e * kHeadBlock + k): into rows (b, token, h + k) of `t`,
// lane l scaled by row_scale[l], for the valid tokens. staged: kHeadBlock *
// dim floats.
HWY_INLINE void WriteGroupLanes(DF d, const TileWalk& w, const float* acc, size_t stride,
                                size_t dim, const float* row_scale, const TensorView& t,
                                int64_t b, int64_t h, float* staged) {
  const size_t L = hn::Lanes(d);
  const bool direct = t.dtype == DType::f32 && t.stride[t.ndim - 1] == 1;
  int64_t offset[kMaxLanes];
  w.lane_offsets(t.stride + 1, offset);
  const int64_t head_stride = t.stride[w.rank() + 1];
  const int64_t origin = b * t.stride[0] + h * head_stride;
  for (size_t token = 0; token < L / kHeadBlock; ++token) {
    const size_t l0 = token * kHeadBlock;
    if (!w.valid(static_cast<int>(l0))) continue;  // the heads of a token share its validity
    int64_t at[kHeadBlock];
    float* rows[kHeadBlock];
    for (size_t k = 0; k < kHeadBlock; ++k) {
      at[k] = origin + offset[l0 + k] + static_cast<int64_t>(k) * head_stride;
      rows[k] = direct ? static_cast<float*>(t.data) + at[k] : staged + k * dim;
    }
    DeinterleaveHeads(acc + token * stride, dim, row_scale + l0, rows);
    if (direct) continue;
    for (size_t k = 0; k < kHeadBlock; ++k) {
      store_row(t, at[k], rows[k], 1, static_cast<int64_t>(dim), 1.0f);
    }
  }
}

// A vector of one value in every lane, as lane array.
HWY_INLINE void FillLanes(DF d, float value, float* lanes) { hn::Store(hn::Set(d, value), d, lanes); }

}  // namespace HWY_NAMESPACE
}  // namespace gna::cpu
HWY_AFTER_NAMESPACE();

#endif  // GNA_CPU_STEPS_INL_H_
