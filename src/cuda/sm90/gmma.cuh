// Warpgroup matrix multiply-accumulate (wgmma) of a 64-row tile, through
// CuTe's instruction wrappers. Accumulators are plain float arrays in the
// wgmma fragment order: element 4j+{0,1} holds row (warp*16 + lane/4),
// columns 8j + 2*(lane%4) + {0,1}; element 4j+{2,3} the same columns 8 rows
// further down.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <utility>

#include <cute/arch/mma_sm90_gmma.hpp>

namespace gna::sm90 {

namespace gmma = cute::SM90::GMMA;

template <class Element, int N>
struct GmmaOps;

// SS: both operands from shared memory, both K-major (S = Q K^T).
// SS_MN: both from shared memory, both MN-major (the backward's dQ = dS K,
//        dS stored queries-contiguous, K head-dim-contiguous).
// RS: A (the probabilities P) from registers, B (V) MN-major in shared memory.
#define GNA_GMMA_OPS(N)                                                                   \
  template <>                                                                             \
  struct GmmaOps<__half, N> {                                                             \
    using SS = gmma::MMA_64x##N##x16_F32F16F16_SS<gmma::Major::K, gmma::Major::K>;         \
    using SS_MN = gmma::MMA_64x##N##x16_F32F16F16_SS<gmma::Major::MN, gmma::Major::MN>;    \
    using RS = gmma::MMA_64x##N##x16_F32F16F16_RS<gmma::Major::K, gmma::Major::MN>;        \
  };                                                                                      \
  template <>                                                                             \
  struct GmmaOps<__nv_bfloat16, N> {                                                      \
    using SS = gmma::MMA_64x##N##x16_F32BF16BF16_SS<gmma::Major::K, gmma::Major::K>;       \
    using SS_MN = gmma::MMA_64x##N##x16_F32BF16BF16_SS<gmma::Major::MN, gmma::Major::MN>;  \
    using RS = gmma::MMA_64x##N##x16_F32BF16BF16_RS<gmma::Major::K, gmma::Major::MN>;      \
  };
GNA_GMMA_OPS(32)
GNA_GMMA_OPS(64)
GNA_GMMA_OPS(128)
GNA_GMMA_OPS(256)
#undef GNA_GMMA_OPS

template <class Op, size_t... I>
__device__ __forceinline__ void ss_call(uint64_t a, uint64_t b, float* acc, gmma::ScaleOut scale,
                                        std::index_sequence<I...>) {
  Op::fma(a, b, acc[I]..., scale);
}

template <class Op, size_t... I>
__device__ __forceinline__ void rs_call(const uint32_t* a, uint64_t b, float* acc,
                                        std::index_sequence<I...>) {
  Op::fma(a[0], a[1], a[2], a[3], b, acc[I]..., gmma::ScaleOut::One);
}

// acc (+)= A[64 x 16] * B[16 x N], A and B described by smem descriptors.
template <class Element, int N>
__device__ __forceinline__ void gmma_ss(uint64_t desc_a, uint64_t desc_b, float (&acc)[N / 2],
                                        bool accumulate) {
  ss_call<typename GmmaOps<Element, N>::SS>(
      desc_a, desc_b, acc, accumulate ? gmma::ScaleOut::One : gmma::ScaleOut::Zero,
      std::make_index_sequence<N / 2>{});
}

// The same with both operands MN-major.
template <class Element, int N>
__device__ __forceinline__ void gmma_ss_mn(uint64_t desc_a, uint64_t desc_b, float (&acc)[N / 2],
                                           bool accumulate) {
  ss_call<typename GmmaOps<Element, N>::SS_MN>(
      desc_a, desc_b, acc, accumulate ? gmma::ScaleOut::One : gmma::ScaleOut::Zero,
      std::make_index_sequence<N / 2>{});
}

// acc += A[64 x 16] * B[16 x N], A in registers (4 packed pairs per thread).
template <class Element, int N>
__device__ __forceinline__ void gmma_rs(const uint32_t (&a)[4], uint64_t desc_b,
                                        float (&acc)[N / 2]) {
  rs_call<typename GmmaOps<Element, N>::RS>(a, desc_b, acc, std::make_index_sequence<N / 2>{});
}

// Keeps the compiler from moving accumulator reads/writes across the
// asynchronous wgmma that owns them.
template <int Count>
__device__ __forceinline__ void fence_registers(float (&acc)[Count]) {
#pragma unroll
  for (int i = 0; i < Count; ++i) cute::warpgroup_fence_operand(acc[i]);
}

__device__ __forceinline__ void gmma_fence() { cute::warpgroup_arrive(); }
__device__ __forceinline__ void gmma_commit() { cute::warpgroup_commit_batch(); }
template <int Pending>
__device__ __forceinline__ void gmma_wait() { cute::warpgroup_wait<Pending>(); }

// Two floats rounded to the element type and packed into one register, in
// the order the wgmma A fragment expects (lower column in the low half).
template <class Element>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);

template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

}  // namespace gna::sm90
