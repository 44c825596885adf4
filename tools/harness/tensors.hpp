// Random problems and the tensors of one problem, in a chosen memory layout,
// for `gna check`, `gna bench` and the tests.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gna/attention.hpp"
#include "harness/buffer.hpp"

namespace gna::harness {

// The space random problems are drawn from. Defaults cover every parameter
// of the semantics at sizes the reference finishes quickly.
struct RandomSpec {
  std::vector<int> ranks{1, 2, 3};
  std::vector<DType> dtypes{DType::f32};
  std::vector<int64_t> head_dims{8, 16, 32};
  int64_t max_extent = 20;
  int64_t max_tokens = 400;
  int64_t max_batch = 2;
  int64_t max_kv_heads = 2;
  int64_t max_group = 3;  // query heads per kv head
  bool dilation = true;
  bool causal = true;
  bool different_value_dim = true;
  bool extra_kv = true;
};

Problem random_problem(std::mt19937_64& rng, const RandomSpec& spec);

// How tensors sit in memory; all describe the same logical heads-last tensor.
enum class Layout {
  contiguous,   // row-major
  padded,       // every stride padded by 8 elements (rows stay 16-byte aligned)
  heads_first,  // memory order [B, H, X.., D], like a transposed torch tensor
  strided_dim,  // head-dim elements 2 apart (no unit stride anywhere)
};

const char* layout_name(Layout layout);
Layout random_layout(std::mt19937_64& rng, bool allow_strided_dim);

// All tensors of one problem, forward and backward, owned here. With
// `grad_lse` the backward also gets a gradient flowing into LSE (an input,
// strided unless the layout is contiguous).
class Tensors {
 public:
  Tensors(const Problem& problem, Device device, Layout layout, bool grad_lse = false);

  const Problem& problem() const { return problem_; }
  Device device() const { return device_; }

  // Inputs get uniform values in [-1, 1]; outputs are poisoned with NaN so
  // that an element nobody writes fails every comparison.
  void randomize_inputs(std::mt19937_64& rng);
  void poison_outputs();
  // Copies every tensor's memory from `other` (same problem and layout).
  void copy_from(const Tensors& other);
  // Copies only the forward results (output, lse) from `other`.
  void copy_forward_results_from(const Tensors& other);

  ForwardArgs forward_args() const;
  BackwardArgs backward_args() const;

  enum Slot { q, k, v, o, lse, xk, xv, dout, dq, dk, dv, dxk, dxv, dlse, slot_count };
  const TensorView& view(Slot slot) const { return views_[slot]; }
  // A host view of one tensor's memory, downloaded into `storage` when the
  // tensors live on a device.
  TensorView host_view(Slot slot, std::vector<unsigned char>& storage) const;

 private:
  // Copies one tensor's memory (through the host when on a device).
  void copy_slot_from(const Tensors& other, Slot slot);

  Problem problem_;
  Device device_;
  std::vector<TensorView> views_;
  std::vector<Buffer> buffers_;
};

const char* slot_name(Tensors::Slot slot);

// Largest |a - b| over the logical elements of two host tensors of the same
// shape, and the largest |b| (b is the reference).
struct Difference {
  double max_abs = 0.0;
  double ref_max = 0.0;
  bool finite = true;  // false if a NaN/inf appeared where the reference has none
};
Difference compare(const TensorView& a, const TensorView& b);

// Absolute tolerance for results in `dtype` computed by a fast backend.
double tolerance(DType dtype, bool is_lse);

}  // namespace gna::harness
