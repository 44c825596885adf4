// SIMD micro-kernels of the cpu backend, compiled once per target through
// Highway's foreach_target (the pass files include this header per target).
//
// Legend: one vector holds one value per lane, i.e. per token of the tile
// (queries in the forward and dQ passes, keys in the dK/dV pass). "Rows" are
// fp32 rows of the other side (keys, values, queries, output gradients),
// whose elements are broadcast against a packed tile: packed[e] is the
// vector of element e of every lane. Both products are rank-1 updates with
// one broadcast operand each, so no horizontal reduction is ever needed.

// Per-target include guard (Highway's toggle idiom).
#if defined(GNA_CPU_KERNELS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef GNA_CPU_KERNELS_INL_H_
#undef GNA_CPU_KERNELS_INL_H_
#else
#define GNA_CPU_KERNELS_INL_H_
#endif

#include <hwy/highway.h>

#include <cstddef>
#include <type_traits>

#include "cpu/tile_walk.hpp"

HWY_BEFORE_NAMESPACE();
namespace gna::cpu {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Element e of a row, for every lane: rows of one head (G = 1) broadcast
// it; rows regrouped by heads (G > 1, Fp32Rows::prepare_grouped) hold
// kHeadBlock floats per element, the heads of lanes l % kHeadBlock, and
// repeat them across the vector.
template <int G>
HWY_INLINE VF RowElement(DF d, const float* row, size_t e) {
  if constexpr (G == 1) {
    return hn::Set(d, row[e]);
  } else {
    return hn::LoadDup128(d, row + e * kHeadBlock);
  }
}

// out[r] = bias[r] + sum_e rows[r][e] * packed[e] for R rows (bias only
// with kBias, else 0), and max = the running lane-wise maximum of them.
template <int G, int R, bool kBias>
HWY_INLINE void DotRows(DF d, const float* const* rows, const float* packed, size_t dim,
                        const float* bias, float* out, VF& max) {
  const size_t L = hn::Lanes(d);
  VF acc[R];
  HWY_UNROLL(16)
  for (int r = 0; r < R; ++r) acc[r] = kBias ? hn::Load(d, bias + r * L) : hn::Zero(d);
  for (size_t e = 0; e < dim; ++e) {
    const VF lanes = hn::Load(d, packed + e * L);
    HWY_UNROLL(16)
    for (int r = 0; r < R; ++r) acc[r] = hn::MulAdd(RowElement<G>(d, rows[r], e), lanes, acc[r]);
  }
  HWY_UNROLL(16)
  for (int r = 0; r < R; ++r) {
    max = hn::Max(max, acc[r]);
    hn::Store(acc[r], d, out + r * L);
  }
}

// DotRows over `count` rows: bias and out hold one vector per row. Returns
// the lane-wise maximum.
template <int G, bool kBias>
HWY_INLINE VF DotAllRows(DF d, const float* const* rows, size_t count, const float* packed,
                         size_t dim, const float* bias, float* out) {
  const size_t L = hn::Lanes(d);
  VF max = hn::Set(d, kMasked);
  size_t r = 0;
  for (; r + 8 <= count; r += 8) {
    DotRows<G, 8, kBias>(d, rows + r, packed, dim, bias + r * L, out + r * L, max);
  }
  for (; r + 4 <= count; r += 4) {
    DotRows<G, 4, kBias>(d, rows + r, packed, dim, bias + r * L, out + r * L, max);
  }
  for (; r < count; ++r) {
    DotRows<G, 1, kBias>(d, rows + r, packed, dim, bias + r * L, out + r * L, max);
  }
  return max;
}

// DotAllRows with the bias when there is one (nullptr: none).
template <int G = 1>
HWY_INLINE VF Scores(DF d, const float* const* rows, size_t count, const float* packed,
                     size_t dim, const float* bias, float* out) {
  return bias != nullptr ? DotAllRows<G, true>(d, rows, count, packed, dim, bias, out)
                         : DotAllRows<G, false>(d, rows, count, packed, dim, out, out);
}

// acc[e] += sum_n rows[n][col + e] * weights[n] for E consecutive columns:
// the packed accumulator acc holds one vector per column.
template <int G, int E>
HWY_INLINE void AddRows(DF d, const float* const* rows, size_t count, const float* weights,
                        size_t col, float* acc) {
  const size_t L = hn::Lanes(d);
  VF sum[E];
  HWY_UNROLL(16)
  for (int e = 0; e < E; ++e) sum[e] = hn::Load(d, acc + e * L);
  const size_t at = col * (G == 1 ? 1 : kHeadBlock);
  for (size_t n = 0; n < count; ++n) {
    const VF w = hn::Load(d, weights + n * L);
    const float* row = rows[n] + at;  // then constant offsets: no index registers
    HWY_UNROLL(16)
    for (int e = 0; e < E; ++e) sum[e] = hn::MulAdd(RowElement<G>(d, row, e), w, sum[e]);
  }
  HWY_UNROLL(16)
  for (int e = 0; e < E; ++e) hn::Store(sum[e], d, acc + e * L);
}

// AddRows over all `dim` columns (16 columns at a time measured slower on
// AVX-512 than 8).
template <int G = 1>
HWY_INLINE void AddAllRows(DF d, const float* const* rows, size_t count, const float* weights,
                           size_t dim, float* acc) {
  const size_t L = hn::Lanes(d);
  size_t e = 0;
  for (; e + 8 <= dim; e += 8) AddRows<G, 8>(d, rows, count, weights, e, acc + e * L);
  for (; e + 4 <= dim; e += 4) AddRows<G, 4>(d, rows, count, weights, e, acc + e * L);
  for (; e < dim; ++e) AddRows<G, 1>(d, rows, count, weights, e, acc + e * L);
}

// P V for a tile of a head group with the accumulator regrouped by heads
// (token t's row: element e of head k at e * kHeadBlock + k, rows of
// `stride` floats, whole vectors): acc[t] + v * L += sum_n (weights of row
// n, lanes of token t, repeated per 128-bit block) * rows[n] + v * L, for
// the VB vectors from v0 on of rows regrouped by heads. kTail: the last of
// them passes the rows' end (row_floats) and is read zero-padded. Each
// vector of a row feeds one FMA per token and each 128-bit broadcast VB
// FMAs: ~0.5 loads per FMA, where AddRows needs one broadcast per FMA.
template <int VB, bool kTail>
HWY_INLINE void AddRowsToGroupLanes(DF d, const float* const* rows, size_t count,
                                    const float* weights, size_t row_floats, size_t v0,
                                    size_t stride, float* acc) {
  const size_t L = hn::Lanes(d), T = L / kHeadBlock;
  constexpr size_t kMaxT = 4;  // tokens whose accumulators stay in registers
  auto load_row = [&](const float* row, int v) {  // row: the rows' vector v0
    if (!kTail || v + 1 < VB) return hn::LoadU(d, row + v * L);
    HWY_ALIGN float part[kMaxLanes] = {};  // the row's end, zero-padded
    const size_t at = (v0 + static_cast<size_t>(v)) * L;
    for (size_t i = at; i < row_floats; ++i) part[i - at] = row[v * L + i - at];
    return hn::Load(d, part);
  };
  if (T > kMaxT) {  // wide vectors: one accumulator at a time
    for (size_t t = 0; t < T; ++t) {
      for (int v = 0; v < VB; ++v) {
        float* out = acc + t * stride + (v0 + v) * L;
        VF sum = hn::Load(d, out);
        for (size_t n = 0; n < count; ++n) {
          sum = hn::MulAdd(hn::LoadDup128(d, weights + n * L + t * kHeadBlock),
                           load_row(rows[n] + v0 * L, v), sum);
        }
        hn::Store(sum, d, out);
      }
    }
    return;
  }
  VF sum[kMaxT][VB];
  for (size_t t = 0; t < T; ++t) {
    HWY_UNROLL(16)
    for (int v = 0; v < VB; ++v) sum[t][v] = hn::Load(d, acc + t * stride + (v0 + v) * L);
  }
  for (size_t n = 0; n < count; ++n) {
    const float* from = rows[n] + v0 * L;  // then constant offsets: no index registers
    VF row[VB];
    HWY_UNROLL(16)
    for (int v = 0; v < VB; ++v) row[v] = load_row(from, v);
    for (size_t t = 0; t < T; ++t) {
      const VF w = hn::LoadDup128(d, weights + n * L + t * kHeadBlock);
      HWY_UNROLL(16)
      for (int v = 0; v < VB; ++v) sum[t][v] = hn::MulAdd(w, row[v], sum[t][v]);
    }
  }
  for (size_t t = 0; t < T; ++t) {
    HWY_UNROLL(16)
    for (int v = 0; v < VB; ++v) hn::Store(sum[t][v], d, acc + t * stride + (v0 + v) * L);
  }
}

// AddRowsToGroupLanes over all `stride / L` vectors of rows of `dim`
// elements, 4 at a time (4 tokens x 4 vectors of accumulators in registers
// on AVX-512).
HWY_INLINE void AddAllRowsToGroupLanes(DF d, const float* const* rows, size_t count,
                                       const float* weights, size_t dim, size_t stride,
                                       float* acc) {
  const size_t L = hn::Lanes(d), row_floats = dim * kHeadBlock;
  const size_t whole = row_floats / L, vectors = stride / L;
  size_t v = 0;
  for (; v + 4 <= whole; v += 4) {
    AddRowsToGroupLanes<4, false>(d, rows, count, weights, row_floats, v, stride, acc);
  }
  for (; v < whole; ++v) {
    AddRowsToGroupLanes<1, false>(d, rows, count, weights, row_floats, v, stride, acc);
  }
  if (v < vectors) {
    AddRowsToGroupLanes<1, true>(d, rows, count, weights, row_floats, v, stride, acc);
  }
}

// DotRows (no bias) and AddRows over the same rows at once, for `count`
// rows and E columns from col on: out[r] += sum_e rows[r][col + e] *
// packed[e] and acc[e] += sum_r rows[r][col + e] * weights[r]. Each
// broadcast element feeds one FMA of each product, half the loads of
// running them apart (the kernels are bound by their loads, not their
// FMAs); acc and packed stay in registers over all rows, R at a time. The
// sums run in the order DotRows and AddRows use: the same bits.
template <int G, int E>
HWY_INLINE void DotAndAddRows(DF d, const float* const* rows, size_t count, const float* packed,
                              const float* weights, size_t col, bool first, float* out,
                              float* acc) {
  const size_t L = hn::Lanes(d);
  const size_t at = col * (G == 1 ? 1 : kHeadBlock);
  VF sum[E], lanes[E];
  HWY_UNROLL(16)
  for (int e = 0; e < E; ++e) {
    sum[e] = hn::Load(d, acc + e * L);
    lanes[e] = hn::Load(d, packed + e * L);
  }
  auto block = [&](size_t r0, auto rows_per_block) {
    constexpr int R = decltype(rows_per_block)::value;
    VF dot[R], w[R];
    const float* row[R];
    HWY_UNROLL(16)
    for (int r = 0; r < R; ++r) {
      dot[r] = first ? hn::Zero(d) : hn::Load(d, out + (r0 + r) * L);
      w[r] = hn::Load(d, weights + (r0 + r) * L);
      row[r] = rows[r0 + r] + at;
    }
    HWY_UNROLL(16)
    for (int e = 0; e < E; ++e) {
      HWY_UNROLL(16)
      for (int r = 0; r < R; ++r) {
        const VF element = RowElement<G>(d, row[r], static_cast<size_t>(e));
        dot[r] = hn::MulAdd(element, lanes[e], dot[r]);
        sum[e] = hn::MulAdd(element, w[r], sum[e]);
      }
    }
    HWY_UNROLL(16)
    for (int r = 0; r < R; ++r) hn::Store(dot[r], d, out + (r0 + r) * L);
  };
  size_t r = 0;
  for (; r + 4 <= count; r += 4) block(r, std::integral_constant<int, 4>());
  for (; r < count; ++r) block(r, std::integral_constant<int, 1>());
  HWY_UNROLL(16)
  for (int e = 0; e < E; ++e) hn::Store(sum[e], d, acc + e * L);
}

// DotAndAddRows over `count` rows and `dim` columns: out[r] = rows[r] .
// packed (one vector per row) and acc[e] += sum_r rows[r][e] * weights[r].
template <int G = 1>
HWY_INLINE void DotAndAddAllRows(DF d, const float* const* rows, size_t count,
                                 const float* packed, const float* weights, size_t dim,
                                 float* out, float* acc) {
  const size_t L = hn::Lanes(d);
  if (dim == 0) {  // no columns: the dots are 0, as DotAllRows would have them
    for (size_t r = 0; r < count; ++r) hn::Store(hn::Zero(d), d, out + r * L);
  }
  size_t e = 0;
  for (; e + 8 <= dim; e += 8) {
    DotAndAddRows<G, 8>(d, rows, count, packed + e * L, weights, e, e == 0, out, acc + e * L);
  }
  for (; e + 4 <= dim; e += 4) {
    DotAndAddRows<G, 4>(d, rows, count, packed + e * L, weights, e, e == 0, out, acc + e * L);
  }
  for (; e < dim; ++e) {
    DotAndAddRows<G, 1>(d, rows, count, packed + e * L, weights, e, e == 0, out, acc + e * L);
  }
}

// out[i][c + v * L] += sum_l weights[i][l] * lane_rows[l][c + v * L] for R
// rows i and V vectors v, over lanes l = lane0, lane0 + step, ...: rows of
// the other side gain what those lanes add.
template <int R, int V>
HWY_INLINE void AddLanesToRows(DF d, const float* weights, const float* lane_rows, size_t stride,
                               size_t c, float* const* out, size_t lane0, size_t step) {
  const size_t L = hn::Lanes(d);
  VF acc[R][V];
  HWY_UNROLL(16)
  for (int r = 0; r < R; ++r) {
    HWY_UNROLL(16)
    for (int v = 0; v < V; ++v) acc[r][v] = hn::LoadU(d, out[r] + c + v * L);
  }
  for (size_t l = lane0; l < L; l += step) {
    VF lane[V];
    HWY_UNROLL(16)
    for (int v = 0; v < V; ++v) lane[v] = hn::Load(d, lane_rows + l * stride + c + v * L);
    HWY_UNROLL(16)
    for (int r = 0; r < R; ++r) {
      const VF w = hn::Set(d, weights[r * L + l]);
      HWY_UNROLL(16)
      for (int v = 0; v < V; ++v) acc[r][v] = hn::MulAdd(w, lane[v], acc[r][v]);
    }
  }
  HWY_UNROLL(16)
  for (int r = 0; r < R; ++r) {
    HWY_UNROLL(16)
    for (int v = 0; v < V; ++v) hn::StoreU(acc[r][v], d, out[r] + c + v * L);
  }
}

// AddLanesToRows over n rows and rows of `stride` floats (whole vectors),
// from lanes lane0, lane0 + step, ... (a tile's head group: step = heads
// per tile, lane0 = the head of the rows).
HWY_INLINE void AddLanesToAllRows(DF d, const float* weights, size_t n, const float* lane_rows,
                                  size_t stride, float* const* out, size_t lane0 = 0,
                                  size_t step = 1) {
  const size_t L = hn::Lanes(d);
  for (size_t c = 0; c < stride; c += 2 * L) {
    const bool two = c + 2 * L <= stride;
    size_t i = 0;
#if HWY_TARGET <= HWY_AVX3
    // 8 rows x 2 vectors fit the 32 registers: the accumulators' loads and
    // stores weigh most where few lanes add to each row (step > 1).
    if (two && step > 1) {
      for (; i + 8 <= n; i += 8) {
        AddLanesToRows<8, 2>(d, weights + i * L, lane_rows, stride, c, out + i, lane0, step);
      }
    }
#endif
    for (; i + 4 <= n; i += 4) {
      if (two) {
        AddLanesToRows<4, 2>(d, weights + i * L, lane_rows, stride, c, out + i, lane0, step);
      } else {
        AddLanesToRows<4, 1>(d, weights + i * L, lane_rows, stride, c, out + i, lane0, step);
      }
    }
    for (; i < n; ++i) {
      if (two) {
        AddLanesToRows<1, 2>(d, weights + i * L, lane_rows, stride, c, out + i, lane0, step);
      } else {
        AddLanesToRows<1, 1>(d, weights + i * L, lane_rows, stride, c, out + i, lane0, step);
      }
    }
  }
}

// dQ of a tile of a head group (lane t * kHeadBlock + k: token t, head k)
// into rows regrouped by heads (element e of head k at e * kHeadBlock + k,
// as Fp32Rows::prepare_grouped): out[i] + v * L += sum_t (dS of row i,
// lanes of token t, repeated per 128-bit block) * lane_keys[t][v], over the
// `blocks` vectors v of L / kHeadBlock elements each. Every lane adds to
// every vector of a row, unlike one head's rows (AddLanesToAllRows with a
// step), which gain 4 lanes per load and store. lane_keys: per token t,
// `blocks` vectors: lane j * kHeadBlock + k is element v * L / kHeadBlock
// + j of that token's head k.
template <int VB>
HWY_INLINE void AddGroupLanesToRows(DF d, const float* weights, size_t n,
                                    const float* lane_keys, size_t blocks, size_t v0,
                                    float* const* out) {
  const size_t L = hn::Lanes(d), T = L / kHeadBlock;
  constexpr size_t kMaxT = 4;  // tokens whose keys stay in registers
  if (T <= kMaxT) {
    VF keys[kMaxT][VB];
    for (size_t t = 0; t < T; ++t) {
      HWY_UNROLL(16)
      for (int v = 0; v < VB; ++v) keys[t][v] = hn::Load(d, lane_keys + (t * blocks + v0 + v) * L);
    }
    for (size_t i = 0; i < n; ++i) {
      VF acc[VB];
      HWY_UNROLL(16)
      for (int v = 0; v < VB; ++v) acc[v] = hn::Load(d, out[i] + (v0 + v) * L);
      for (size_t t = 0; t < T; ++t) {
        const VF w = hn::LoadDup128(d, weights + i * L + t * kHeadBlock);
        HWY_UNROLL(16)
        for (int v = 0; v < VB; ++v) acc[v] = hn::MulAdd(w, keys[t][v], acc[v]);
      }
      HWY_UNROLL(16)
      for (int v = 0; v < VB; ++v) hn::Store(acc[v], d, out[i] + (v0 + v) * L);
    }
    return;
  }
  for (size_t i = 0; i < n; ++i) {  // wide vectors: the keys from memory
    for (int v = 0; v < VB; ++v) {
      VF acc = hn::Load(d, out[i] + (v0 + v) * L);
      for (size_t t = 0; t < T; ++t) {
        acc = hn::MulAdd(hn::LoadDup128(d, weights + i * L + t * kHeadBlock),
                         hn::Load(d, lane_keys + (t * blocks + v0 + v) * L), acc);
      }
      hn::Store(acc, d, out[i] + (v0 + v) * L);
    }
  }
}

// AddGroupLanesToRows over all `blocks` vectors, 4 at a time (16 key
// vectors in registers on AVX-512).
HWY_INLINE void AddGroupLanesToAllRows(DF d, const float* weights, size_t n,
                                       const float* lane_keys, size_t blocks,
                                       float* const* out) {
  size_t v = 0;
  for (; v + 4 <= blocks; v += 4) AddGroupLanesToRows<4>(d, weights, n, lane_keys, blocks, v, out);
  for (; v < blocks; ++v) AddGroupLanesToRows<1>(d, weights, n, lane_keys, blocks, v, out);
}

// out[k][e] = head_scale[k] * in[e * kHeadBlock + k] for e < dim and k <
// kHeadBlock: rows regrouped by heads back into their heads' rows, 4 x 4
// blocks transposed in 128-bit vectors (the inverse of InterleaveRows,
// src/cpu/forward.cpp).
HWY_INLINE void DeinterleaveHeads(const float* in, size_t dim, const float* head_scale,
                                  float* const* out) {
  static_assert(kHeadBlock == 4, "one 128-bit vector per element");
  size_t e = 0;
#if HWY_TARGET != HWY_SCALAR
  const hn::Full128<float> d;
  const auto s = hn::LoadU(d, head_scale);
  for (; e + 4 <= dim; e += 4) {
    const float* from = in + e * kHeadBlock;
    const auto v0 = hn::Mul(hn::LoadU(d, from), s), v1 = hn::Mul(hn::LoadU(d, from + 4), s);
    const auto v2 = hn::Mul(hn::LoadU(d, from + 8), s), v3 = hn::Mul(hn::LoadU(d, from + 12), s);
    const auto lo01 = hn::InterleaveLower(d, v0, v1), lo23 = hn::InterleaveLower(d, v2, v3);
    const auto hi01 = hn::InterleaveUpper(d, v0, v1), hi23 = hn::InterleaveUpper(d, v2, v3);
    hn::StoreU(hn::ConcatLowerLower(d, lo23, lo01), d, out[0] + e);
    hn::StoreU(hn::ConcatUpperUpper(d, lo23, lo01), d, out[1] + e);
    hn::StoreU(hn::ConcatLowerLower(d, hi23, hi01), d, out[2] + e);
    hn::StoreU(hn::ConcatUpperUpper(d, hi23, hi01), d, out[3] + e);
  }
#endif
  for (; e < dim; ++e) {
    for (int k = 0; k < kHeadBlock; ++k) out[k][e] = head_scale[k] * in[e * kHeadBlock + k];
  }
}

// 2^x for x <= 0: 2^x = 2^n * 2^f with n = round(x), |f| <= 1/2, and 2^f
// from a degree-5 polynomial fitted here for relative error (max 2.4e-7 in
// fp32). x is clamped to -127, whose 2^n has exponent bits 0: exactly 0,
// never a subnormal, so masked scores (kMasked) need no select. n comes
// from adding 1.5 * 2^23, which rounds to nearest even like Round and
// leaves n in the low bits (ConvertTo's overflow fix-ups cost 4 more
// operations per call, in the loops of every score).
HWY_INLINE VF Exp2(DF d, VF x) {
  const hn::RebindToSigned<DF> di;
  const VF clamped = hn::Max(x, hn::Set(d, -127.0f));
  const VF magic = hn::Set(d, 12582912.0f);  // 1.5 * 2^23
  const VF shifted = hn::Add(clamped, magic);
  const VF n = hn::Sub(shifted, magic);
  const VF f = hn::Sub(clamped, n);
  VF p = hn::Set(d, 0.0013276470126584172f);
  p = hn::MulAdd(p, f, hn::Set(d, 0.009675540961325169f));
  p = hn::MulAdd(p, f, hn::Set(d, 0.05550713464617729f));
  p = hn::MulAdd(p, f, hn::Set(d, 0.24022120237350464f));
  p = hn::MulAdd(p, f, hn::Set(d, 0.6931469440460205f));
  p = hn::MulAdd(p, f, hn::Set(d, 1.0000001192092896f));
  // The bits of `shifted` are those of magic plus n, and magic's shifted
  // out by 23 places leave 0: what remains is (n + 127) << 23.
  const auto exponent = hn::ShiftLeft<23>(hn::Add(hn::BitCast(di, shifted), hn::Set(di, 127)));
  return hn::Mul(p, hn::BitCast(d, exponent));
}

// out[i][0, L) = row_scale[i] * (in[0][i], ..., in[L - 1][i]): the L x L
// block whose rows start at in[] is transposed into rows starting at out[].
// This moves tiles between the caller's rows (one token each) and packed
// vectors (one element of every token). log2(L) rounds of unzipping all
// rows do it: an unzip rotates the bits of the flattened element index by
// one place, a transpose rotates them by log2(L) places.
HWY_INLINE void TransposeRows(DF d, const float* const* in, float* const* out,
                              const float* row_scale) {
#if HWY_TARGET == HWY_SCALAR || HWY_HAVE_SCALABLE
  const size_t L = hn::Lanes(d);
  for (size_t i = 0; i < L; ++i) {
    for (size_t j = 0; j < L; ++j) out[i][j] = row_scale[i] * in[j][i];
  }
#else
  constexpr size_t L = hn::MaxLanes(DF());
  VF r[L], t[L];
  HWY_UNROLL(64)
  for (size_t i = 0; i < L; ++i) r[i] = hn::LoadU(d, in[i]);
  for (size_t round = 1; round < L; round *= 2) {
    HWY_UNROLL(64)
    for (size_t i = 0; i < L / 2; ++i) {
      t[i] = hn::ConcatEven(d, r[2 * i + 1], r[2 * i]);
      t[i + L / 2] = hn::ConcatOdd(d, r[2 * i + 1], r[2 * i]);
    }
    HWY_UNROLL(64)
    for (size_t i = 0; i < L; ++i) r[i] = t[i];
  }
  HWY_UNROLL(64)
  for (size_t i = 0; i < L; ++i) hn::StoreU(hn::Mul(r[i], hn::Set(d, row_scale[i])), d, out[i]);
#endif
}

// packed[e * L + l] = scale * rows[l][e] for e < dim, in whole L x L blocks
// (packed has room for dim rounded up to L). spare: L * L floats.
HWY_INLINE void PackRows(DF d, const float* const* rows, size_t dim, float scale,
                         float* packed, float* spare) {
  const size_t L = hn::Lanes(d);
  HWY_ALIGN float scales[kMaxLanes];
  const float* in[kMaxLanes];
  float* out[kMaxLanes];
  for (size_t l = 0; l < L; ++l) scales[l] = scale;
  for (size_t e0 = 0; e0 < dim; e0 += L) {
    const size_t n = dim - e0 < L ? dim - e0 : L;
    for (size_t l = 0; l < L; ++l) {
      in[l] = rows[l] + e0;
      if (n < L) {  // the rows end inside this block: pad a copy with zeros
        float* copy = spare + l * L;
        for (size_t e = 0; e < L; ++e) copy[e] = e < n ? in[l][e] : 0.0f;
        in[l] = copy;
      }
      out[l] = packed + (e0 + l) * L;
    }
    TransposeRows(d, in, out, scales);
  }
}

// rows[l][e] = row_scale[l] * packed[e * L + l] for e < dim (packed has
// room for dim rounded up to L). spare: L * L floats.
HWY_INLINE void UnpackRows(DF d, const float* packed, size_t dim, const float* row_scale,
                           float* const* rows, float* spare) {
  const size_t L = hn::Lanes(d);
  const float* in[kMaxLanes];
  float* out[kMaxLanes];
  for (size_t e0 = 0; e0 < dim; e0 += L) {
    const size_t n = dim - e0 < L ? dim - e0 : L;
    for (size_t l = 0; l < L; ++l) {
      in[l] = packed + (e0 + l) * L;
      out[l] = n < L ? spare + l * L : rows[l] + e0;
    }
    TransposeRows(d, in, out, row_scale);
    if (n < L) {  // the rows end inside this block: copy their part
      for (size_t l = 0; l < L; ++l) {
        for (size_t e = 0; e < n; ++e) rows[l][e0 + e] = spare[l * L + e];
      }
    }
  }
}

// bias[(j - c.lo) * L + l] = 0 where lane l of the walk's tile reaches
// position j of chunk c along axis a, kMasked where it does not.
HWY_INLINE void FillBias(DF d, const TileWalk& w, int a, const Chunk& c, float* bias) {
  const hn::RebindToSigned<DF> di;
  const size_t L = hn::Lanes(d);
  const auto lo = hn::Load(di, w.reach_lo(a)), hi = hn::Load(di, w.reach_hi(a));
  const VF masked = hn::Set(d, kMasked);
  for (int64_t j = c.lo; j <= c.hi; ++j) {
    const auto at = hn::Set(di, static_cast<int32_t>(j));
    const auto outside = hn::RebindMask(d, hn::Or(hn::Gt(lo, at), hn::Gt(at, hi)));
    hn::Store(hn::IfThenElseZero(outside, masked), d, bias + (j - c.lo) * L);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace gna::cpu
HWY_AFTER_NAMESPACE();

#endif  // GNA_CPU_KERNELS_INL_H_
