// The cpu backend's forward: one work item is one query tile of one batch
// and head. Its lanes' queries are packed (scaled into log2 units), then the
// tile walks its steps (boxes of key chunks, src/cpu/tile_walk.hpp) and the
// additional KV, with the online softmax of FlashAttention: per step the
// scores, the new running maximum, the rescale of what was accumulated, and
// P V. Only steps that are not clean pay for the mask, one add per key.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/forward.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cpu/kernels-inl.h"
#include "cpu/steps-inl.h"
#include "cpu/passes.hpp"
#include "cpu/scratch.hpp"
#include "cpu/thread_pool.hpp"

HWY_BEFORE_NAMESPACE();
namespace gna::cpu {
namespace HWY_NAMESPACE {
namespace {

struct ForwardScratch {
  AlignedFloats packed, acc, staged, spare, scores, lanes;
  StepScratch steps;
  StepRows extra;
};

class QueryTile {
 public:
  QueryTile(const ForwardJob& job, ForwardScratch& s)
      : job_(job), p_(*job.problem), s_(s), steps_(s.steps, job.tiling, job.key, job.value, nullptr) {
    const size_t L = hn::Lanes(d_);
    // Packed rows come in whole L x L blocks: room for the dims rounded up.
    acc_size_ = hwy::RoundUpTo(static_cast<size_t>(p_.head_dim_v), L) * L;
    // Head groups: one row per token regrouped by heads (AddRowsToGroupLanes).
    group_stride_ = hwy::RoundUpTo(static_cast<size_t>(p_.head_dim_v) * kHeadBlock, L);
    acc_size_ = std::max(acc_size_, L / kHeadBlock * group_stride_);
    packed_ = s.packed.reserve(hwy::RoundUpTo(static_cast<size_t>(p_.head_dim), L) * L);
    acc_ = s.acc.reserve(acc_size_);
    staged_ = s.staged.reserve(static_cast<size_t>(p_.head_dim_v) * L);
    spare_ = s.spare.reserve(L * L);
    scores_ = s.scores.reserve(static_cast<size_t>(kStepTokens) * L);
    lanes_ = s.lanes.reserve(3 * L);
  }

  // Tile `tile` of batch b and head group `group` (its heads from
  // group * head_group on).
  void run(int64_t b, int64_t group, int64_t tile) {
    const int g = job_.tiling.head_group;
    b_ = b;
    h_ = group * g;
    // Rows regrouped by heads are addressed by group (heads == kv_heads).
    hk_ = g > 1 ? group : h_ / (p_.heads / p_.kv_heads);
    steps_.start(tile);
    const float* rows[kMaxLanes];
    LaneRows(steps_.walk(), job_.query, b_, h_, rows);
    if (h_ + g < p_.heads) PrefetchRows(rows, g * job_.query.stride(p_.rank() + 1));
    PackRows(d_, rows, static_cast<size_t>(p_.head_dim), job_.scale2, packed_, spare_);
    max_ = hn::Set(d_, kMasked);
    sum_ = hn::Zero(d_);
    std::fill(acc_, acc_ + acc_size_, 0.0f);
    fresh_ = true;
    auto attend_step = [&](const StepRows& keys, const float* bias) { attend<1>(keys, bias); };
    if (g == kHeadBlock) {
      steps_.for_each(b_, hk_, [&](const StepRows& keys, const float* bias) {
        attend<kHeadBlock>(keys, bias);
      });
    } else {
      steps_.for_each(b_, hk_, attend_step);
    }
    ForEachExtraStep(job_.extra_key, job_.extra_value, p_.extra_kv, b_, hk_, s_.extra,
                     attend_step);
    write_results();
  }

 private:
  // One step of the online softmax over the keys in `rows`, with their mask
  // bias when there is one; G: heads per tile (rows regrouped when > 1).
  template <int G>
  void attend(const StepRows& rows, const float* bias) {
    const size_t L = hn::Lanes(d_), n = rows.count;
    const size_t D = static_cast<size_t>(p_.head_dim), Dv = static_cast<size_t>(p_.head_dim_v);
    const VF step_max = Scores<G>(d_, rows.first, n, packed_, D, bias, scores_);
    const VF new_max = hn::Max(max_, step_max);
    const VF rescale = Exp2(d_, hn::Sub(max_, new_max));
    max_ = new_max;
    VF step_sum = hn::Zero(d_);
    for (size_t i = 0; i < n; ++i) {
      const VF prob = Exp2(d_, hn::Sub(hn::Load(d_, scores_ + i * L), max_));
      hn::Store(prob, d_, scores_ + i * L);
      step_sum = hn::Add(step_sum, prob);
    }
    sum_ = hn::MulAdd(sum_, rescale, step_sum);
    // Nothing to rescale before the first step (acc is 0), nor where no
    // lane's maximum moved.
    if (!fresh_ && !hn::AllTrue(d_, hn::Eq(rescale, hn::Set(d_, 1.0f)))) {
      if constexpr (G == 1) {
        for (size_t e = 0; e < Dv; ++e) {
          hn::Store(hn::Mul(hn::Load(d_, acc_ + e * L), rescale), d_, acc_ + e * L);
        }
      } else {  // token t's row gains its heads' lanes t * kHeadBlock..
        hn::Store(rescale, d_, lanes_);
        for (size_t t = 0; t < L / kHeadBlock; ++t) {
          const VF r = hn::LoadDup128(d_, lanes_ + t * kHeadBlock);
          float* row = acc_ + t * group_stride_;
          for (size_t v = 0; v < group_stride_; v += L) {
            hn::Store(hn::Mul(hn::Load(d_, row + v), r), d_, row + v);
          }
        }
      }
    }
    if constexpr (G == 1) {
      AddAllRows<G>(d_, rows.second, n, scores_, Dv, acc_);
    } else {
      AddAllRowsToGroupLanes(d_, rows.second, n, scores_, Dv, group_stride_, acc_);
    }
    fresh_ = false;
  }

  // O = acc / sum; LSE = (max + log2(sum)) * ln 2, back from log2 units.
  void write_results() {
    const size_t L = hn::Lanes(d_);
    const ForwardArgs& args = *job_.args;
    float *lse_lanes = lanes_, *inv = lanes_ + L;
    hn::Store(hn::Div(hn::Set(d_, 1.0f), sum_), d_, inv);
    const TileWalk& w = steps_.walk();
    if (w.head_group() == kHeadBlock) {
      WriteGroupLanes(d_, w, acc_, group_stride_, static_cast<size_t>(p_.head_dim_v), inv,
                      args.output, b_, h_, staged_);
    } else {
      WriteLanes(d_, w, acc_, static_cast<size_t>(p_.head_dim_v), inv, args.output, b_, h_,
                 staged_, spare_);
    }
    if (!args.lse.defined()) return;
    // Vector log2 (contrib/math, 2 ulp): scalar calls per lane were a
    // visible cost per tile.
    hn::Store(hn::Mul(hn::Add(max_, hn::Log2(d_, sum_)), hn::Set(d_, kLn2)), d_, lse_lanes);
    const TensorView& lse = args.lse;
    int64_t offset[kMaxLanes];
    w.lane_offsets(lse.stride + 1, offset);
    const int64_t head_stride = lse.stride[p_.rank() + 1];
    float* out = static_cast<float*>(lse.data) + b_ * lse.stride[0] + h_ * head_stride;
    const size_t g = static_cast<size_t>(w.head_group());
    for (size_t l = 0; l < L; ++l) {
      if (w.valid(static_cast<int>(l))) {
        out[offset[l] + static_cast<int64_t>(l % g) * head_stride] = lse_lanes[l];
      }
    }
  }

  const DF d_;
  const ForwardJob& job_;
  const Problem& p_;
  ForwardScratch& s_;
  TileSteps steps_;
  float *packed_, *acc_, *staged_, *spare_, *scores_, *lanes_;
  size_t acc_size_ = 0, group_stride_ = 0;
  int64_t b_ = 0, h_ = 0, hk_ = 0;
  VF max_, sum_;
  bool fresh_ = true;  // no step attended yet: acc is all 0
};

}  // namespace

void ForwardItems(const ForwardJob& job, int64_t begin, int64_t end) {
  thread_local ForwardScratch scratch;
  QueryTile tile(job, scratch);
  ForEachItem(job.tiling.count(), job.problem->heads / job.tiling.head_group, begin, end,
              [&](int64_t b, int64_t h, int64_t t) { tile.run(b, h, t); });
}

// interleave_rows (src/cpu/rows.hpp): 4 x 4 blocks transposed in 128-bit
// vectors.
void InterleaveRows(const float* const* in, int64_t dim, float* out) {
  static_assert(kHeadBlock == 4, "one 128-bit vector per element");
  int64_t e = 0;
#if HWY_TARGET != HWY_SCALAR
  const hn::Full128<float> d;
  for (; e + 4 <= dim; e += 4) {
    const auto v0 = hn::LoadU(d, in[0] + e), v1 = hn::LoadU(d, in[1] + e);
    const auto v2 = hn::LoadU(d, in[2] + e), v3 = hn::LoadU(d, in[3] + e);
    const auto lo01 = hn::InterleaveLower(d, v0, v1), lo23 = hn::InterleaveLower(d, v2, v3);
    const auto hi01 = hn::InterleaveUpper(d, v0, v1), hi23 = hn::InterleaveUpper(d, v2, v3);
    hn::StoreU(hn::ConcatLowerLower(d, lo23, lo01), d, out + (e + 0) * kHeadBlock);
    hn::StoreU(hn::ConcatUpperUpper(d, lo23, lo01), d, out + (e + 1) * kHeadBlock);
    hn::StoreU(hn::ConcatLowerLower(d, hi23, hi01), d, out + (e + 2) * kHeadBlock);
    hn::StoreU(hn::ConcatUpperUpper(d, hi23, hi01), d, out + (e + 3) * kHeadBlock);
  }
#endif
  for (; e < dim; ++e) {
    for (int k = 0; k < kHeadBlock; ++k) out[e * kHeadBlock + k] = in[k][e];
  }
}

int LaneCount() { return static_cast<int>(hn::Lanes(DF())); }
const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace gna::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace gna::cpu {

HWY_EXPORT(ForwardItems);
HWY_EXPORT(LaneCount);
HWY_EXPORT(InterleaveRows);
HWY_EXPORT(TargetName);

int simd_lanes() { return HWY_DYNAMIC_DISPATCH(LaneCount)(); }
void interleave_rows(const float* const* in, int64_t dim, float* out) {
  HWY_DYNAMIC_DISPATCH(InterleaveRows)(in, dim, out);
}
const char* simd_target() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

Tiling forward_tiling(const Problem& p) { return best_tiling(p, simd_lanes(), Looks::at_keys); }

std::string describe_tiles(const Problem& p) {
  const Tiling t = forward_tiling(p);
  std::string shape;
  for (int a = 0; a < t.rank; ++a) shape += (a ? "x" : "") + std::to_string(t.extent[a]);
  if (t.head_group > 1) shape += " tokens x " + std::to_string(t.head_group) + " heads";
  else shape += " tokens";
  return shape + " on " + std::to_string(t.lanes * t.head_group) + " lanes (" + simd_target() +
         ")";
}

void forward_pass(const Problem& p, const ForwardArgs& args, int threads) {
  ForwardJob job;
  job.problem = &p;
  job.args = &args;
  job.tiling = forward_tiling(p);
  job.query.prepare(args.query, p.rank(), threads);
  const int g = job.tiling.head_group;
  if (g > 1) {
    // Kept per calling thread: one call at a time on each.
    thread_local AlignedFloats keys, values;
    job.key.prepare_grouped(args.key, p.rank(), g, threads, keys);
    job.value.prepare_grouped(args.value, p.rank(), g, threads, values);
  } else {
    job.key.prepare(args.key, p.rank(), threads);
    job.value.prepare(args.value, p.rank(), threads);
  }
  job.extra_key.prepare(args.extra_key, 1, threads);
  job.extra_value.prepare(args.extra_value, 1, threads);
  job.scale2 = static_cast<float>(p.scale()) * kLog2e;
  const int64_t items = p.batch * (p.heads / g) * job.tiling.count();
  parallel_for_chunks(items, threads, [&](int64_t begin, int64_t end) {
    HWY_DYNAMIC_DISPATCH(ForwardItems)(job, begin, end);
  });
}

}  // namespace gna::cpu
#endif  // HWY_ONCE
