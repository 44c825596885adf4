#include "sweep.hpp"

#include <algorithm>

namespace gna::test {
namespace {

constexpr DType kDtypes[] = {DType::f32, DType::f64, DType::f16, DType::bf16};
constexpr harness::Layout kLayouts[] = {harness::Layout::contiguous, harness::Layout::padded,
                                        harness::Layout::heads_first,
                                        harness::Layout::strided_dim};

// Extents per axis by rank: at most ~400 tokens, so the oracle's T x T
// dense pass stays cheap.
constexpr int64_t kMaxExtent[] = {0, 64, 20, 7};

}  // namespace

std::string SweepCase::describe() const {
  return problem.describe() + " layout " + harness::layout_name(layout) +
         (problem.params.scale ? " scale " + std::to_string(*problem.params.scale) : "");
}

SweepCase sweep_case(uint64_t seed, int index) {
  std::mt19937_64 rng(seed * 7919 + static_cast<uint64_t>(index));
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  SweepCase c;
  c.seed = rng();
  Problem& p = c.problem;
  p.params.rank = 1 + index % 3;
  p.dtype = kDtypes[index % 4];
  c.layout = kLayouts[(index / 4) % 4];
  c.covers.insert("rank " + std::to_string(p.params.rank));
  c.covers.insert(dtype_name(p.dtype));
  c.covers.insert(harness::layout_name(c.layout));

  int causal_axes = 0;
  for (int a = 0; a < p.rank(); ++a) {
    const int64_t n = uniform(1, kMaxExtent[p.rank()]);
    p.extent[a] = n;
    AxisParams& ax = p.params.axis[a];
    ax.dilation = n >= 2 && uniform(0, 2) == 0 ? uniform(2, std::min<int64_t>(4, n)) : 1;
    const int64_t kmax = n / ax.dilation;
    switch (uniform(0, 3)) {
      case 0: ax.kernel_size = 1; break;
      case 1: ax.kernel_size = kmax; break;
      default: ax.kernel_size = uniform(1, kmax);
    }
    switch (uniform(0, 2)) {
      case 0: ax.stride = 1; break;
      case 1: ax.stride = ax.kernel_size; break;
      default: ax.stride = uniform(1, ax.kernel_size);
    }
    ax.is_causal = uniform(0, 2) == 0;
    causal_axes += ax.is_causal;

    const int64_t k = ax.kernel_size, s = ax.stride;
    c.covers.insert(k % 2 == 0 ? "even window" : "odd window");
    if (k == 1) c.covers.insert("window 1");
    if (k == n) c.covers.insert("window == axis");
    if (k > 1 && s == 1) c.covers.insert("stride 1");
    if (s > 1 && s < k) c.covers.insert("stride between");
    if (s > 1 && s == k) c.covers.insert("stride == window");
    if (ax.dilation > 1) {
      c.covers.insert(n % ax.dilation ? "dilation, n not a multiple" : "dilation, n a multiple");
    }
    if (n > 1 && n % 2 && n % 3 && n % 5) c.covers.insert("extent prime-like");
  }
  if (causal_axes > 0) c.covers.insert("causal");
  if (causal_axes > 0 && causal_axes < p.rank()) c.covers.insert("causal on some axes");

  p.batch = uniform(1, 2);
  p.kv_heads = uniform(1, 2);
  p.heads = p.kv_heads * uniform(1, 3);
  if (p.heads > p.kv_heads) c.covers.insert(p.kv_heads == 1 ? "MQA" : "GQA");
  const int64_t dims[] = {1, 3, 8, 16, 32};
  p.head_dim = dims[uniform(0, 4)];
  p.head_dim_v = uniform(0, 2) == 0 ? dims[uniform(0, 4)] : p.head_dim;
  if (p.head_dim_v != p.head_dim) c.covers.insert("Dv != D");
  p.extra_kv = uniform(0, 3) == 0 ? uniform(1, 5) : 0;
  if (p.extra_kv) c.covers.insert("additional KV");
  if (uniform(0, 1)) {
    p.params.scale = std::uniform_real_distribution<double>(0.1, 1.5)(rng);
    c.covers.insert("scale given");
  } else {
    c.covers.insert("scale default");
  }
  validate(p);
  return c;
}

const std::set<std::string>& required_coverage() {
  static const std::set<std::string> all{
      "rank 1", "rank 2", "rank 3", "float32", "float64", "float16", "bfloat16",
      "contiguous", "padded", "heads-first", "strided-dim",
      "even window", "odd window", "window 1", "window == axis",
      "stride 1", "stride between", "stride == window",
      "dilation, n not a multiple", "dilation, n a multiple", "extent prime-like",
      "causal", "causal on some axes", "MQA", "GQA", "Dv != D", "additional KV",
      "scale given", "scale default"};
  return all;
}

}  // namespace gna::test
