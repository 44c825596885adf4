// The key side of the cpu backend's backward (src/cpu/passes.hpp): one work
// item is one key tile of one batch and kv head (its lanes are keys),
// looking at the queries that see it (window::query_range), for every query
// head that reads the kv head (GQA). Per step of queries: S = Q K^T,
// P = exp2(S - lse), dP = dO V^T, dS = P (dP - delta), then dV += P^T dO
// and dK += dS^T Q, which the item owns; when fused, also dQ += dS K into
// query rows that no other item of the running phase touches. Tiles of
// additional KV tokens look at every query the same way, unmasked, and
// leave their part of dQ to the query pass.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "cpu/backward_key.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <algorithm>
#include <vector>

#include "cpu/kernels-inl.h"
#include "cpu/passes.hpp"
#include "cpu/scratch.hpp"
#include "cpu/steps-inl.h"
#include "cpu/thread_pool.hpp"

HWY_BEFORE_NAMESPACE();
namespace gna::cpu {
namespace HWY_NAMESPACE {
namespace {

struct KeyGradScratch {
  AlignedFloats key, value, grad_key, grad_value, staged, spare, scores, grad_scores, lane_keys,
      lanes;
  StepScratch steps;
  StepRows all_queries;
};

class KeyGradTile {
 public:
  KeyGradTile(const BackwardJob& job, KeyGradScratch& s)
      : job_(job), p_(*job.problem), s_(s), group_(job.key_tiling.head_group),
        steps_(s.steps, job.key_tiling, group_ > 1 ? job.grouped_query : job.query,
               group_ > 1 ? job.grouped_grad_output : job.grad_output, job.token_stride) {
    const size_t L = hn::Lanes(d_);
    const size_t D = hwy::RoundUpTo(static_cast<size_t>(p_.head_dim), L);
    const size_t Dv = hwy::RoundUpTo(static_cast<size_t>(p_.head_dim_v), L);
    key_size_ = D * L;
    value_size_ = Dv * L;
    key_ = s.key.reserve(key_size_);
    value_ = s.value.reserve(value_size_);
    // Head groups: dK a row per token regrouped by heads (AddRowsToGroupLanes).
    group_stride_ = hwy::RoundUpTo(static_cast<size_t>(p_.head_dim) * kHeadBlock, L);
    grad_key_size_ = std::max(key_size_, L / kHeadBlock * group_stride_);
    grad_key_ = s.grad_key.reserve(grad_key_size_);
    grad_value_ = s.grad_value.reserve(value_size_);
    staged_ = s.staged.reserve(static_cast<size_t>(std::max(p_.head_dim, p_.head_dim_v)) * L);
    spare_ = s.spare.reserve(L * L);
    scores_ = s.scores.reserve(static_cast<size_t>(kStepTokens) * L);
    grad_scores_ = s.grad_scores.reserve(static_cast<size_t>(kStepTokens) * L);
    lane_keys_ = s.lane_keys.reserve(static_cast<size_t>(job.dq_stride) * L);
    lanes_ = s.lanes.reserve(L);
  }

  // Key tile `tile` of the grid, kv head hk (head group hk: kv heads from
  // hk * head_group on, every one its own query head).
  void run_grid(int64_t b, int64_t hk, int64_t tile) {
    steps_.start(tile);
    const TileWalk& w = steps_.walk();
    const float* key_rows[kMaxLanes];
    const float* value_rows[kMaxLanes];
    const int64_t first_kv = hk * group_;
    LaneRows(w, job_.key, b, first_kv, key_rows);
    LaneRows(w, job_.value, b, first_kv, value_rows);
    start(key_rows, value_rows);
    adds_to_queries_ = job_.fused;
    if (adds_to_queries_) copy_lane_keys(key_rows, w.valid_lanes());
    if (group_ > 1) {  // grouped rows are addressed by group
      steps_.for_each(b, hk, [&](const StepRows& queries, const float* bias) {
        accumulate<kHeadBlock>(queries, bias, b, first_kv);
      });
    } else {
      for (int64_t h = first_head(hk); h < first_head(hk + 1); ++h) {
        steps_.for_each(b, h, [&](const StepRows& queries, const float* bias) {
          accumulate<1>(queries, bias, b, h);
        });
      }
    }
    const BackwardArgs& args = *job_.args;
    const int64_t hk_out = first_kv;
    FillLanes(d_, static_cast<float>(p_.scale()), lanes_);
    if (group_ > 1) {
      WriteGroupLanes(d_, w, grad_key_, group_stride_, static_cast<size_t>(p_.head_dim), lanes_,
                      args.grad_key, b, hk_out, staged_);
    } else {
      WriteLanes(d_, w, grad_key_, static_cast<size_t>(p_.head_dim), lanes_, args.grad_key, b,
                 hk_out, staged_, spare_);
    }
    FillLanes(d_, 1.0f, lanes_);
    WriteLanes(d_, w, grad_value_, static_cast<size_t>(p_.head_dim_v), lanes_, args.grad_value,
               b, hk_out, staged_, spare_);
  }

  // The additional KV tokens [first, first + L): every query sees them.
  void run_extra(int64_t b, int64_t hk, int64_t first) {
    const size_t L = hn::Lanes(d_);
    const BackwardArgs& args = *job_.args;
    const float* key_rows[kMaxLanes];
    const float* value_rows[kMaxLanes];
    int64_t key_at[kMaxLanes], value_at[kMaxLanes];
    bool valid[kMaxLanes];
    for (size_t l = 0; l < L; ++l) {
      // Lanes past the last token repeat it, like a grid tile's.
      const int64_t n = std::min(first + static_cast<int64_t>(l), p_.extra_kv - 1);
      valid[l] = first + static_cast<int64_t>(l) < p_.extra_kv;
      key_rows[l] = job_.extra_key.row(b, n, hk);
      value_rows[l] = job_.extra_value.row(b, n, hk);
      key_at[l] = b * args.grad_extra_key.stride[0] + n * args.grad_extra_key.stride[1] +
                  hk * args.grad_extra_key.stride[2];
      value_at[l] = b * args.grad_extra_value.stride[0] + n * args.grad_extra_value.stride[1] +
                    hk * args.grad_extra_value.stride[2];
    }
    start(key_rows, value_rows);
    adds_to_queries_ = false;  // the query pass adds the additional KV's part of dQ
    const int64_t tokens = p_.tokens();
    for (int64_t h = first_head(hk); h < first_head(hk + 1); ++h) {
      int64_t x[kMaxSpatialRank] = {0, 0, 0};
      for (int64_t t0 = 0; t0 < tokens; t0 += kStepTokens) {
        StepRows& all = s_.all_queries;
        all.count = static_cast<size_t>(std::min(kStepTokens, tokens - t0));
        for (size_t i = 0; i < all.count; ++i) {
          all.first[i] = job_.query.row(b, x, h);
          all.second[i] = job_.grad_output.row(b, x, h);
          all.token[i] = t0 + static_cast<int64_t>(i);
          for (int a = p_.rank() - 1; a >= 0 && ++x[a] == p_.extent[a]; --a) x[a] = 0;
        }
        accumulate<1>(all, nullptr, b, h);
      }
    }
    FillLanes(d_, static_cast<float>(p_.scale()), lanes_);
    WriteRows(d_, grad_key_, static_cast<size_t>(p_.head_dim), lanes_, args.grad_extra_key,
              key_at, valid, staged_, spare_);
    FillLanes(d_, 1.0f, lanes_);
    WriteRows(d_, grad_value_, static_cast<size_t>(p_.head_dim_v), lanes_,
              args.grad_extra_value, value_at, valid, staged_, spare_);
  }

 private:
  int64_t first_head(int64_t hk) const { return hk * (p_.heads / p_.kv_heads); }

  // Vectors of one query's dQ regrouped by heads: L / kHeadBlock elements
  // of every head each.
  size_t group_blocks() const {
    const size_t per_block = hn::Lanes(d_) / kHeadBlock;
    return (static_cast<size_t>(p_.head_dim) + per_block - 1) / per_block;
  }

  // The lanes' key rows, unscaled and zero-padded to whole vectors; zero
  // for lanes past the tile's end, which repeat a key that must count once.
  // Head groups: in the layout of AddGroupLanesToRows (dQ rows regrouped
  // by heads, BackwardJob::dq).
  void copy_lane_keys(const float* const* key_rows, const bool* valid) {
    const size_t L = hn::Lanes(d_), stride = static_cast<size_t>(job_.dq_stride);
    if (group_ > 1) {  // per token, its heads' rows interleaved, zero-padded
      const size_t blocks = group_blocks(), D = static_cast<size_t>(p_.head_dim);
      for (size_t t = 0; t < L / kHeadBlock; ++t) {
        float* to = lane_keys_ + t * blocks * L;
        size_t done = 0;
        if (valid[t * kHeadBlock]) {  // the heads of a token share its validity
          interleave_rows(key_rows + t * kHeadBlock, p_.head_dim, to);
          done = D * kHeadBlock;
        }
        std::fill(to + done, to + blocks * L, 0.0f);
      }
      return;
    }
    for (size_t l = 0; l < L; ++l) {
      float* row = lane_keys_ + l * stride;
      std::fill(row, row + stride, 0.0f);
      if (valid[l]) std::copy(key_rows[l], key_rows[l] + p_.head_dim, row);
    }
  }

  void start(const float* const* key_rows, const float* const* value_rows) {
    PackRows(d_, key_rows, static_cast<size_t>(p_.head_dim), job_.scale2, key_, spare_);
    PackRows(d_, value_rows, static_cast<size_t>(p_.head_dim_v), 1.0f, value_, spare_);
    std::fill(grad_key_, grad_key_ + grad_key_size_, 0.0f);
    std::fill(grad_value_, grad_value_ + value_size_, 0.0f);
  }

  // A value per query row (delta, lse2) for every lane: of head h's row
  // (G = 1), or of each lane's head from the group's block (G > 1).
  template <int G>
  VF per_query(const std::vector<float>& rows, const std::vector<float>& grouped,
              int64_t row) const {
    if constexpr (G == 1) return hn::Set(d_, rows[static_cast<size_t>(row)]);
    return hn::LoadDup128(d_, grouped.data() + job_.grouped_row(row));
  }

  // dV += P^T dO and dK += dS^T Q over the queries in `rows`, of batch b
  // and head h (G > 1: the heads from h on, lane l's head h + l % G), with
  // their mask bias when there is one.
  template <int G>
  void accumulate(const StepRows& rows, const float* bias, int64_t b, int64_t h) {
    const size_t L = hn::Lanes(d_), n = rows.count;
    const size_t D = static_cast<size_t>(p_.head_dim), Dv = static_cast<size_t>(p_.head_dim_v);
    int64_t row[kStepTokens];  // the queries' rows of [B, T, H] (of head h)
    for (size_t i = 0; i < n; ++i) row[i] = job_.query_row(b, rows.token[i], h);
    Scores<G>(d_, rows.first, n, key_, D, bias, scores_);
    for (size_t i = 0; i < n; ++i) {
      const VF lse = per_query<G>(job_.lse2, job_.grouped_lse2, row[i]);
      hn::Store(Exp2(d_, hn::Sub(hn::Load(d_, scores_ + i * L), lse)), d_, scores_ + i * L);
    }
    // dP = dO V^T and dV += P^T dO read the same dO elements: one pass.
    DotAndAddAllRows<G>(d_, rows.second, n, value_, scores_, Dv, grad_scores_, grad_value_);
    for (size_t i = 0; i < n; ++i) {
      const VF delta = per_query<G>(job_.delta, job_.grouped_delta, row[i]);
      const VF grad = hn::Sub(hn::Load(d_, grad_scores_ + i * L), delta);
      hn::Store(hn::Mul(hn::Load(d_, scores_ + i * L), grad), d_, grad_scores_ + i * L);
    }
    if constexpr (G == 1) {
      AddAllRows<G>(d_, rows.first, n, grad_scores_, D, grad_key_);
    } else {
      AddAllRowsToGroupLanes(d_, rows.first, n, grad_scores_, D, group_stride_, grad_key_);
    }
    if (adds_to_queries_) {  // dQ / scale += dS K, rows owned by this block
      float* out[kStepTokens];
      if constexpr (G > 1) {  // the group's rows, regrouped by heads
        for (size_t i = 0; i < n; ++i) out[i] = job_.dq.get() + row[i] * job_.dq_stride;
        AddGroupLanesToAllRows(d_, grad_scores_, n, lane_keys_, group_blocks(), out);
        return;
      }
      for (int slot = 0; slot < G; ++slot) {  // the lanes of each head in turn
        for (size_t i = 0; i < n; ++i) out[i] = job_.dq.get() + (row[i] + slot) * job_.dq_stride;
        AddLanesToAllRows(d_, grad_scores_, n, lane_keys_, static_cast<size_t>(job_.dq_stride),
                          out, static_cast<size_t>(slot), G);
      }
    }
  }

  const DF d_;
  const BackwardJob& job_;
  const Problem& p_;
  KeyGradScratch& s_;
  const int group_;  // heads per key tile
  TileSteps steps_;
  float *key_, *value_, *grad_key_, *grad_value_, *staged_, *spare_, *scores_, *grad_scores_,
      *lane_keys_, *lanes_;
  size_t key_size_ = 0, value_size_ = 0, grad_key_size_ = 0, group_stride_ = 0;
  bool adds_to_queries_ = false;
};

}  // namespace

// Items [0, grid) are those of the grid, in batch order; the rest tiles of
// additional KV tokens, in (batch, tile, kv head) order.
void KeyGradItems(const BackwardJob& job, const std::vector<std::vector<int64_t>>* blocks,
                  int64_t begin, int64_t end) {
  thread_local KeyGradScratch scratch;
  KeyGradTile tile(job, scratch);
  const Problem& p = *job.problem;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(DF()));
  const int64_t kv = p.kv_heads / job.key_tiling.head_group;  // items per key tile
  const int64_t extra_tiles = (p.extra_kv + lanes - 1) / lanes;
  const int64_t grid = p.batch * key_items_per_batch(job, blocks);
  if (blocks == nullptr) {
    ForEachItem(job.key_tiling.count(), kv, begin, std::min(end, grid),
                [&](int64_t b, int64_t hk, int64_t t) { tile.run_grid(b, hk, t); });
  } else {
    // Per block and kv head, or per block with every kv head tile by tile.
    const bool per_head = job.block_per_head;
    ForEachItem(static_cast<int64_t>(blocks->size()), per_head ? kv : 1, begin,
                std::min(end, grid), [&](int64_t b, int64_t h, int64_t i) {
                  for (int64_t t : (*blocks)[static_cast<size_t>(i)]) {
                    for (int64_t hk = per_head ? h : 0; hk < (per_head ? h + 1 : kv); ++hk) {
                      tile.run_grid(b, hk, t);
                    }
                  }
                });
  }
  ForEachItem(extra_tiles, kv, std::max(begin, grid) - grid, end - grid,
              [&](int64_t b, int64_t hk, int64_t i) { tile.run_extra(b, hk, i * lanes); });
}

}  // namespace HWY_NAMESPACE
}  // namespace gna::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace gna::cpu {

HWY_EXPORT(KeyGradItems);

void key_pass(const BackwardJob& job, int threads,
              const std::vector<std::vector<int64_t>>* blocks, bool extra) {
  const Problem& p = *job.problem;
  const int64_t lanes = simd_lanes();
  const int64_t extra_tiles = extra ? (p.extra_kv + lanes - 1) / lanes : 0;
  const int64_t items = p.batch * (key_items_per_batch(job, blocks) + p.kv_heads * extra_tiles);
  parallel_for_chunks(items, threads, [&](int64_t begin, int64_t end) {
    HWY_DYNAMIC_DISPATCH(KeyGradItems)(job, blocks, begin, end);
  });
}

}  // namespace gna::cpu
#endif  // HWY_ONCE
