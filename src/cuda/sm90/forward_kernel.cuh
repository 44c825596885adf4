// Fused neighborhood-attention forward for Hopper (sm_90a).
//
// A work item is one query tile (128 tokens: a box of the token grid inside
// one dilation group) of one (batch, head); it walks only the KV tiles its
// neighborhood needs (tile_map.cuh), then the additional-KV tiles. The kernel
// is persistent: a CTA takes items blockIdx.x, + gridDim.x, ... in turn, and
// the producer loads the next item's Q and first K/V tiles while the
// consumers finish the current one (its last P V and the epilogue).
//
//   warpgroup 0  producer: one thread issues TMA loads of Q once, then K and V
//                tiles into a ring of shared-memory stages
//   warpgroups 1, 2  consumers: 64 query rows each; S = Q K^T (wgmma, both
//                operands in shared memory), element mask only on KV tiles
//                that need it, online softmax in registers, O += P V (wgmma,
//                P from registers). The softmax of tile i+1 runs while the
//                tensor cores do P V of tile i: S of the next tile is issued
//                before P V of the current one. With ping-pong on, the two
//                warpgroups take turns issuing their products, so that one's
//                softmax runs while the other's products keep the tensor
//                cores busy.
//
// Barriers, named for what they guard:
//   q_full[b]       Q tile in buffer b landed (items alternate between the
//                   buffers where two fit: kQBuffers)
//   q_free[b]       all eight consumer warps issued their last S of the item
//                   in buffer b (a later item's Q may overwrite it)
//   k_full[s]       K of stage s landed       v_full[s]  V of stage s landed
//   k_free[s]       all eight consumer warps are done reading K of stage s
//   v_free[s]       ... done reading V of stage s (K frees a step earlier)
//   named kTurn+w   consumer warpgroup w may issue its next products (ping-pong)
// Stage index and parity run on across items: `step` counts the KV tiles the
// CTA has staged so far.
//
// Shared memory tiles are rows of head-dim chunks (HeadDimRows in
// config.hpp): Q and K by D, V by Dv, which may differ.
#pragma once

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/sm90/config.hpp"
#include "cuda/sm90/gmma.cuh"
#include "cuda/sm90/launch.hpp"
#include "cuda/sm90/params.hpp"
#include "cuda/sm90/ptx.cuh"
#include "cuda/sm90/tile_load.cuh"
#include "cuda/sm90/tile_map.cuh"

namespace gna::sm90 {

template <class Config>
struct Smem {
  uint8_t* base;
  __device__ uint8_t* q(int b) const { return base + b * Config::kQBytes; }
  __device__ uint8_t* k(int s) const { return base + Config::kKOffset + s * Config::kKBytes; }
  __device__ uint8_t* v(int s) const { return base + Config::kVOffset + s * Config::kVBytes; }
  __device__ uint64_t* bar(int i) const {
    return reinterpret_cast<uint64_t*>(base + Config::kBarrierOffset) + i;
  }
  __device__ uint64_t* q_full(int b) const { return bar(b); }
  __device__ uint64_t* q_free(int b) const { return bar(2 + b); }
  __device__ uint64_t* k_full(int s) const { return bar(4 + s); }
  __device__ uint64_t* v_full(int s) const { return bar(4 + Config::kStages + s); }
  __device__ uint64_t* k_free(int s) const { return bar(4 + 2 * Config::kStages + s); }
  __device__ uint64_t* v_free(int s) const { return bar(4 + 3 * Config::kStages + s); }
  __device__ uint32_t* column_masks() const {
    return reinterpret_cast<uint32_t*>(base + Config::kColumnMaskOffset);
  }
};

// The element mask, as bit masks. A thread holds, per row, the S columns
// 8j + 2q + e (j < kBlockN / 8, e < 2, q = lane % 4); bit 2j + e of a
// column mask stands for column 8j + 2q + e. Entry [a][v][q] marks the
// columns whose axis-a position inside the KV box lies below v, so the
// columns a row sees on axis a, positions [l, h], are
// before(a, h + 1) & ~before(a, l): two shared-memory words per row and
// axis instead of compares per element. Built once per CTA: the box shape
// is the launch's.
template <class Config>
struct ColumnMasks {
  static constexpr int kPositions = Config::kBlockN + 1;
  const uint32_t* words;

  __device__ __forceinline__ uint32_t before(int a, int32_t v, int q) const {
    return words[(a * kPositions + v) * 4 + q];
  }

  // Built by the `threads` consumer threads while the producer's first
  // loads are in flight. A column's axis-a position is a bit field of it
  // (axis 2 lowest); the shifts are picked without indexing the parameters
  // by a runtime axis (which would copy them to local memory: 14 us per
  // CTA when tried).
  __device__ static void build(const ForwardParams& p, uint32_t* words, int thread, int threads) {
    const int log2[3] = {p.axis[0].kv_log2, p.axis[1].kv_log2, p.axis[2].kv_log2};
    for (int i = thread; i < Config::kColumnMasks; i += threads) {
      const int q = i % 4, v = (i / 4) % kPositions, a = i / (4 * kPositions);
      const int shift = a == 2 ? 0 : a == 1 ? log2[2] : log2[2] + log2[1];
      const int bits = a == 2 ? log2[2] : a == 1 ? log2[1] : log2[0];
      const int field_mask = (1 << bits) - 1;
      uint32_t m = 0;
#pragma unroll
      for (int j = 0; j < Config::kBlockN / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int position = ((8 * j + 2 * q + e) >> shift) & field_mask;
          m |= static_cast<uint32_t>(position < v) << (2 * j + e);
        }
      }
      words[i] = m;
    }
  }
};

// Named barrier ids (0 is __syncthreads): kTurn + w is consumer warpgroup
// w's turn to issue; its 128 threads wait there for the other's 128 arrivals.
// kMasksBuilt: the 256 consumer threads built the column masks.
constexpr int kTurn = 1;
constexpr int kTurnThreads = 256;
constexpr int kMasksBuilt = 3;

// The work item with linear index `index`: query tiles fastest, so that the
// items running together share their heads' K and V in L2.
struct WorkItem {
  int32_t q_tile, head, batch;
};

__device__ __forceinline__ WorkItem work_item(const ForwardParams& p, int32_t index) {
  WorkItem w;
  int32_t rest;
  split_index(index, p.q_tiles, rest, w.q_tile);
  split_index(rest, p.heads, w.batch, w.head);
  return w;
}

// KV tiles of a work item: the neighborhood walk, then additional KV.
template <class Config>
__device__ __forceinline__ int32_t kv_iterations(const ForwardParams& p, const KvWalk& walk) {
  return walk.total + (p.extra_kv + Config::kBlockN - 1) / Config::kBlockN;
}

// The KV tile of iteration `it`: neighborhood tiles first (at the cursor),
// then additional KV.
struct KvStep {
  bool extra;
  bool full;          // no element mask needed (every key exists and every row sees it)
  int32_t origin[3];  // in-group origin (neighborhood tiles)
  int32_t first;      // first additional token (extra tiles)
};

template <class Config>
__device__ __forceinline__ KvStep kv_step(const ForwardParams& p, const KvWalk& walk,
                                          const KvCursor& cursor, int32_t it) {
  KvStep step;
  step.extra = it >= walk.total;
  step.first = (it - walk.total) * Config::kBlockN;
  // An additional-KV tile needs the mask only when it is the partial last one.
  step.full = step.extra ? step.first + Config::kBlockN <= p.extra_kv
                         : kv_tile_is_full(walk, cursor);
  kv_origin(p, walk, cursor, step.origin);
  return step;
}

// ---- producer -------------------------------------------------------------------

// Loads one work item: Q (once the consumers are done with the previous
// item's), then its K/V tiles from ring position `step` on.
template <class Config>
__device__ void produce(const ForwardParams& p, const TensorMaps& maps, const Smem<Config>& smem,
                        const QueryTile& tile, const KvWalk& walk, int32_t iterations,
                        int32_t head, int32_t batch, int32_t round, int32_t step) {
  const int32_t kv_head = head / p.group;
  const int buffer = round % Config::kQBuffers, use = round / Config::kQBuffers;
  if (use > 0) mbar_wait(smem.q_free(buffer), (use - 1) & 1);
  mbar_arrive_expect_tx(smem.q_full(buffer), Config::kQBytes);
  load_box<Config>(&maps.q, p.q_coords, smem.q_full(buffer), smem.q(buffer), Config::kBlockM,
                   1 << p.axis[0].q_log2, p.axis[0].dilation, p.q_split_log2,
                   absolute(p.axis[0], tile.group[0], tile.first[0]),
                   absolute(p.axis[1], tile.group[1], tile.first[1]),
                   absolute(p.axis[2], tile.group[2], tile.first[2]), head, batch);
  KvCursor cursor;
  int32_t masked = 0;
  for (int32_t it = 0; it < iterations; ++it, cursor.advance(walk)) {
    const int32_t g = step + it;
    const int s = g % Config::kStages;
    const uint32_t reuse_parity = ((g / Config::kStages) - 1) & 1;
    const KvStep kv = kv_step<Config>(p, walk, cursor, it);
    masked += !kv.full;
    int32_t x[3];
    const CUtensorMap *k_map = &maps.k, *v_map = &maps.v;
    const MapCoords *k_mc = &p.k_coords, *v_mc = &p.v_coords;
    int32_t extent0 = 1 << p.axis[0].kv_log2, dilation0 = p.axis[0].dilation;
    int32_t split_log2 = p.kv_split_log2;
    if (kv.extra) {
      extent0 = Config::kBlockN;
      dilation0 = 1;
      split_log2 = 0;
      // Additional KV is a [B, Nx, Hkv, D] tensor: a rank-1 grid on axis 0.
      x[0] = kv.first;
      x[1] = x[2] = 0;
      k_map = &maps.extra_k;
      v_map = &maps.extra_v;
      k_mc = &p.extra_k_coords;
      v_mc = &p.extra_v_coords;
    } else {
#pragma unroll
      for (int a = 0; a < 3; ++a) x[a] = absolute(p.axis[a], tile.group[a], kv.origin[a]);
    }
    if (g >= Config::kStages) mbar_wait(smem.k_free(s), reuse_parity);
    mbar_arrive_expect_tx(smem.k_full(s), Config::kKBytes);
    load_box<Config>(k_map, *k_mc, smem.k_full(s), smem.k(s), Config::kBlockN, extent0, dilation0,
                     split_log2, x[0], x[1], x[2], kv_head, batch);
    if (g >= Config::kStages) mbar_wait(smem.v_free(s), reuse_parity);
    mbar_arrive_expect_tx(smem.v_full(s), Config::kVBytes);
    load_box<typename Config::V>(v_map, *v_mc, smem.v_full(s), smem.v(s), Config::kBlockN,
                                 extent0, dilation0, split_log2, x[0], x[1], x[2], kv_head, batch);
  }
  if (p.tile_counts != nullptr) {  // instrumented runs: what the simulator predicts
    atomicAdd(&p.tile_counts[0], static_cast<unsigned long long>(iterations));
    atomicAdd(&p.tile_counts[1], static_cast<unsigned long long>(masked));
  }
}

// ---- consumers --------------------------------------------------------------------

// One thread's two query rows: their windows per axis and whether they exist.
struct RowWindows {
  int32_t lo[2][3], hi[2][3];
  int32_t pos[2][3];  // in-group position (may lie past the group: not stored)
  bool valid[2];
};

__device__ __forceinline__ RowWindows row_windows(const ForwardParams& p, const QueryTile& t,
                                                  const int (&rows)[2]) {
  RowWindows w;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    w.valid[i] = true;
    int shift = 0;
#pragma unroll
    for (int a = 2; a >= 0; --a) {
      const AxisGeometry& g = p.axis[a];
      const int32_t pos = t.first[a] + ((rows[i] >> shift) & ((1 << g.q_log2) - 1));
      shift += g.q_log2;
      w.pos[i][a] = pos;
      w.valid[i] = w.valid[i] && pos < t.length[a];
      // Rows past the group compute a real window (not stored) so that no
      // row ever sees nothing.
      const window::Range r =
          window::key_range(window_axis(g), min(pos, t.length[a] - 1), t.length[a]);
      w.lo[i][a] = static_cast<int32_t>(r.lo);
      w.hi[i][a] = static_cast<int32_t>(r.hi);
    }
  }
  return w;
}

// Sets scores of keys a row does not see to -inf; only called on tiles that
// need it. Neighborhood tiles through the column masks, the partial last
// additional-KV tile by comparing columns with the tokens left.
template <class Config>
__device__ __forceinline__ void apply_mask(const ForwardParams& p, const ColumnMasks<Config>& cm,
                                           const KvStep& step, const RowWindows& w, int lane,
                                           float (&s)[Config::kBlockN / 2]) {
  const int q = lane % 4;
  uint32_t seen[2] = {~0u, ~0u};
  if (step.extra) {
    const int32_t left = p.extra_kv - step.first;
#pragma unroll
    for (int j = 0; j < Config::kBlockN / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        if (8 * j + 2 * q + e >= left) seen[0] &= ~(1u << (2 * j + e));
      }
    }
    seen[1] = seen[0];
  } else {
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      const int32_t extent = 1 << p.axis[a].kv_log2;
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int32_t l = min(max(w.lo[i][a] - step.origin[a], 0), extent);
        const int32_t h = min(max(w.hi[i][a] - step.origin[a] + 1, 0), extent);
        seen[i] &= cm.before(a, h, q) & ~cm.before(a, l, q);
      }
    }
  }
#pragma unroll
  for (int j = 0; j < Config::kBlockN / 8; ++j) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      if (!(seen[0] >> (2 * j + e) & 1)) s[4 * j + e] = -INFINITY;
      if (!(seen[1] >> (2 * j + e) & 1)) s[4 * j + 2 + e] = -INFINITY;
    }
  }
}

// Maximum over the four threads that share a row (lanes differing in bits 0-1).
__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// A shared-memory address the whole warp agrees on, known so to the
// compiler: descriptors built from it stay in uniform registers, with no
// register-to-uniform copy before each wgmma.
__device__ __forceinline__ uint32_t warp_uniform(uint32_t v) { return __shfl_sync(0xffffffffu, v, 0); }

// S = Q K^T of one KV tile over the head dim, 16 columns per instruction;
// asynchronous (the caller fences before and waits when it needs S).
template <class Config>
__device__ __forceinline__ void issue_qk(uint32_t q_base, uint32_t k_base,
                                         float (&sc)[Config::kBlockN / 2]) {
  constexpr int kN = Config::kBlockN;
  q_base = warp_uniform(q_base);
  k_base = warp_uniform(k_base);
  const uint64_t q = make_desc(q_base, 16, 8 * Config::kRowBytes, Config::kSwizzle);
  const uint64_t k = make_desc(k_base, 16, 8 * Config::kRowBytes, Config::kSwizzle);
#pragma unroll
  for (int kk = 0; kk < Config::kHeadDim / 16; ++kk) {
    const int chunk = kk * 16 / Config::kChunk, col_bytes = (kk * 16 % Config::kChunk) * 2;
    gmma_ss<typename Config::Element, kN>(
        desc_offset(q, chunk * Config::kBlockM * Config::kRowBytes + col_bytes),
        desc_offset(k, chunk * kN * Config::kRowBytes + col_bytes), sc, kk > 0);
  }
  gmma_commit();
}

// O += P V of one KV tile, 16 keys per instruction. V's rows are keys, its
// head dim is contiguous: an MN-major operand. Asynchronous like issue_qk.
template <class Config>
__device__ __forceinline__ void issue_pv(const uint32_t (&pa)[Config::kBlockN / 16][4],
                                         uint32_t v_base, float (&o)[Config::kHeadDimV / 2]) {
  using V = typename Config::V;
  constexpr int kN = Config::kBlockN;
  v_base = warp_uniform(v_base);
  const uint64_t v = make_desc(v_base, kN * V::kRowBytes, 8 * V::kRowBytes, V::kSwizzle);
#pragma unroll
  for (int b = 0; b < kN / 16; ++b) {
    gmma_rs<typename Config::Element, Config::kHeadDimV>(
        pa[b], desc_offset(v, b * 16 * V::kRowBytes), o);
  }
  gmma_commit();
}

// Online softmax of one S tile in place: raises the running row maxima,
// turns S into unnormalized probabilities, adds them to the row sums, and
// returns per row the factor that rescales what O holds so far.
template <int kN>
__device__ __forceinline__ void softmax_step(float (&sc)[kN / 2], float (&row_max)[2],
                                             float (&row_sum)[2], float scale_log2,
                                             float (&rescale)[2]) {
  // Maxima and sums in four independent chains per row: one chain of
  // kN / 4 dependent instructions would leave the warp waiting on each
  // one's latency.
  constexpr int kChains = 4;
  static_assert(kChains == 4, "the chains are combined below, four by name");
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    float m[kChains];
#pragma unroll
    for (int c = 0; c < kChains; ++c) m[c] = row_max[i];
#pragma unroll
    for (int j = 0; j < kN / 8; ++j) {
      float& mc = m[j % kChains];
      mc = fmaxf(mc, fmaxf(sc[4 * j + 2 * i], sc[4 * j + 2 * i + 1]));
    }
    const float mx = quad_max(fmaxf(fmaxf(m[0], m[1]), fmaxf(m[2], m[3])));
    // A row that has seen nothing yet keeps max -inf; subtract 0 instead
    // so that exp2 gives 0 rather than NaN.
    const float base = mx == -INFINITY ? 0.0f : mx * scale_log2;
    rescale[i] = exp2_approx(row_max[i] * scale_log2 - base);
    row_max[i] = mx;
    float sum[kChains] = {};
#pragma unroll
    for (int j = 0; j < kN / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float& x = sc[4 * j + 2 * i + e];
        x = exp2_approx(fmaf(x, scale_log2, -base));
        sum[j % kChains] += x;
      }
    }
    row_sum[i] = row_sum[i] * rescale[i] + ((sum[0] + sum[1]) + (sum[2] + sum[3]));
  }
}

// P in the A-fragment order of the P V wgmma: k16 block b holds the score
// columns 16b .. 16b+15, i.e. accumulator blocks 2b and 2b+1.
template <class Element, int kN>
__device__ __forceinline__ void pack_probabilities(const float (&sc)[kN / 2],
                                                   uint32_t (&pa)[kN / 16][4]) {
#pragma unroll
  for (int b = 0; b < kN / 16; ++b) {
#pragma unroll
    for (int r = 0; r < 4; ++r) pa[b][r] = pack2<Element>(sc[8 * b + 2 * r], sc[8 * b + 2 * r + 1]);
  }
}

// Once a row's maximum has settled (most tiles of a long walk), its factor
// is exactly 1: the warp skips the multiplies when none of its rows moved.
template <int kD>
__device__ __forceinline__ void rescale_output(float (&o)[kD / 2], const float (&rescale)[2]) {
  if (!__any_sync(0xffffffffu, rescale[0] != 1.0f || rescale[1] != 1.0f)) return;
#pragma unroll
  for (int j = 0; j < kD / 8; ++j) {
    o[4 * j + 0] *= rescale[0];
    o[4 * j + 1] *= rescale[0];
    o[4 * j + 2] *= rescale[1];
    o[4 * j + 3] *= rescale[1];
  }
}

// Ping-pong: warpgroup `consumer` waits for its turn before issuing
// products and hands the turn over right after.
struct Turns {
  bool on;
  int consumer;
  __device__ __forceinline__ void wait() const {
    if (on) named_barrier_sync(kTurn + consumer, kTurnThreads);
  }
  __device__ __forceinline__ void pass() const {
    if (on) named_barrier_arrive(kTurn + (consumer ^ 1), kTurnThreads);
  }
};

// One work item of consumer warpgroup `consumer`: its 64 query rows.
template <class Config>
__device__ void consume(const ForwardParams& p, const Smem<Config>& smem, const QueryTile& tile,
                        const KvWalk& walk, int32_t iterations, int consumer, int32_t head,
                        int32_t batch, int32_t round, int32_t step, const Turns& turns) {
  using Element = typename Config::Element;
  constexpr int kN = Config::kBlockN, kDv = Config::kHeadDimV, kStages = Config::kStages;
  const int thread = threadIdx.x % 128, warp = thread / 32, lane = thread % 32;
  const int rows[2] = {consumer * 64 + warp * 16 + lane / 4, consumer * 64 + warp * 16 + lane / 4 + 8};
  const RowWindows win = row_windows(p, tile, rows);
  const ColumnMasks<Config> masks{smem.column_masks()};

  float o[kDv / 2];
#pragma unroll
  for (int i = 0; i < kDv / 2; ++i) o[i] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.0f, 0.0f};
  float rescale[2];
  float sc[kN / 2];         // S of the next tile, then its probabilities
  uint32_t pa[kN / 16][4];  // probabilities of the current tile, for P V

  const int buffer = round % Config::kQBuffers, use = round / Config::kQBuffers;
  const uint32_t q_base = smem_addr(smem.q(buffer)) + consumer * 64 * Config::kRowBytes;
  // Ring position and parity of the item's iteration `it`.
  auto stage = [&](int32_t it) { return (step + it) % kStages; };
  auto parity = [&](int32_t it) { return static_cast<uint32_t>(((step + it) / kStages) & 1); };
  // Each warp waited for its own share of the warpgroup's wgmma before it
  // releases a buffer; the barriers count all eight consumer warps.
  auto release = [&](uint64_t* bar) {
    if (lane == 0) mbar_arrive(bar);
  };
  // Masks and exponentiates the S tile of iteration `it` (already in sc).
  KvCursor cursor;
  auto softmax_of = [&](int32_t it) {
    const KvStep step = kv_step<Config>(p, walk, cursor, it);
    if (!step.full) apply_mask<Config>(p, masks, step, win, lane, sc);
    softmax_step<kN>(sc, row_max, row_sum, p.scale_log2, rescale);
    cursor.advance(walk);
  };

  mbar_wait(smem.q_full(buffer), use & 1);
  mbar_wait(smem.k_full(stage(0)), parity(0));
  fence_registers(sc);
  turns.wait();
  gmma_fence();
  issue_qk<Config>(q_base, smem_addr(smem.k(stage(0))), sc);
  turns.pass();
  gmma_wait<0>();
  fence_registers(sc);
  release(smem.k_free(stage(0)));
  softmax_of(0);
  pack_probabilities<Element, kN>(sc, pa);  // O is still zero: nothing to rescale

  // Steady state: S of tile it+1 and P V of tile it in flight together; the
  // softmax of tile it+1 runs while P V does.
  for (int32_t it = 0; it + 1 < iterations; ++it) {
    const int s = stage(it), next = stage(it + 1);
    mbar_wait(smem.k_full(next), parity(it + 1));
    mbar_wait(smem.v_full(s), parity(it));
    fence_registers(sc);
    fence_registers(o);
    turns.wait();
    gmma_fence();  // one fence for both groups: nothing they read changes between them
    issue_qk<Config>(q_base, smem_addr(smem.k(next)), sc);
    issue_pv<Config>(pa, smem_addr(smem.v(s)), o);
    turns.pass();
    gmma_wait<1>();  // S of tile it+1 is done; P V of tile it may still run
    fence_registers(sc);
    release(smem.k_free(next));
    softmax_of(it + 1);
    gmma_wait<0>();
    fence_registers(o);
    release(smem.v_free(s));
    rescale_output<kDv>(o, rescale);
    pack_probabilities<Element, kN>(sc, pa);
  }
  // Every S of the item is done: a later item's Q may take this buffer.
  release(smem.q_free(buffer));
  // The last tile: P V alone.
  {
    const int32_t last = iterations - 1;
    const int s = stage(last);
    mbar_wait(smem.v_full(s), parity(last));
    fence_registers(o);
    turns.wait();
    gmma_fence();
    issue_pv<Config>(pa, smem_addr(smem.v(s)), o);
    turns.pass();
    gmma_wait<0>();
    fence_registers(o);
    release(smem.v_free(s));
  }

  // Epilogue: normalize, write O and LSE of the rows that exist.
  Element* out = static_cast<Element*>(p.out);
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const float sum = quad_sum(row_sum[i]);
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    if (!win.valid[i]) continue;
    int64_t row = batch * p.out_stride[0] + head * p.out_stride[4];
    int64_t lse_row = batch * p.lse_stride[0] + head * p.lse_stride[4];
#pragma unroll
    for (int a = 0; a < 3; ++a) {
      const int64_t x = absolute(p.axis[a], tile.group[a], win.pos[i][a]);
      row += x * p.out_stride[1 + a];
      lse_row += x * p.lse_stride[1 + a];
    }
#pragma unroll
    for (int j = 0; j < kDv / 8; ++j) {
      const int col = 8 * j + 2 * (lane % 4);
      *reinterpret_cast<uint32_t*>(out + row + col) =
          pack2<Element>(o[4 * j + 2 * i] * inv, o[4 * j + 2 * i + 1] * inv);
    }
    if (p.lse != nullptr && lane % 4 == 0) {
      // Natural log of the softmax denominator of the scaled scores.
      p.lse[lse_row] = (row_max[i] * p.scale_log2 + __log2f(sum)) * 0.69314718055994531f;
    }
  }
}

template <class Config>
__global__ void __launch_bounds__(Config::kThreads, 1)
    forward_kernel(const __grid_constant__ ForwardParams p, const __grid_constant__ TensorMaps maps) {
  extern __shared__ uint8_t smem_raw[];
  const Smem<Config> smem{aligned_smem(smem_raw)};
  const int warpgroup = threadIdx.x / 128;

  if (threadIdx.x == 0) {
    for (int b = 0; b < 2; ++b) {
      mbar_init(smem.q_full(b), 1);
      mbar_init(smem.q_free(b), 8);  // one arrival per consumer warp
    }
    for (int s = 0; s < Config::kStages; ++s) {
      mbar_init(smem.k_full(s), 1);
      mbar_init(smem.v_full(s), 1);
      mbar_init(smem.k_free(s), 8);
      mbar_init(smem.v_free(s), 8);
    }
    fence_barrier_init();
  }
  __syncthreads();

  // Producer and consumers walk the same items in the same order and count
  // the same KV tiles, so their ring positions agree.
  if (warpgroup == 0) {
    registers_release<40>();
    if (threadIdx.x != 0) return;
    int32_t step = 0, round = 0;
    for (int32_t index = blockIdx.x; index < p.items; index += gridDim.x, ++round) {
      const WorkItem w = work_item(p, index);
      const QueryTile tile = query_tile(p, w.q_tile);
      const KvWalk walk = kv_walk(p, tile);
      const int32_t iterations = kv_iterations<Config>(p, walk);
      produce<Config>(p, maps, smem, tile, walk, iterations, w.head, w.batch, round, step);
      step += iterations;
    }
  } else {
    registers_claim<232>();
    // Through a shuffle, the compiler knows the warpgroup index is uniform
    // and keeps the shared-memory addresses and wgmma descriptors built
    // from it in uniform registers (no R2UR per instruction).
    const int consumer = __shfl_sync(0xffffffffu, warpgroup - 1, 0);
    ColumnMasks<Config>::build(p, smem.column_masks(), threadIdx.x - 128, 256);
    named_barrier_sync(kMasksBuilt, 256);
    const Turns turns{p.pingpong != 0, consumer};
    // Warpgroup 0 takes the first turn.
    if (consumer == 1) turns.pass();
    int32_t step = 0, round = 0;
    for (int32_t index = blockIdx.x; index < p.items; index += gridDim.x, ++round) {
      const WorkItem w = work_item(p, index);
      const QueryTile tile = query_tile(p, w.q_tile);
      const KvWalk walk = kv_walk(p, tile);
      const int32_t iterations = kv_iterations<Config>(p, walk);
      consume<Config>(p, smem, tile, walk, iterations, consumer, w.head, w.batch, round, step,
                      turns);
      step += iterations;
    }
    // Warpgroup 1 passed the turn last; warpgroup 0 takes that arrival so
    // that no barrier is left half arrived at exit.
    if (consumer == 0) turns.wait();
  }
}

}  // namespace gna::sm90
