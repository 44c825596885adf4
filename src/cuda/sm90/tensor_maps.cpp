#include "cuda/sm90/tensor_maps.hpp"

#include <cuda_runtime.h>
#include <cudaTypedefs.h>

#include <string>

#include "gna/error.hpp"

namespace gna::sm90 {
namespace {

// The driver's encoder, found through the runtime so that libgna does not
// link libcuda (CPU-only machines load it fine).
PFN_cuTensorMapEncodeTiled_v12000 encoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult found{};
    const cudaError_t status =
        cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault,
                                         &found);
    if (status != cudaSuccess || found != cudaDriverEntryPointSuccess || p == nullptr) {
      throw Error(ErrorKind::runtime, "sm90",
                  "sm90: the CUDA driver has no cuTensorMapEncodeTiled (driver too old?)");
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

}  // namespace

bool heads_merge(const TensorView& t, int rank) {
  return t.stride[rank + 2] == 1 && (t.shape[rank + 1] == 1 || t.stride[rank + 1] == t.shape[rank + 2]);
}

bool batch_merges(const TensorView& t, int rank) {
  return t.shape[0] == 1 || t.stride[0] == t.shape[1] * t.stride[1];
}

CUtensorMap encode_map(const MapRequest& r, MapCoords* coords) {
  const TensorView& t = *r.tensor;
  const int rank = r.rank;
  const int64_t elem = 2;
  const int64_t heads = t.shape[rank + 1], dim = t.shape[rank + 2];
  // Spatial extents and strides per kernel axis (unused axes: one token).
  int64_t extent[3] = {1, 1, 1}, stride[3] = {0, 0, 0};
  for (int a = 0; a < rank; ++a) {
    extent[a] = t.shape[1 + a];
    stride[a] = t.stride[1 + a];
  }
  char* base = static_cast<char*>(t.data);
  if (r.per_batch) base += r.batch * t.stride[0] * elem;

  // Map axes, innermost first: head dim (with heads merged when they form
  // one run), X2, X1, X0 (with batch merged when it continues X0), then
  // heads or batch.
  const bool merge_heads = heads_merge(t, rank);
  const bool merge_batch = !r.per_batch && !merge_heads;
  if (merge_batch && !batch_merges(t, rank)) {
    throw Error(ErrorKind::runtime, "sm90", "sm90: internal: tensor needs per-batch maps");
  }
  cuuint64_t dims[5];
  cuuint64_t strides[4];  // bytes, of dims 1..4
  dims[0] = static_cast<cuuint64_t>(merge_heads ? heads * dim : dim);
  for (int a = 0; a < 3; ++a) {
    dims[3 - a] = static_cast<cuuint64_t>(extent[a]);
    strides[2 - a] = static_cast<cuuint64_t>(stride[a] * elem);
  }
  *coords = MapCoords{};
  if (merge_heads) {
    coords->head_in_c0 = static_cast<int32_t>(dim);
    dims[4] = static_cast<cuuint64_t>(r.per_batch ? 1 : t.shape[0]);
    strides[3] = static_cast<cuuint64_t>(t.stride[0] * elem);
    coords->batch_in_c4 = r.per_batch ? 0 : 1;
  } else {
    if (merge_batch) {
      dims[3] = static_cast<cuuint64_t>(extent[0] * t.shape[0]);
      coords->batch_in_c3 = static_cast<int32_t>(extent[0]);
    }
    dims[4] = static_cast<cuuint64_t>(heads);
    strides[3] = static_cast<cuuint64_t>(t.stride[rank + 1] * elem);
    coords->head_in_c4 = 1;
  }
  // A one-token axis has no stride of its own; any legal value serves. A
  // zero stride on a longer axis would read wrong rows: callers route
  // broadcast batches through per-batch maps and refuse other broadcasts.
  for (int i = 0; i < 4; ++i) {
    if (dims[i + 1] == 1) {
      strides[i] = 16;
    } else if (strides[i] == 0) {
      throw Error(ErrorKind::runtime, "sm90", "sm90: internal: a broadcast axis reached a tensor map");
    }
  }
  cuuint32_t box[5] = {static_cast<cuuint32_t>(r.chunk), 1, 1, 1, 1};
  cuuint32_t traversal[5] = {1, 1, 1, 1, 1};
  for (int a = 0; a < 3; ++a) {
    box[3 - a] = static_cast<cuuint32_t>(r.box[a] * r.dilation[a]);
    traversal[3 - a] = static_cast<cuuint32_t>(r.dilation[a]);
  }

  CUtensorMap map;
  const CUresult status = encoder()(
      &map, t.dtype == DType::bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
      5, base, dims, strides, box, traversal, CU_TENSOR_MAP_INTERLEAVE_NONE,
      r.swizzle == Swizzle::b128 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_64B,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (status != CUDA_SUCCESS) {
    throw Error(ErrorKind::runtime, "sm90",
                "sm90: cuTensorMapEncodeTiled failed with CUresult " + std::to_string(status));
  }
  return map;
}

}  // namespace gna::sm90
