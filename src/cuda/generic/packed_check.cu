// The device-side check of packed offsets: the rules the host checks for
// host offsets (sequences.cpp), done without a sync. Entry i of the
// offsets is checked (start at 0, never decrease, end at the token count),
// then sequence i - 1 (keys for its queries, equal lengths when causal,
// lengths within max_seqlen). The first broken rule is reported: broken
// rules before mere max_seqlen overruns, then by index, then by code.
#include "cuda/generic/cuda_check.hpp"
#include "cuda/generic/packed_launch.hpp"

namespace gna::cuda_generic {
namespace {

using Code = OffsetsStatus::Code;

// The first rule broken at index i (0: none), with its record in `out`.
__device__ int32_t broken_rule(const PackedShape& s, int64_t query_max, int64_t key_max,
                               int64_t i, int32_t* out) {
  const int32_t* q = s.q_offsets;
  const int32_t* k = s.k_offsets;
  auto report = [&](Code code, int64_t index, int64_t value, int64_t expected) {
    if (out != nullptr) {
      out[0] = code;
      out[1] = static_cast<int32_t>(index);
      out[2] = static_cast<int32_t>(value);
      out[3] = static_cast<int32_t>(expected);
    }
    return static_cast<int32_t>(code);
  };
  if (i == 0) {
    if (q[0] != 0) return report(OffsetsStatus::query_start, 0, q[0], 0);
    if (k[0] != 0) return report(OffsetsStatus::key_start, 0, k[0], 0);
    return 0;
  }
  if (q[i] < q[i - 1]) return report(OffsetsStatus::query_decreasing, i, q[i], q[i - 1]);
  if (k[i] < k[i - 1]) return report(OffsetsStatus::key_decreasing, i, k[i], k[i - 1]);
  if (i == s.sequences) {
    if (q[i] != s.q_tokens) return report(OffsetsStatus::query_end, i, q[i], s.q_tokens);
    if (k[i] != s.k_tokens) return report(OffsetsStatus::key_end, i, k[i], s.k_tokens);
  }
  const int64_t lq = q[i] - q[i - 1], lk = k[i] - k[i - 1];
  if (lq > 0 && lk == 0) return report(OffsetsStatus::no_keys, i - 1, lq, 0);
  if (s.causal && lq != lk) return report(OffsetsStatus::causal_lengths, i - 1, lq, lk);
  if (query_max >= 0 && lq > query_max) {
    return report(OffsetsStatus::query_above_max, i - 1, lq, query_max);
  }
  if (key_max >= 0 && lk > key_max) {
    return report(OffsetsStatus::key_above_max, i - 1, lk, key_max);
  }
  return 0;
}

// Orders problems: broken rules first, then by index, then by code.
__device__ __forceinline__ unsigned long long rank_of(int32_t code, int64_t i) {
  const unsigned long long overrun = code > OffsetsStatus::kFatal ? 1ull << 62 : 0ull;
  return overrun | (static_cast<unsigned long long>(i) << 5) |
         static_cast<unsigned long long>(code);
}

constexpr int kCheckThreads = 256;

__global__ void __launch_bounds__(kCheckThreads)
    packed_check_kernel(const PackedShape s, int64_t query_max, int64_t key_max, int32_t* fatal,
                        int32_t* status) {
  __shared__ unsigned long long first;
  if (threadIdx.x == 0) first = ~0ull;
  __syncthreads();
  for (int64_t i = threadIdx.x; i <= s.sequences; i += blockDim.x) {
    const int32_t code = broken_rule(s, query_max, key_max, i, nullptr);
    if (code != 0) atomicMin(&first, rank_of(code, i));
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  if (first == ~0ull) {
    *fatal = 0;
    return;
  }
  int32_t record[4];
  broken_rule(s, query_max, key_max, static_cast<int64_t>((first & ((1ull << 62) - 1)) >> 5),
              record);
  *fatal = record[0] <= OffsetsStatus::kFatal ? 1 : 0;
  // The first problem recorded since the caller zeroed `status` stays.
  if (status != nullptr && atomicCAS(status, 0, record[0]) == 0) {
    status[1] = record[1];
    status[2] = record[2];
    status[3] = record[3];
  }
}

}  // namespace

void launch_packed_check(const PackedShape& shape, int64_t query_max, int64_t key_max,
                         int32_t* fatal, int32_t* status, cudaStream_t stream) {
  packed_check_kernel<<<1, kCheckThreads, 0, stream>>>(shape, query_max, key_max, fatal, status);
  check_launch("packed offsets check kernel launch");
}

}  // namespace gna::cuda_generic
