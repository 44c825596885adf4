// Fused neighborhood-attention backward for Hopper (sm_90a).
//
// One CTA owns one KV tile (128 keys: a box of one dilation group, or 128
// additional keys) of one (batch, kv head) and walks the query tiles that
// see it (backward_walk.cuh), for every query head of the kv head's group.
// dK and dV stay in registers for the whole walk; dQ is added into an fp32
// scratch per step, staged for a writer warp, or at D <= 64 outside
// deterministic mode by vector reductions straight from the consumers'
// registers (BackwardConfig::kLeanConsumers). With S^T, P^T, dP^T, dS^T
// (keys x queries) the key rows
// are wgmma rows, so P^T and dS^T feed dV and dK from registers:
//
//   S^T  = K Q^T              (SS)      P^T  = exp2(S^T * scale log2e - lse2)
//   dP^T = V dO^T             (SS)      dS^T = P^T * (dP^T - delta)
//   dV  += P^T dO             (RS)      dK  += dS^T Q                 (RS)
//   dQ   = dS K               (SS, dS^T staged in shared memory, both WGs)
//
//   warpgroup 0  producer: warp 0 loads K and V once, then Q, dO, lse2 and
//                delta of each step into a ring of stages (TMA, bulk copies),
//                for lean consumers with the step's query tile (StagedStep);
//                warp 1 adds each step's staged dQ pieces into global memory
//                (bulk reduce-add), in deterministic mode in a fixed order
//   warpgroups 1, 2  consumers: 64 keys each
//
// Legend: K rows are keys; "col" of an S^T / dP^T fragment is a query of the
// step's tile. Accumulator fragments follow gmma.cuh: element 4j + {0,1} is
// row warp*16 + lane/4, columns 8j + 2*(lane%4) + {0,1}; 4j + {2,3} the same
// columns 8 rows down.
//
// Barriers, named for what they guard:
//   kv_full         K and V of the CTA landed
//   q_full[s]       Q and lse2 (and the StagedStep) of stage s landed
//   do_full[s]      dO and delta of stage s landed
//   stage_free[s]   all 256 consumer threads are done with stage s
//   named kDsReady  both consumer warpgroups wrote this step's dS^T
//   named kDqFull+w consumer warpgroup w staged its dQ piece
//   named kDqFree+w the writer has read piece w out of shared memory
#pragma once

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/sm90/backward_launch.hpp"
#include "cuda/sm90/backward_params.hpp"
#include "cuda/sm90/backward_walk.cuh"
#include "cuda/sm90/config.hpp"
#include "cuda/sm90/gmma.cuh"
#include "cuda/sm90/ptx.cuh"
#include "cuda/sm90/tile_load.cuh"

namespace gna::sm90 {

constexpr int kDsReady = 1;
constexpr int kDqFull = 2;   // + consumer warpgroup
constexpr int kDqFree = 4;   // + consumer warpgroup
constexpr int kWriterAndGroup = 128 + 32;

// What lean consumers need of a step, resolved once by the producer and
// handed over with the stage's Q (written before q_full's arrival, which
// releases it): the walk's state then stays out of the consumers' registers.
struct StagedStep {
  int32_t first[3];   // in-group position of the query tile's first query
  int32_t row_block;  // the dQ scratch rows it adds into
  int32_t full;       // no element mask needed
  int32_t unused[3];
};

template <class Config>
struct BackwardSmem {
  uint8_t* base;
  __device__ uint8_t* k() const { return base + Config::kKOffset; }
  __device__ uint8_t* v() const { return base + Config::kVOffset; }
  __device__ uint8_t* q(int s) const { return base + Config::kQOffset + s * Config::kQBytes; }
  __device__ uint8_t* dout(int s) const { return base + Config::kDoOffset + s * Config::kQBytes; }
  __device__ uint8_t* ds(int b) const { return base + Config::kDsOffset + b * Config::kDsBytes; }
  __device__ float* dq(int w) const {
    return reinterpret_cast<float*>(base + Config::kDqOffset + w * Config::kDqBytes);
  }
  __device__ float* lse2(int s) const {
    return reinterpret_cast<float*>(base + Config::kLseOffset + s * Config::kRowStatBytes);
  }
  __device__ float* delta(int s) const {
    return reinterpret_cast<float*>(base + Config::kDeltaOffset + s * Config::kRowStatBytes);
  }
  __device__ StagedStep* step(int s) const {
    return reinterpret_cast<StagedStep*>(base + Config::kStepOffset + s * Config::kStepBytes);
  }
  __device__ int32_t* key_rows() const {
    return reinterpret_cast<int32_t*>(base + Config::kKeyRowsOffset);
  }
  __device__ uint64_t* bar(int i) const {
    return reinterpret_cast<uint64_t*>(base + Config::kBarrierOffset) + i;
  }
  __device__ uint64_t* kv_full() const { return bar(0); }
  __device__ uint64_t* q_full(int s) const { return bar(1 + s); }
  __device__ uint64_t* do_full(int s) const { return bar(1 + Config::kStages + s); }
  __device__ uint64_t* stage_free(int s) const { return bar(1 + 2 * Config::kStages + s); }
};

// Map coordinates of (head, batch): batch 0 when the maps cover one batch.
__device__ __forceinline__ int32_t map_batch(const BackwardParams& p, int32_t batch) {
  return p.maps_per_batch ? 0 : batch;
}

// ---- producer -------------------------------------------------------------------

template <class Config>
__device__ void load_tiles(const BackwardParams& p, const BackwardMaps& maps,
                           const BackwardSmem<Config>& smem, const KvCta& c, int32_t kv_head,
                           int32_t batch) {
  const int32_t mb = map_batch(p, batch);
  mbar_arrive_expect_tx(smem.kv_full(), 2 * Config::kKvBytes);
  if (c.extra) {
    // Additional KV is a [B, Nx, Hkv, D] tensor: a rank-1 grid on axis 0.
    const int32_t first = c.extra_tile * Config::kBlockN;
    load_box<Config>(&maps.extra_k, p.extra_k_coords, smem.kv_full(), smem.k(), Config::kBlockN,
                     Config::kBlockN, 1, 0, first, 0, 0, kv_head, mb);
    load_box<Config>(&maps.extra_v, p.extra_v_coords, smem.kv_full(), smem.v(), Config::kBlockN,
                     Config::kBlockN, 1, 0, first, 0, 0, kv_head, mb);
  } else {
    int32_t x[3];
#pragma unroll
    for (int a = 0; a < 3; ++a) x[a] = absolute(p.axis[a], c.group[a], c.k0[a]);
    const int32_t extent0 = 1 << p.axis[0].kv_log2, d0 = p.axis[0].dilation;
    load_box<Config>(&maps.k, p.k_coords, smem.kv_full(), smem.k(), Config::kBlockN, extent0, d0,
                     p.kv_split_log2, x[0], x[1], x[2], kv_head, mb);
    load_box<Config>(&maps.v, p.v_coords, smem.kv_full(), smem.v(), Config::kBlockN, extent0, d0,
                     p.kv_split_log2, x[0], x[1], x[2], kv_head, mb);
  }

  const int32_t extent0 = 1 << p.axis[0].q_log2, d0 = p.axis[0].dilation;
  for (int32_t i = 0; i < c.steps; ++i) {
    const int s = i % Config::kStages;
    if (i >= Config::kStages) mbar_wait(smem.stage_free(s), ((i / Config::kStages) - 1) & 1);
    const Step st = step_of(p, c, kv_head, batch, i);
    int32_t x[3];
#pragma unroll
    for (int a = 0; a < 3; ++a) x[a] = absolute(p.axis[a], st.group[a], st.first[a]);
    const int64_t stats = static_cast<int64_t>(st.row_block) * Config::kBlockM;
    if constexpr (Config::kLeanConsumers) {
      StagedStep* staged = smem.step(s);
#pragma unroll
      for (int a = 0; a < 3; ++a) staged->first[a] = st.first[a];
      staged->row_block = st.row_block;
      staged->full = st.full;
    }
    mbar_arrive_expect_tx(smem.q_full(s), Config::kQBytes + Config::kRowStatBytes);
    load_box<Config>(&maps.q, p.q_coords, smem.q_full(s), smem.q(s), Config::kBlockM, extent0, d0,
                     p.q_split_log2, x[0], x[1], x[2], st.head, mb);
    bulk_load(smem.lse2(s), p.lse2 + stats, Config::kRowStatBytes, smem.q_full(s));
    mbar_arrive_expect_tx(smem.do_full(s), Config::kQBytes + Config::kRowStatBytes);
    load_box<Config>(&maps.dout, p.do_coords, smem.do_full(s), smem.dout(s), Config::kBlockM,
                     extent0, d0, p.q_split_log2, x[0], x[1], x[2], st.head, mb);
    bulk_load(smem.delta(s), p.delta + stats, Config::kRowStatBytes, smem.do_full(s));
  }
}

// Adds the two staged dQ pieces of every step into the fp32 scratch. In
// deterministic mode each piece waits for its turn (contribution_rank) and
// hands the turn on once its addition is complete.
template <class Config>
__device__ void write_dq(const BackwardParams& p, const BackwardSmem<Config>& smem, const KvCta& c,
                         int32_t kv_head, int32_t batch) {
  const int lane = threadIdx.x % 32;
  // Both staging buffers start out free.
  if (c.steps > 0) {
    named_barrier_arrive(kDqFree + 0, kWriterAndGroup);
    named_barrier_arrive(kDqFree + 1, kWriterAndGroup);
  }
  for (int32_t i = 0; i < c.steps; ++i) {
    const Step st = step_of(p, c, kv_head, batch, i);
    const int32_t rank = p.deterministic ? contribution_rank(p, c, st) : 0;
    float* tile = p.dq + static_cast<int64_t>(st.row_block) * (2 * Config::kDqPieceFloats);
#pragma unroll
    for (int w = 0; w < 2; ++w) {
      named_barrier_sync(kDqFull + w, kWriterAndGroup);
      if (lane == 0) {
        int32_t* turn = p.order + 2 * static_cast<int64_t>(st.row_block) + w;
        if (p.deterministic) {
          while (load_acquire(turn) != rank) __nanosleep(32);
          fence_async_global();
        }
        bulk_reduce_add(tile + w * Config::kDqPieceFloats, smem.dq(w), Config::kDqBytes);
        bulk_commit();
        if (p.deterministic) {
          bulk_wait<0>();
          fence_async_global();
          add_release(turn, 1);
        } else {
          bulk_wait_read<0>();
        }
      }
      __syncwarp();
      if (i + 1 < c.steps) named_barrier_arrive(kDqFree + w, kWriterAndGroup);
    }
  }
  if (lane == 0) bulk_wait<0>();  // shared memory stays valid until every reduction read it
}

// ---- consumers --------------------------------------------------------------------

// In-group positions per axis of key row `row` of a neighborhood CTA's tile
// (row bits: axis 2 lowest, as TMA lays out the box). Recomputed where needed
// rather than kept: registers are short in the step loop.
__device__ __forceinline__ void key_positions(const BackwardParams& p, const KvCta& c, int row,
                                              int32_t (&pos)[3]) {
  int shift = 0;
#pragma unroll
  for (int a = 2; a >= 0; --a) {
    pos[a] = c.k0[a] + ((row >> shift) & ((1 << p.axis[a].kv_log2) - 1));
    shift += p.axis[a].kv_log2;
  }
}

// One thread's two key rows: per axis, the in-group queries that see each
// (window::query_range); an empty range on axis 0 for keys that do not exist.
struct KeyRows {
  int32_t qlo[2][3], qhi[2][3];
};

__device__ __forceinline__ KeyRows key_rows(const BackwardParams& p, const KvCta& c,
                                            const int (&rows)[2]) {
  KeyRows k;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    bool exists = true;
    if (c.extra) {
      exists = c.extra_tile * kBackwardKvTileTokens + rows[i] < p.extra_kv;
#pragma unroll
      for (int a = 0; a < 3; ++a) {
        k.qlo[i][a] = 0;
        k.qhi[i][a] = INT32_MAX;  // every query sees every additional key
      }
    } else {
      int32_t pos[3];
      key_positions(p, c, rows[i], pos);
#pragma unroll
      for (int a = 0; a < 3; ++a) {
        exists = exists && pos[a] < c.length[a];
        const window::Range q = window::query_range(window_axis(p.axis[a]), pos[a], c.length[a]);
        k.qlo[i][a] = static_cast<int32_t>(q.lo);
        k.qhi[i][a] = static_cast<int32_t>(q.hi);
      }
    }
    if (!exists) {
      k.qlo[i][0] = 1;
      k.qhi[i][0] = 0;
    }
  }
  return k;
}

// Lean consumers: each thread's KeyRows wait in shared memory, word-major (word w
// of thread t at w * 256 + t: a warp's loads hit 32 banks). Only masked
// steps and the epilogue read them, and the 12 registers they would hold
// through the step loop are the ones its busiest point lacks.
__device__ __forceinline__ void save_key_rows(int32_t* table, int t, const KeyRows& k) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      table[(6 * i + a) * 256 + t] = k.qlo[i][a];
      table[(6 * i + 3 + a) * 256 + t] = k.qhi[i][a];
    }
  }
}

__device__ __forceinline__ KeyRows load_key_rows(const int32_t* table, int t) {
  KeyRows k;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      k.qlo[i][a] = table[(6 * i + a) * 256 + t];
      k.qhi[i][a] = table[(6 * i + 3 + a) * 256 + t];
    }
  }
  return k;
}

// Sets S^T entries of (key, query) pairs that are not visible to -inf. Query
// col c of the tile is position first + (c >> shifts) per axis.
template <int kM, class StepT>
__device__ __forceinline__ void mask_scores(const BackwardParams& p, const StepT& st,
                                            const KeyRows& k, int lane, float (&s)[kM / 2]) {
#pragma unroll
  for (int j = 0; j < kM / 8; ++j) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int col = 8 * j + 2 * (lane % 4) + e;
      bool seen[2] = {true, true};
      int shift = 0;
#pragma unroll
      for (int a = 2; a >= 0; --a) {
        const int32_t q = st.first[a] + ((col >> shift) & ((1 << p.axis[a].q_log2) - 1));
        shift += p.axis[a].q_log2;
#pragma unroll
        for (int i = 0; i < 2; ++i) seen[i] = seen[i] && k.qlo[i][a] <= q && q <= k.qhi[i][a];
      }
      if (!seen[0]) s[4 * j + e] = -INFINITY;
      if (!seen[1]) s[4 * j + 2 + e] = -INFINITY;
    }
  }
}

// X^T = A_w B^T over the head dim: A is this warpgroup's 64 rows of K (or V),
// B the stage's Q (or dO), both K-major; N = M queries. Asynchronous.
template <class Config>
__device__ __forceinline__ void issue_transposed_scores(uint32_t a_base, uint32_t b_base,
                                                        float (&acc)[Config::kBlockM / 2]) {
  const uint64_t a = make_desc(a_base, 16, 8 * Config::kRowBytes, Config::kSwizzle);
  const uint64_t b = make_desc(b_base, 16, 8 * Config::kRowBytes, Config::kSwizzle);
#pragma unroll
  for (int kk = 0; kk < Config::kHeadDim / 16; ++kk) {
    const int chunk = kk * 16 / Config::kChunk, col_bytes = (kk * 16 % Config::kChunk) * 2;
    gmma_ss<typename Config::Element, Config::kBlockM>(
        desc_offset(a, chunk * Config::kBlockN * Config::kRowBytes + col_bytes),
        desc_offset(b, chunk * Config::kBlockM * Config::kRowBytes + col_bytes), acc, kk > 0);
  }
  gmma_commit();
}

// acc (64 keys x D) += A (64 keys x M queries, registers) B (M x D, the
// stage's dO or Q, MN-major), 16 queries per instruction. Asynchronous.
template <class Config>
__device__ __forceinline__ void issue_key_gradient(const uint32_t (&a)[Config::kBlockM / 16][4],
                                                   uint32_t b_base,
                                                   float (&acc)[Config::kHeadDim / 2]) {
  const uint64_t desc = make_desc(b_base, Config::kBlockM * Config::kRowBytes,
                                  8 * Config::kRowBytes, Config::kSwizzle);
#pragma unroll
  for (int b = 0; b < Config::kBlockM / 16; ++b) {
    gmma_rs<typename Config::Element, Config::kHeadDim>(
        a[b], desc_offset(desc, b * 16 * Config::kRowBytes), acc);
  }
}

// This warpgroup's dQ piece (64 queries x kDqCols) = dS (queries x 128 keys,
// shared memory, queries contiguous) K (128 keys x kDqCols, head dim
// contiguous): both MN-major, 16 keys per instruction. Asynchronous.
template <class Config>
__device__ __forceinline__ void issue_query_gradient(uint32_t ds_base, uint32_t k_base,
                                                     float (&acc)[Config::kDqCols / 2]) {
  constexpr int kDsRow = 128;  // bytes per key row of one 64-query block
  const uint64_t a = make_desc(ds_base, Config::kBlockN * kDsRow, 8 * kDsRow, Swizzle::b128);
  const uint64_t b = make_desc(k_base, Config::kBlockN * Config::kRowBytes, 8 * Config::kRowBytes,
                               Config::kSwizzle);
#pragma unroll
  for (int kk = 0; kk < Config::kBlockN / 16; ++kk) {
    gmma_ss_mn<typename Config::Element, Config::kDqCols>(
        desc_offset(a, kk * 16 * kDsRow), desc_offset(b, kk * 16 * Config::kRowBytes), acc, kk > 0);
  }
  gmma_commit();
}

// Writes this warpgroup's dS^T rows into the shared [M / 64][128 keys][64
// queries] tile in the 128-byte swizzle wgmma reads: word a[b][r] holds key
// row (r odd: +8) and queries 8 * (2b + r/2) + 2 * (lane % 4) + {0, 1}.
template <int kM>
__device__ __forceinline__ void stage_ds(uint8_t* ds, int row0, int lane,
                                         const uint32_t (&a)[kM / 16][4]) {
#pragma unroll
  for (int b = 0; b < kM / 16; ++b) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int row = row0 + 8 * (r % 2);
      const int col = 8 * (2 * b + r / 2) + 2 * (lane % 4);
      const int block = col / 64, byte = (col % 64) * 2;
      const int swizzled = (((byte >> 4) ^ (row % 8)) << 4) | (byte & 15);
      *reinterpret_cast<uint32_t*>(ds + block * (128 * 128) + row * 128 + swizzled) = a[b][r];
    }
  }
}

// X^T of step i (S^T = K Q^T or dP^T = V dO^T) once its Q (or dO) landed
// in stage i % kStages. Asynchronous: one commit group.
template <class Config>
__device__ __forceinline__ void issue_scores(uint64_t* landed, uint32_t rows, uint8_t* stage,
                                             int32_t i, float (&acc)[Config::kBlockM / 2]) {
  mbar_wait(landed, (i / Config::kStages) & 1);
  fence_registers(acc);
  gmma_fence();
  issue_transposed_scores<Config>(rows, smem_addr(stage), acc);
}

// Hands this warpgroup's finished dQ piece of query tile `row_block` on,
// float4 per thread and register group (piece float 4 * (g * 128 + thread) +
// e is dq[4g + e]): to the writer warp through shared memory, or (lean
// consumers outside deterministic mode) straight into the fp32 scratch as
// vector reductions, which spares the staging barriers and the round trip.
template <class Config>
__device__ __forceinline__ void hand_on_dq(const BackwardParams& p, const BackwardSmem<Config>& smem,
                                           int consumer, int thread, int32_t row_block,
                                           const float (&dq)[Config::kDqCols / 2]) {
  if (Config::kLeanConsumers && !p.dq_by_writer) {
    float4* piece = reinterpret_cast<float4*>(
        p.dq + (static_cast<int64_t>(row_block) * 2 + consumer) * Config::kDqPieceFloats);
#pragma unroll
    for (int g = 0; g < Config::kDqCols / 8; ++g) {
      atomicAdd(piece + g * 128 + thread,
                make_float4(dq[4 * g], dq[4 * g + 1], dq[4 * g + 2], dq[4 * g + 3]));
    }
    return;
  }
  named_barrier_sync(kDqFree + consumer, kWriterAndGroup);
  float4* staged = reinterpret_cast<float4*>(smem.dq(consumer));
#pragma unroll
  for (int g = 0; g < Config::kDqCols / 8; ++g) {
    staged[g * 128 + thread] = make_float4(dq[4 * g], dq[4 * g + 1], dq[4 * g + 2], dq[4 * g + 3]);
  }
  fence_async_shared();
  named_barrier_arrive(kDqFull + consumer, kWriterAndGroup);
}

// With 64-query steps (D = 128) the products of a step queue on the tensor
// cores so that the work between them overlaps: step i issues dQ (i - 1)
// (its dS^T is still staged) and S^T (i) together, hands dQ (i - 1) to the
// writer while S^T runs, and issues dP^T (i) then. Every product a step
// issues retires within the step: ptxas keeps wgmma asynchronous only when
// no accumulator is in flight across the loop's back edge. With 128-query
// steps (D <= 64) the wider S^T and dP^T leave no registers for a dQ in
// flight beside them, and a step issues and retires its own dQ at its end.
template <class Config>
__device__ void consume(const BackwardParams& p, const BackwardSmem<Config>& smem, const KvCta& c,
                        int consumer, int32_t kv_head, int32_t batch) {
  using Element = typename Config::Element;
  constexpr int kM = Config::kBlockM, kD = Config::kHeadDim, kStages = Config::kStages;
  const int thread = threadIdx.x % 128, warp = thread / 32, lane = thread % 32;
  const int row0 = consumer * 64 + warp * 16 + lane / 4;  // key row in the CTA's tile
  const int rows[2] = {row0, row0 + 8};
  const int key_thread = consumer * 128 + thread;
  const KeyRows own_keys = key_rows(p, c, rows);
  if constexpr (Config::kLeanConsumers) save_key_rows(smem.key_rows(), key_thread, own_keys);
  auto keys = [&]() -> KeyRows {
    if constexpr (Config::kLeanConsumers) return load_key_rows(smem.key_rows(), key_thread);
    else return own_keys;
  };

  float dk[kD / 2], dv[kD / 2];
#pragma unroll
  for (int i = 0; i < kD / 2; ++i) dk[i] = dv[i] = 0.0f;
  float st[kM / 2], dp[kM / 2];  // S^T then P^T; dP^T
  uint32_t pa[kM / 16][4], dsa[kM / 16][4];
  // With dQ carried into the next step, its accumulator lives in the front
  // of dP^T's registers: that step is done with dQ before it issues dP^T,
  // and the register allocator does not find that on its own.
  constexpr bool kCarryDq = kM == 64;
  static_assert(Config::kDqCols <= kM, "dQ piece larger than the dP^T registers");
  using DqRegisters = float[Config::kDqCols / 2];
  float dq_own[kCarryDq ? 1 : Config::kDqCols / 2];
  DqRegisters& dq = *reinterpret_cast<DqRegisters*>(kCarryDq ? &dp[0] : &dq_own[0]);

  const uint32_t k_rows = smem_addr(smem.k()) + consumer * 64 * Config::kRowBytes;
  const uint32_t v_rows = smem_addr(smem.v()) + consumer * 64 * Config::kRowBytes;
  // This warpgroup's dQ piece: a head-dim chunk of K (D = 128) or a 64-query
  // block of dS (M = 128).
  const uint32_t k_piece = smem_addr(smem.k()) +
                           (kD == 128 ? consumer * Config::kBlockN * Config::kRowBytes : 0);
  const int ds_block = kM == 128 ? consumer : 0;
  auto issue_dq = [&](int32_t i) {  // dQ piece of step i from its staged dS^T
    fence_registers(dq);
    gmma_fence();
    issue_query_gradient<Config>(smem_addr(smem.ds(i % 2)) + ds_block * (128 * 128), k_piece, dq);
  };

  mbar_wait(smem.kv_full(), 0);
  Step walk = step_of(p, c, kv_head, batch, 0);  // unless lean: the step staged with Q
  int32_t dq_block = 0;  // query tile of the dQ piece in hand
  for (int32_t i = 0; i < c.steps; ++i) {
    const int s = i % kStages;

    if constexpr (kCarryDq) {
      // Pending after the issues: [dQ (i - 1)] [S^T (i)].
      if (i > 0) issue_dq(i - 1);
      issue_scores<Config>(smem.q_full(s), k_rows, smem.q(s), i, st);
      gmma_wait<1>();
      fence_registers(dq);
      if (i > 0) hand_on_dq<Config>(p, smem, consumer, thread, dq_block, dq);
    } else {
      issue_scores<Config>(smem.q_full(s), k_rows, smem.q(s), i, st);
    }
    issue_scores<Config>(smem.do_full(s), v_rows, smem.dout(s), i, dp);

    // P^T = exp2(S^T scale log2e - lse2), while dP^T runs.
    gmma_wait<1>();
    fence_registers(st);
    if constexpr (Config::kLeanConsumers) {
      const StagedStep& step = *smem.step(s);  // visible since q_full (s)
      if (!step.full) mask_scores<kM>(p, step, keys(), lane, st);
      dq_block = step.row_block;
    } else {
      if (!walk.full) mask_scores<kM>(p, walk, keys(), lane, st);
    }
    const float* lse2 = smem.lse2(s);
    const float* delta = smem.delta(s);
#pragma unroll
    for (int j = 0; j < kM / 8; ++j) {
      const float2 l = *reinterpret_cast<const float2*>(lse2 + 8 * j + 2 * (lane % 4));
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        st[4 * j + 2 * r] = exp2_approx(fmaf(st[4 * j + 2 * r], p.scale_log2, -l.x));
        st[4 * j + 2 * r + 1] = exp2_approx(fmaf(st[4 * j + 2 * r + 1], p.scale_log2, -l.y));
      }
    }
    gmma_wait<0>();
    fence_registers(dp);
    // dS^T = P^T (dP^T - delta), both packed into A fragments as they are
    // made: word [b][r] holds accumulator pair 8b + 2r (as pack2 orders it).
#pragma unroll
    for (int j = 0; j < kM / 8; ++j) {
      const float2 d = *reinterpret_cast<const float2*>(delta + 8 * j + 2 * (lane % 4));
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float p0 = st[4 * j + 2 * r], p1 = st[4 * j + 2 * r + 1];
        pa[j / 2][2 * (j % 2) + r] = pack2<Element>(p0, p1);
        dsa[j / 2][2 * (j % 2) + r] =
            pack2<Element>(p0 * (dp[4 * j + 2 * r] - d.x), p1 * (dp[4 * j + 2 * r + 1] - d.y));
      }
    }

    // dV and dK need only this warpgroup's rows: issue them at once, then
    // stage dS^T for the next step's dQ product, which needs both
    // warpgroups' rows.
    fence_registers(dv);
    fence_registers(dk);
    gmma_fence();
    issue_key_gradient<Config>(pa, smem_addr(smem.dout(s)), dv);
    issue_key_gradient<Config>(dsa, smem_addr(smem.q(s)), dk);
    gmma_commit();
    stage_ds<kM>(smem.ds(i % 2), row0, lane, dsa);
    fence_async_shared();
    if constexpr (!Config::kLeanConsumers) {
      if (i + 1 < c.steps) walk = next_step(p, c, kv_head, batch, i, walk);
    }
    named_barrier_sync(kDsReady, 256);
    if constexpr (!kCarryDq) issue_dq(i);
    gmma_wait<0>();
    fence_registers(dv);
    fence_registers(dk);
    fence_registers(dq);
    // Every consumer thread arrives: each one's reads of lse2 and delta are
    // then ordered before the producer's next load into the stage, in the
    // hardware and in racecheck's model alike.
    mbar_arrive(smem.stage_free(s));
    if constexpr (!kCarryDq) hand_on_dq<Config>(p, smem, consumer, thread, dq_block, dq);
  }
  if (kCarryDq && c.steps > 0) {
    issue_dq(c.steps - 1);
    gmma_wait<0>();
    fence_registers(dq);
    hand_on_dq<Config>(p, smem, consumer, thread, dq_block, dq);
  }

  // Epilogue: dK (scaled) and dV of the keys that exist, or the additional
  // keys' partial sums of this split.
  const KeyRows final_keys = keys();
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int row = rows[i];
    if (c.extra) {
      const int32_t key = c.extra_tile * kBackwardKvTileTokens + row;
      if (key >= p.extra_kv) continue;
      const int64_t cta = ((static_cast<int64_t>(batch) * (p.heads / p.group) + kv_head) *
                               p.extra_tiles + c.extra_tile) * p.extra_splits + c.split;
      float* out = p.extra + (cta * Config::kBlockN + row) * (2 * kD);
#pragma unroll
      for (int j = 0; j < kD / 8; ++j) {
        const int col = 8 * j + 2 * (lane % 4);
        *reinterpret_cast<float2*>(out + col) = make_float2(dk[4 * j + 2 * i], dk[4 * j + 2 * i + 1]);
        *reinterpret_cast<float2*>(out + kD + col) =
            make_float2(dv[4 * j + 2 * i], dv[4 * j + 2 * i + 1]);
      }
      continue;
    }
    if (final_keys.qlo[i][0] > final_keys.qhi[i][0]) continue;  // past the group: no such key
    int64_t k_off = batch * p.dk_stride[0] + kv_head * p.dk_stride[4];
    int64_t v_off = batch * p.dv_stride[0] + kv_head * p.dv_stride[4];
    int32_t pos[3];
    key_positions(p, c, row, pos);
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      const int64_t x = absolute(p.axis[a], c.group[a], pos[a]);
      k_off += x * p.dk_stride[1 + a];
      v_off += x * p.dv_stride[1 + a];
    }
    Element* gk = static_cast<Element*>(p.dk) + k_off;
    Element* gv = static_cast<Element*>(p.dv) + v_off;
#pragma unroll
    for (int j = 0; j < kD / 8; ++j) {
      const int col = 8 * j + 2 * (lane % 4);
      *reinterpret_cast<uint32_t*>(gk + col) =
          pack2<Element>(dk[4 * j + 2 * i] * p.scale, dk[4 * j + 2 * i + 1] * p.scale);
      *reinterpret_cast<uint32_t*>(gv + col) = pack2<Element>(dv[4 * j + 2 * i], dv[4 * j + 2 * i + 1]);
    }
  }
}

template <class Config>
__global__ void __launch_bounds__(Config::kThreads, 1)
    backward_kernel(const __grid_constant__ BackwardParams p,
                    const __grid_constant__ BackwardMaps maps) {
  extern __shared__ uint8_t smem_raw[];
  const BackwardSmem<Config> smem{aligned_smem(smem_raw)};
  const int warpgroup = threadIdx.x / 128;
  const int32_t kv_head = blockIdx.y, batch = p.batch_base + blockIdx.z;
  const KvCta c = kv_cta(p, blockIdx.x);

  if (threadIdx.x == 0) {
    mbar_init(smem.kv_full(), 1);
    for (int s = 0; s < Config::kStages; ++s) {
      mbar_init(smem.q_full(s), 1);
      mbar_init(smem.do_full(s), 1);
      mbar_init(smem.stage_free(s), 256);  // one arrival per consumer thread
    }
    fence_barrier_init();
  }
  __syncthreads();

  if (warpgroup == 0) {
    registers_release<Config::kProducerRegisters>();
    const int warp = threadIdx.x / 32;
    if (threadIdx.x == 0) load_tiles<Config>(p, maps, smem, c, kv_head, batch);
    if (warp == 1 && (!Config::kLeanConsumers || p.dq_by_writer)) write_dq<Config>(p, smem, c, kv_head, batch);
  } else {
    registers_claim<Config::kConsumerRegisters>();
    // Through a shuffle, the compiler knows the warpgroup index is uniform
    // and keeps the shared-memory addresses and wgmma descriptors built
    // from it in uniform registers (no R2UR per instruction).
    consume<Config>(p, smem, c, __shfl_sync(0xffffffffu, warpgroup - 1, 0), kv_head, batch);
  }
}

}  // namespace gna::sm90
