#include "cpu/rows.hpp"

#include <algorithm>
#include <vector>

#include "core/half.hpp"
#include "cpu/thread_pool.hpp"
#include "cpu/tile_walk.hpp"

namespace gna::cpu {
namespace {


float load_float(const TensorView& t, int64_t offset) {
  switch (t.dtype) {
    case DType::f32: return static_cast<const float*>(t.data)[offset];
    case DType::f16: return detail::f16_to_float(static_cast<const uint16_t*>(t.data)[offset]);
    case DType::bf16: return detail::bf16_to_float(static_cast<const uint16_t*>(t.data)[offset]);
    case DType::f64: return static_cast<float>(static_cast<const double*>(t.data)[offset]);
  }
  return 0.0f;
}

}  // namespace

void Fp32Rows::prepare(const TensorView& t, int rank, int threads) {
  base_ = nullptr;
  rank_ = rank;
  if (!t.defined()) return;
  const int dims = rank + 3;
  if (t.dtype == DType::f32 && t.stride[dims - 1] == 1) {
    for (int i = 0; i < dims; ++i) stride_[i] = t.stride[i];
    base_ = static_cast<const float*>(t.data);
    return;
  }
  // A contiguous copy: strides of a row-major [B, X.., H, D].
  int64_t step = 1;
  for (int i = dims - 1; i >= 0; --i) {
    stride_[i] = step;
    step *= t.shape[i];
  }
  copy_.resize(static_cast<size_t>(step));
  const int64_t dim = t.shape[dims - 1];
  const int64_t rows = dim == 0 ? 0 : step / dim;
  parallel_for_chunks(rows, threads, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      // Row r of the copy is (b, x.., h) in row-major order; find its source.
      int64_t rest = r, source = 0;
      for (int i = dims - 2; i >= 0; --i) {
        source += (rest % t.shape[i]) * t.stride[i];
        rest /= t.shape[i];
      }
      float* out = copy_.data() + r * dim;
      for (int64_t e = 0; e < dim; ++e) out[e] = load_float(t, source + e * t.stride[dims - 1]);
    }
  });
  base_ = copy_.data();
}

void Fp32Rows::prepare_grouped(const TensorView& t, int rank, int group, int threads,
                               AlignedFloats& storage) {
  base_ = nullptr;
  rank_ = rank;
  if (!t.defined()) return;
  const int dims = rank + 3;
  const int64_t heads = t.shape[dims - 2], dim = t.shape[dims - 1];
  // Strides of a row-major [B, X.., H / group, D, kHeadBlock].
  stride_[dims - 1] = kHeadBlock;
  stride_[dims - 2] = dim * kHeadBlock;
  int64_t step = (heads / group) * stride_[dims - 2];
  for (int i = dims - 3; i >= 0; --i) {
    stride_[i] = step;
    step *= t.shape[i];
  }
  // Every float of the copy is written below: no zeroing first.
  float* const copy = storage.reserve(static_cast<size_t>(std::max<int64_t>(step, 1)));
  const int64_t token_floats = stride_[dims - 3];
  const int64_t tokens = token_floats == 0 ? 0 : step / token_floats;
  const bool f32 = t.dtype == DType::f32 && t.stride[dims - 1] == 1;
  parallel_for_chunks(tokens, threads, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(f32 ? 0 : heads * dim));
    // Token r of the copy is (b, x..) in row-major order: the coordinates
    // of the first token, then an odometer.
    int64_t x[kMaxTensorDims] = {};
    int64_t rest = begin;
    for (int i = dims - 3; i >= 0; --i) {
      x[i] = rest % t.shape[i];
      rest /= t.shape[i];
    }
    for (int64_t r = begin; r < end; ++r) {
      int64_t source = 0;
      for (int i = 0; i <= dims - 3; ++i) source += x[i] * t.stride[i];
      for (int i = dims - 3; i >= 0 && ++x[i] == t.shape[i]; --i) x[i] = 0;
      float* out = copy + r * token_floats;
      if (!f32) {  // the token's heads as fp32 rows first
        for (int64_t h = 0; h < heads; ++h) {
          const int64_t from = source + h * t.stride[dims - 2];
          for (int64_t e = 0; e < dim; ++e) {
            row[static_cast<size_t>(h * dim + e)] = load_float(t, from + e * t.stride[dims - 1]);
          }
        }
      }
      for (int64_t block = 0; block < heads / group; ++block) {
        const float* in[kHeadBlock];
        for (int k = 0; k < kHeadBlock; ++k) {
          const int64_t h = block * group + k % group;
          in[k] = f32 ? static_cast<const float*>(t.data) + source + h * t.stride[dims - 2]
                      : row.data() + h * dim;
        }
        interleave_rows(in, dim, out + block * stride_[dims - 2]);
      }
    }
  });
  base_ = copy;
}

void store_row(const TensorView& t, int64_t row, const float* src, int64_t step, int64_t n,
               float scale) {
  const int64_t es = t.stride[t.ndim - 1];
  switch (t.dtype) {
    case DType::f32: {
      float* out = static_cast<float*>(t.data) + row;
      if (es == 1 && step == 1) {  // the common case, vectorized by the compiler
        for (int64_t e = 0; e < n; ++e) out[e] = src[e] * scale;
      } else if (es == 1) {
        for (int64_t e = 0; e < n; ++e) out[e] = src[e * step] * scale;
      } else {
        for (int64_t e = 0; e < n; ++e) out[e * es] = src[e * step] * scale;
      }
      break;
    }
    case DType::f16: {
      uint16_t* out = static_cast<uint16_t*>(t.data) + row;
      for (int64_t e = 0; e < n; ++e) out[e * es] = detail::float_to_f16(src[e * step] * scale);
      break;
    }
    case DType::bf16: {
      uint16_t* out = static_cast<uint16_t*>(t.data) + row;
      for (int64_t e = 0; e < n; ++e) out[e * es] = detail::float_to_bf16(src[e * step] * scale);
      break;
    }
    case DType::f64: {
      double* out = static_cast<double*>(t.data) + row;
      for (int64_t e = 0; e < n; ++e) out[e * es] = src[e * step] * scale;
      break;
    }
  }
}

void zero_fill(const TensorView& t) {
  const int64_t size = static_cast<int64_t>(dtype_size(t.dtype));
  for_each_element(t, [&](int64_t off) {
    unsigned char* p = static_cast<unsigned char*>(t.data) + off * size;
    for (int64_t k = 0; k < size; ++k) p[k] = 0;  // +0.0 in every dtype
    return true;
  });
}

}  // namespace gna::cpu
