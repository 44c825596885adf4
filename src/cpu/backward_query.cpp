// The cpu backend's backward, first pass: one work item is one query tile
// of one batch and head, as in the forward. It packs Q (scaled into log2
// units), dO and O of its lanes, computes delta = dO . O - dLSE, and walks
// the same steps as the forward: P = exp2(S - lse), dP = dO V^T,
// dS = P (dP - delta), dQ += dS K. The LSE saved by the forward makes every
// step independent, so no online rescaling is needed. delta and lse go to
// the job for the key pass (backward_key.cpp).

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/backward_query.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <algorithm>

#include "cpu/kernels-inl.h"
#include "cpu/passes.hpp"
#include "cpu/scratch.hpp"
#include "cpu/steps-inl.h"
#include "cpu/thread_pool.hpp"

HWY_BEFORE_NAMESPACE();
namespace gna::cpu {
namespace HWY_NAMESPACE {
namespace {

struct QueryGradScratch {
  AlignedFloats query, grad_output, acc, staged, spare, scores, grad_scores, step_bias, lanes,
      bias[kMaxSpatialRank];
  StepRows rows, extra;
  TileWalk walk;
};

class QueryGradTile {
 public:
  QueryGradTile(BackwardJob& job, QueryGradScratch& s) : job_(job), p_(*job.problem), s_(s) {
    const size_t L = hn::Lanes(d_);
    const size_t D = hwy::RoundUpTo(static_cast<size_t>(p_.head_dim), L);
    const size_t Dv = hwy::RoundUpTo(static_cast<size_t>(p_.head_dim_v), L);
    acc_size_ = D * L;
    query_ = s.query.reserve(D * L);
    grad_output_ = s.grad_output.reserve(Dv * L);
    acc_ = s.acc.reserve(std::max(D, Dv) * L);  // holds O first, for delta
    staged_ = s.staged.reserve(static_cast<size_t>(p_.head_dim) * L);
    spare_ = s.spare.reserve(L * L);
    scores_ = s.scores.reserve(static_cast<size_t>(kStepTokens) * L);
    grad_scores_ = s.grad_scores.reserve(static_cast<size_t>(kStepTokens) * L);
    step_bias_ = s.step_bias.reserve(static_cast<size_t>(kStepTokens) * L);
    lanes_ = s.lanes.reserve(L);
    for (int a = 0; a < kMaxSpatialRank; ++a) bias_[a] = s.bias[a].reserve(kStepTokens * L);
  }

  void run(int64_t b, int64_t h, int64_t tile) {
    b_ = b;
    h_ = h;
    hk_ = h / (p_.heads / p_.kv_heads);
    if (tile != tile_) {  // the heads of one tile come in a row and share its walk
      s_.walk.start(job_.query_tiling, tile, kStepTokens);
      tile_ = tile;
      one_step_ = GatherOnlyStep(d_, s_.walk, job_.key, job_.value, nullptr, bias_, step_bias_,
                                 s_.rows);
    }
    pack_lanes();
    std::fill(acc_, acc_ + acc_size_, 0.0f);
    if (one_step_) {
      s_.rows.aim(job_.key, job_.value, b_, hk_);
      accumulate(s_.rows, s_.rows.biased ? step_bias_ : nullptr);
    } else {
      for_each_step(s_.walk, [&](const Step& step) {
        GatherStep(d_, s_.walk, step, job_.key, job_.value, nullptr, bias_, scores_, s_.rows);
        s_.rows.aim(job_.key, job_.value, b_, hk_);
        accumulate(s_.rows, s_.rows.biased ? scores_ : nullptr);
      });
    }
    for (int64_t first = 0; first < p_.extra_kv; first += kStepTokens) {
      StepRows& extra = s_.extra;
      extra.count = static_cast<size_t>(std::min(kStepTokens, p_.extra_kv - first));
      for (size_t i = 0; i < extra.count; ++i) {
        extra.first[i] = job_.extra_key.row(b_, first + static_cast<int64_t>(i), hk_);
        extra.second[i] = job_.extra_value.row(b_, first + static_cast<int64_t>(i), hk_);
      }
      accumulate(extra, nullptr);
    }
    FillLanes(d_, static_cast<float>(p_.scale()), lanes_);
    WriteLanes(d_, s_.walk, acc_, static_cast<size_t>(p_.head_dim), lanes_,
               job_.args->grad_query, b_, h_, staged_, spare_);
  }

 private:
  // Packs Q and dO; delta and lse per lane, kept here and in the job.
  void pack_lanes() {
    const size_t L = hn::Lanes(d_);
    const size_t D = static_cast<size_t>(p_.head_dim), Dv = static_cast<size_t>(p_.head_dim_v);
    const BackwardArgs& args = *job_.args;
    const TileWalk& w = s_.walk;
    const float* rows[kMaxLanes];
    LaneRows(w, job_.query, b_, h_, rows);
    PackRows(d_, rows, D, job_.scale2, query_, spare_);
    LaneRows(w, job_.grad_output, b_, h_, rows);
    PackRows(d_, rows, Dv, 1.0f, grad_output_, spare_);
    LaneRows(w, job_.output, b_, h_, rows);
    PackRows(d_, rows, Dv, 1.0f, acc_, spare_);
    VF delta = hn::Zero(d_);
    for (size_t e = 0; e < Dv; ++e) {
      delta = hn::MulAdd(hn::Load(d_, grad_output_ + e * L), hn::Load(d_, acc_ + e * L), delta);
    }
    HWY_ALIGN float lane_delta[kMaxLanes], lane_lse[kMaxLanes];
    hn::Store(delta, d_, lane_delta);
    int64_t lse_at[kMaxLanes], grad_lse_at[kMaxLanes], token[kMaxLanes];
    const int r = p_.rank();
    w.lane_offsets(args.lse.stride + 1, lse_at);
    w.lane_offsets(job_.token_stride, token);
    const float* lse = static_cast<const float*>(args.lse.data) + b_ * args.lse.stride[0] +
                       h_ * args.lse.stride[r + 1];
    const TensorView& g = args.grad_lse;
    const float* grad_lse = nullptr;
    if (g.defined()) {
      w.lane_offsets(g.stride + 1, grad_lse_at);
      grad_lse = static_cast<const float*>(g.data) + b_ * g.stride[0] + h_ * g.stride[r + 1];
    }
    for (size_t l = 0; l < L; ++l) {
      if (grad_lse != nullptr) lane_delta[l] -= grad_lse[grad_lse_at[l]];
      lane_lse[l] = lse[lse_at[l]] * kLog2e;
      if (w.valid(static_cast<int>(l))) {
        const size_t row = static_cast<size_t>(job_.query_row(b_, token[l], h_));
        job_.delta[row] = lane_delta[l];
        job_.lse2[row] = lane_lse[l];
      }
    }
    delta_ = hn::Load(d_, lane_delta);
    lse_ = hn::Load(d_, lane_lse);
  }

  // dQ += dS K over the keys in `rows`, with their mask bias when there is
  // one (bias may be scores_ itself).
  void accumulate(const StepRows& rows, const float* bias) {
    const size_t L = hn::Lanes(d_), n = rows.count;
    const size_t D = static_cast<size_t>(p_.head_dim), Dv = static_cast<size_t>(p_.head_dim_v);
    Scores(d_, rows.first, n, query_, D, bias, scores_);
    Scores(d_, rows.second, n, grad_output_, Dv, nullptr, grad_scores_);
    for (size_t i = 0; i < n; ++i) {
      const VF prob = Exp2(d_, hn::Sub(hn::Load(d_, scores_ + i * L), lse_));
      const VF grad = hn::Sub(hn::Load(d_, grad_scores_ + i * L), delta_);
      hn::Store(hn::Mul(prob, grad), d_, scores_ + i * L);
    }
    AddAllRows(d_, rows.first, n, scores_, D, acc_);
  }

  const DF d_;
  BackwardJob& job_;
  const Problem& p_;
  QueryGradScratch& s_;
  float *query_, *grad_output_, *acc_, *staged_, *spare_, *scores_, *grad_scores_, *step_bias_,
      *lanes_;
  float* bias_[kMaxSpatialRank];
  size_t acc_size_ = 0;
  int64_t b_ = 0, h_ = 0, hk_ = 0, tile_ = -1;
  bool one_step_ = false;
  VF delta_, lse_;
};

}  // namespace

void QueryGradItems(BackwardJob& job, int64_t begin, int64_t end) {
  thread_local QueryGradScratch scratch;
  QueryGradTile tile(job, scratch);
  // (batch, tile, head) order, as in the forward.
  const int64_t tiles = job.query_tiling.count(), heads = job.problem->heads;
  for (int64_t item = begin; item < end; ++item) {
    tile.run(item / (tiles * heads), item % heads, (item / heads) % tiles);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace gna::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace gna::cpu {

HWY_EXPORT(QueryGradItems);

void backward_pass(const Problem& p, const BackwardArgs& args, int threads) {
  BackwardJob job;
  job.problem = &p;
  job.args = &args;
  const int lanes = simd_lanes();
  job.query_tiling = make_tiling(p, lanes, Looks::at_keys);
  job.key_tiling = make_tiling(p, lanes, Looks::at_queries);
  job.query.prepare(args.query, p.rank(), threads);
  job.key.prepare(args.key, p.rank(), threads);
  job.value.prepare(args.value, p.rank(), threads);
  job.output.prepare(args.output, p.rank(), threads);
  job.grad_output.prepare(args.grad_output, p.rank(), threads);
  job.extra_key.prepare(args.extra_key, 1, threads);
  job.extra_value.prepare(args.extra_value, 1, threads);
  for (int a = p.rank() - 1; a >= 0; --a) {
    job.token_stride[a] = a == p.rank() - 1 ? 1 : job.token_stride[a + 1] * p.extent[a + 1];
  }
  const size_t rows = static_cast<size_t>(p.batch * p.tokens() * p.heads);
  job.delta.resize(rows);
  job.lse2.resize(rows);
  job.scale2 = static_cast<float>(p.scale()) * kLog2e;
  const int64_t items = p.batch * p.heads * job.query_tiling.count();
  parallel_for_chunks(items, threads, [&](int64_t begin, int64_t end) {
    HWY_DYNAMIC_DISPATCH(QueryGradItems)(job, begin, end);
  });
  key_pass(job, threads);
}

}  // namespace gna::cpu
#endif  // HWY_ONCE
