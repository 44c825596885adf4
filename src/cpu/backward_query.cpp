// The query side of the cpu backend's backward (src/cpu/passes.hpp).
//
// The delta pass: per query row, delta = dO . O - dLSE and lse in log2
// units, for every later pass; when fused, it also zeroes the row's dQ.
//
// The query pass: one work item is one query tile of one batch and head, as
// in the forward. It packs Q (scaled into log2 units) and dO of its lanes
// and walks the forward's steps: P = exp2(S - lse), dP = dO V^T,
// dS = P (dP - delta), dQ += dS K. The saved LSE makes every step
// independent: no online rescaling. When the key pass was fused, dQ starts
// from the key pass's sums and only the additional KV is left to add.

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

// a . b over n floats.
float Dot(const float* a, const float* b, int64_t n) {
  const DF d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  VF sum = hn::Zero(d);
  int64_t e = 0;
  for (; e + L <= n; e += L) sum = hn::MulAdd(hn::LoadU(d, a + e), hn::LoadU(d, b + e), sum);
  float total = hn::GetLane(hn::SumOfLanes(d, sum));
  for (; e < n; ++e) total += a[e] * b[e];
  return total;
}

struct QueryGradScratch {
  AlignedFloats query, grad_output, acc, staged, spare, scores, grad_scores, lanes;
  StepScratch steps;
  StepRows extra;
};

class QueryGradTile {
 public:
  QueryGradTile(const BackwardJob& job, QueryGradScratch& s)
      : job_(job), p_(*job.problem), s_(s),
        steps_(s.steps, job.query_tiling, job.key, job.value, nullptr) {
    const size_t L = hn::Lanes(d_);
    const size_t D = hwy::RoundUpTo(static_cast<size_t>(p_.head_dim), L);
    const size_t Dv = hwy::RoundUpTo(static_cast<size_t>(p_.head_dim_v), L);
    acc_size_ = D * L;
    query_ = s.query.reserve(D * L);
    grad_output_ = s.grad_output.reserve(Dv * L);
    acc_ = s.acc.reserve(D * L);
    staged_ = s.staged.reserve(static_cast<size_t>(p_.head_dim) * L);
    spare_ = s.spare.reserve(L * L);
    scores_ = s.scores.reserve(static_cast<size_t>(kStepTokens) * L);
    grad_scores_ = s.grad_scores.reserve(static_cast<size_t>(kStepTokens) * L);
    lanes_ = s.lanes.reserve(L);
  }

  void run(int64_t b, int64_t h, int64_t tile) {
    b_ = b;
    h_ = h;
    hk_ = h / (p_.heads / p_.kv_heads);
    steps_.start(tile);
    pack_lanes();
    auto add_step = [&](const StepRows& keys, const float* bias) { accumulate(keys, bias); };
    if (job_.fused) {
      start_from_key_pass();
    } else {
      std::fill(acc_, acc_ + acc_size_, 0.0f);
      steps_.for_each(b_, hk_, add_step);
    }
    ForEachExtraStep(job_.extra_key, job_.extra_value, p_.extra_kv, b_, hk_, s_.extra, add_step);
    FillLanes(d_, static_cast<float>(p_.scale()), lanes_);
    WriteLanes(d_, steps_.walk(), acc_, static_cast<size_t>(p_.head_dim), lanes_,
               job_.args->grad_query, b_, h_, staged_, spare_);
  }

 private:
  // Packs Q and dO; delta and lse of the lanes from the delta pass.
  void pack_lanes() {
    const TileWalk& w = steps_.walk();
    const float* rows[kMaxLanes];
    LaneRows(w, job_.query, b_, h_, rows);
    if (h_ + 1 < p_.heads) PrefetchRows(rows, job_.query.stride(p_.rank() + 1));
    PackRows(d_, rows, static_cast<size_t>(p_.head_dim), job_.scale2, query_, spare_);
    LaneRows(w, job_.grad_output, b_, h_, rows);
    PackRows(d_, rows, static_cast<size_t>(p_.head_dim_v), 1.0f, grad_output_, spare_);
    int64_t token[kMaxLanes];
    w.lane_offsets(job_.token_stride, token);
    HWY_ALIGN float delta[kMaxLanes], lse[kMaxLanes];
    for (int l = 0; l < w.lanes(); ++l) {
      const size_t row = static_cast<size_t>(job_.query_row(b_, token[l], h_));
      delta[l] = job_.delta[row];
      lse[l] = job_.lse2[row];
    }
    delta_ = hn::Load(d_, delta);
    lse_ = hn::Load(d_, lse);
  }

  // acc = the key pass's dQ / scale of the lanes' rows, packed.
  void start_from_key_pass() {
    int64_t token[kMaxLanes];
    const float* rows[kMaxLanes];
    const TileWalk& w = steps_.walk();
    w.lane_offsets(job_.token_stride, token);
    for (int l = 0; l < w.lanes(); ++l) {
      rows[l] = job_.dq.get() + job_.query_row(b_, token[l], h_) * job_.dq_stride;
    }
    PackRows(d_, rows, static_cast<size_t>(p_.head_dim), 1.0f, acc_, spare_);
  }

  // dQ += dS K over the keys in `rows`, with their mask bias when there is
  // one.
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
  const BackwardJob& job_;
  const Problem& p_;
  QueryGradScratch& s_;
  TileSteps steps_;
  float *query_, *grad_output_, *acc_, *staged_, *spare_, *scores_, *grad_scores_, *lanes_;
  size_t acc_size_ = 0;
  int64_t b_ = 0, h_ = 0, hk_ = 0;
  VF delta_, lse_;
};

}  // namespace

// Rows [begin, end) of [B, T, H], walked in order with their coordinates.
void DeltaItems(BackwardJob& job, int64_t begin, int64_t end) {
  const Problem& p = *job.problem;
  const BackwardArgs& args = *job.args;
  const int r = p.rank();
  const TensorView &lse = args.lse, &grad_lse = args.grad_lse;
  const float* lse_data = static_cast<const float*>(lse.data);
  const float* grad_data = static_cast<const float*>(grad_lse.data);
  const int64_t H = p.heads;
  const int64_t g = job.key_tiling.head_group;
  int64_t b = begin / (H * job.tokens), t = (begin / H) % job.tokens, h = begin % H;
  int64_t x[kMaxSpatialRank] = {0, 0, 0};
  for (int a = 0; a < r; ++a) x[a] = (t / job.token_stride[a]) % p.extent[a];
  for (int64_t row = begin; row < end; ++row) {
    int64_t lse_at = b * lse.stride[0] + h * lse.stride[r + 1];
    int64_t grad_at = grad_lse.defined() ? b * grad_lse.stride[0] + h * grad_lse.stride[r + 1] : 0;
    for (int a = 0; a < r; ++a) {
      lse_at += x[a] * lse.stride[1 + a];
      if (grad_lse.defined()) grad_at += x[a] * grad_lse.stride[1 + a];
    }
    float delta = Dot(job.grad_output.row(b, x, h), job.output.row(b, x, h), p.head_dim_v);
    if (grad_lse.defined()) delta -= grad_data[grad_at];
    job.delta[static_cast<size_t>(row)] = delta;
    if (job.fused) std::fill_n(job.dq.get() + row * job.dq_stride, job.dq_stride, 0.0f);
    job.lse2[static_cast<size_t>(row)] = lse_data[lse_at] * kLog2e;
    if (g > 1) {  // the row's head in every slot of its block that holds it
      const size_t at = static_cast<size_t>(row / H * (H / g) + h / g) * kHeadBlock;
      for (int64_t k = h % g; k < kHeadBlock; k += g) {
        job.grouped_delta[at + static_cast<size_t>(k)] = delta;
        job.grouped_lse2[at + static_cast<size_t>(k)] = job.lse2[static_cast<size_t>(row)];
      }
    }
    if (++h < H) continue;  // next row: next head, else next token (odometer)
    h = 0;
    int a = r - 1;
    for (; a >= 0 && ++x[a] == p.extent[a]; --a) x[a] = 0;
    if (a < 0) ++b;
  }
}

// out[k][e] = scale * in[e * kHeadBlock + k] for e < dim: a block of dQ
// regrouped by heads back into its heads' rows.
void DeinterleaveRows(const float* in, int64_t dim, float scale, float* const* out) {
  const float head_scale[kHeadBlock] = {scale, scale, scale, scale};
  DeinterleaveHeads(in, static_cast<size_t>(dim), head_scale, out);
}

void QueryGradItems(const BackwardJob& job, int64_t begin, int64_t end) {
  thread_local QueryGradScratch scratch;
  QueryGradTile tile(job, scratch);
  ForEachItem(job.query_tiling.count(), job.problem->heads, begin, end,
              [&](int64_t b, int64_t h, int64_t t) { tile.run(b, h, t); });
}

}  // namespace HWY_NAMESPACE
}  // namespace gna::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace gna::cpu {

HWY_EXPORT(DeltaItems);
HWY_EXPORT(DeinterleaveRows);
HWY_EXPORT(QueryGradItems);

void delta_pass(BackwardJob& job, int threads) {
  const Problem& p = *job.problem;
  parallel_for_chunks(p.batch * p.tokens() * p.heads, threads, [&](int64_t begin, int64_t end) {
    HWY_DYNAMIC_DISPATCH(DeltaItems)(job, begin, end);
  });
}

void query_pass(const BackwardJob& job, int threads) {
  const Problem& p = *job.problem;
  if (job.fused && p.extra_kv == 0) {  // the key pass summed all of dQ: write it out
    const TensorView& out = job.args->grad_query;
    const float scale = static_cast<float>(p.scale());
    const int64_t g = job.key_tiling.head_group;  // kHeadBlock or 1
    const bool direct = out.dtype == DType::f32 && out.stride[out.ndim - 1] == 1;
    // Per chunk of (batch, token) rows, one division for the first token's
    // coordinates, then an odometer.
    parallel_for_chunks(p.batch * p.tokens(), threads, [&](int64_t begin, int64_t end) {
      const int r = p.rank();
      int64_t x[kMaxSpatialRank] = {0, 0, 0};
      for (int a = 0; a < r; ++a) x[a] = (begin % p.tokens() / job.token_stride[a]) % p.extent[a];
      int64_t b = begin / p.tokens();
      for (int64_t bt = begin; bt < end; ++bt) {
        int64_t at = b * out.stride[0];
        for (int a = 0; a < r; ++a) at += x[a] * out.stride[1 + a];
        const float* dq = job.dq.get() + bt * p.heads * job.dq_stride;
        for (int64_t h = 0; h < p.heads; ++h) {
          if (g == 1) {
            store_row(out, at + h * out.stride[r + 1], dq + h * job.dq_stride, 1, p.head_dim,
                      scale);
          } else if (h % g == 0 && direct) {  // the group's block, regrouped by heads
            float* rows[kHeadBlock];
            for (int k = 0; k < kHeadBlock; ++k) {
              rows[k] = static_cast<float*>(out.data) + at + (h + k) * out.stride[r + 1];
            }
            HWY_DYNAMIC_DISPATCH(DeinterleaveRows)(dq + h * job.dq_stride, p.head_dim, scale,
                                                   rows);
          } else if (!direct) {
            store_row(out, at + h * out.stride[r + 1], dq + (h - h % g) * job.dq_stride + h % g,
                      kHeadBlock, p.head_dim, scale);
          }
        }
        int a = r - 1;
        for (; a >= 0 && ++x[a] == p.extent[a]; --a) x[a] = 0;
        if (a < 0) ++b;
      }
    });
    return;
  }
  const int64_t items = p.batch * p.heads * job.query_tiling.count();
  parallel_for_chunks(items, threads, [&](int64_t begin, int64_t end) {
    HWY_DYNAMIC_DISPATCH(QueryGradItems)(job, begin, end);
  });
}

}  // namespace gna::cpu
#endif  // HWY_ONCE
