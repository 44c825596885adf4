// Packed variable-length attention on offsets that live on the GPU
// (DeviceOffsets, cuda-generic's packed kernels) against the reference
// backend run on the same problem with host offsets: random sequence
// lengths (0 and 1 included, more queries than keys, keys without queries),
// GQA, Dv != D, head dims past one register slice, causal, fp16/bf16/fp32,
// forward and backward with and without a gradient into the LSE. Also:
// bad offsets give NaN outputs and a status record (never a fault:
// `compute-sanitizer gna_gpu_tests --gtest_filter='*PackedOffsets*Small*'`),
// a too small max_seqlen is recorded while the result stays right, and a
// call captures into a CUDA graph (so it never waits for the GPU).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/half.hpp"
#include "gna/gna.hpp"
#include "harness/buffer.hpp"
#include "harness/tensors.hpp"

namespace gna {
namespace {

#define CUDA_OK(call)                                                                \
  do {                                                                               \
    const cudaError_t status_ = (call);                                              \
    ASSERT_EQ(status_, cudaSuccess) << #call << ": " << cudaGetErrorString(status_); \
  } while (0)

struct Case {
  std::vector<int64_t> lq, lk;  // per sequence
  int64_t heads = 2, kv_heads = 1, dim = 32, dim_v = 32;
  DType dtype = DType::f16;
  bool causal = false;
  bool grad_lse = true;
  std::optional<double> scale;

  std::string describe() const {
    std::ostringstream os;
    os << dtype_name(dtype) << " H " << heads << " Hkv " << kv_heads << " D " << dim << " Dv "
       << dim_v << (causal ? " causal" : "") << (grad_lse ? " dLSE" : "") << " lq [";
    for (int64_t n : lq) os << n << " ";
    os << "] lk [";
    for (int64_t n : lk) os << n << " ";
    os << "]";
    return os.str();
  }
};

std::vector<int64_t> offsets_of(const std::vector<int64_t>& lengths) {
  std::vector<int64_t> out{0};
  for (int64_t n : lengths) out.push_back(out.back() + n);
  return out;
}

// A contiguous [1, tokens, heads, dim] (or [1, tokens, heads]) tensor on the
// host with a copy on the GPU.
struct Pair {
  std::vector<unsigned char> host;
  harness::Buffer device;
  TensorView host_view, device_view;

  Pair(DType dtype, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    host.assign(static_cast<size_t>(n) * dtype_size(dtype), 0);
    device = harness::Buffer(Device{DeviceType::cuda, 0}, std::max<size_t>(host.size(), 1));
    host_view = TensorView::contiguous(host.data(), dtype, static_cast<int>(shape.size()),
                                       shape.data());
    device_view = TensorView::contiguous(device.data(), dtype, static_cast<int>(shape.size()),
                                         shape.data(), Device{DeviceType::cuda, 0});
  }
  int64_t numel() const { return host_view.numel(); }
  void fill(std::mt19937_64& rng) {
    std::normal_distribution<double> normal;
    for (int64_t i = 0; i < numel(); ++i) {
      detail::store_from_double(host.data(), host_view.dtype, i, normal(rng));
    }
    upload();
  }
  void upload() {
    if (!host.empty()) device.upload(host.data(), host.size());
  }
  // The GPU's values, as a host view (for comparison).
  std::vector<unsigned char> downloaded() const {
    std::vector<unsigned char> out(host.size());
    if (!out.empty()) device.download(out.data(), out.size());
    return out;
  }
  void poison() { device.fill_byte(0x7f); }
};

// Int32 offsets on the GPU.
struct DeviceInts {
  harness::Buffer buffer;
  explicit DeviceInts(const std::vector<int64_t>& values)
      : buffer(Device{DeviceType::cuda, 0}, values.size() * sizeof(int32_t)) {
    std::vector<int32_t> v(values.begin(), values.end());
    buffer.upload(v.data(), v.size() * sizeof(int32_t));
  }
  const int32_t* get() const { return static_cast<const int32_t*>(buffer.data()); }
};

// OffsetsStatus in GPU memory, zeroed.
struct DeviceStatus {
  harness::Buffer buffer{Device{DeviceType::cuda, 0}, sizeof(OffsetsStatus)};
  DeviceStatus() { buffer.fill_byte(0); }
  int32_t* get() const { return static_cast<int32_t*>(buffer.data()); }
  OffsetsStatus read() const {
    OffsetsStatus s;
    buffer.download(&s, sizeof(s));
    return s;
  }
};

// Checks `got` (bytes of a tensor like `want`) as harness::run_case does.
void expect_close(const std::vector<unsigned char>& got, const TensorView& want,
                  DType problem_dtype, bool lse, const std::string& what) {
  TensorView g = want;
  g.data = const_cast<unsigned char*>(got.data());
  const harness::Difference d = harness::compare(g, want);
  const double scale = lse ? 1.0 : std::max(1.0, d.ref_max);
  EXPECT_TRUE(d.finite) << what << ": non-finite values";
  EXPECT_LE(d.max_abs, harness::tolerance(problem_dtype, lse) * scale)
      << what << ": max error " << d.max_abs << " (reference max " << d.ref_max << ")";
}

bool all_nan(const std::vector<unsigned char>& bytes, DType dtype) {
  const int64_t n = static_cast<int64_t>(bytes.size() / dtype_size(dtype));
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isnan(detail::load_as_double(bytes.data(), dtype, i))) return false;
  }
  return true;
}

class PackedOffsets : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible";
    const std::vector<std::string> built = backend_names();
    if (std::find(built.begin(), built.end(), "cuda-generic") == built.end()) {
      GTEST_SKIP() << "cuda-generic is not built into this library";
    }
  }

  // Everything a call needs, on both sides.
  struct Problem {
    int64_t Lq = 0, Lk = 0;
    Pair q, k, v, o, lse, dout, dlse, dq, dk, dv;
    Problem(const Case& c, int64_t Lq_, int64_t Lk_)
        : Lq(Lq_), Lk(Lk_),
          q(c.dtype, {1, Lq_, c.heads, c.dim}), k(c.dtype, {1, Lk_, c.kv_heads, c.dim}),
          v(c.dtype, {1, Lk_, c.kv_heads, c.dim_v}), o(c.dtype, {1, Lq_, c.heads, c.dim_v}),
          lse(DType::f32, {1, Lq_, c.heads}), dout(c.dtype, {1, Lq_, c.heads, c.dim_v}),
          dlse(DType::f32, {1, Lq_, c.heads}), dq(c.dtype, {1, Lq_, c.heads, c.dim}),
          dk(c.dtype, {1, Lk_, c.kv_heads, c.dim}), dv(c.dtype, {1, Lk_, c.kv_heads, c.dim_v}) {}

    ForwardArgs forward_args(bool on_device) const {
      auto view = [&](const Pair& p) { return on_device ? p.device_view : p.host_view; };
      ForwardArgs a;
      a.query = view(q);
      a.key = view(k);
      a.value = view(v);
      a.output = view(o);
      a.lse = view(lse);
      return a;
    }
    BackwardArgs backward_args(bool on_device, bool with_dlse) const {
      auto view = [&](const Pair& p) { return on_device ? p.device_view : p.host_view; };
      BackwardArgs a;
      a.query = view(q);
      a.key = view(k);
      a.value = view(v);
      a.output = view(o);
      a.lse = view(lse);
      a.grad_output = view(dout);
      if (with_dlse) a.grad_lse = view(dlse);
      a.grad_query = view(dq);
      a.grad_key = view(dk);
      a.grad_value = view(dv);
      return a;
    }
  };

  // Runs `c` on the GPU with device offsets and on the reference with host
  // offsets, and compares every output.
  void run(const Case& c, uint64_t seed) {
    SCOPED_TRACE(c.describe());
    const std::vector<int64_t> qo = offsets_of(c.lq), ko = offsets_of(c.lk);
    Problem p(c, qo.back(), ko.back());
    std::mt19937_64 rng(seed);
    for (Pair* t : {&p.q, &p.k, &p.v, &p.dout, &p.dlse}) t->fill(rng);
    const DenseParams params{c.causal, c.scale};

    // Reference: host offsets, host tensors; its O and LSE feed both backwards.
    Options reference;
    reference.backend = "reference";
    const Sequences host_sequences{qo, ko};
    attention_forward(params, p.forward_args(false), host_sequences, reference);
    Pair want_dq(c.dtype, {1, p.Lq, c.heads, c.dim});
    Pair want_dk(c.dtype, {1, p.Lk, c.kv_heads, c.dim});
    Pair want_dv(c.dtype, {1, p.Lk, c.kv_heads, c.dim_v});
    {
      BackwardArgs b = p.backward_args(false, c.grad_lse);
      b.grad_query = want_dq.host_view;
      b.grad_key = want_dk.host_view;
      b.grad_value = want_dv.host_view;
      attention_backward(params, b, host_sequences, reference);
    }

    const DeviceInts dqo(qo), dko(ko);
    const DeviceStatus status;
    const DeviceOffsets device_sequences{dqo.get(), dko.get(),
                                            static_cast<int64_t>(c.lq.size()),
                                            *std::max_element(c.lq.begin(), c.lq.end()),
                                            *std::max_element(c.lk.begin(), c.lk.end()),
                                            status.get()};
    Options gpu;
    gpu.backend = "auto";  // device offsets: cuda-generic
    p.o.poison();
    p.lse.poison();
    EXPECT_EQ(attention_forward(params, p.forward_args(true), device_sequences, gpu),
              "cuda-generic");
    expect_close(p.o.downloaded(), p.o.host_view, c.dtype, false, "output");
    expect_close(p.lse.downloaded(), p.lse.host_view, c.dtype, true, "lse");

    // The backward reads the reference's O and LSE, like the reference did.
    p.o.upload();
    p.lse.upload();
    for (Pair* t : {&p.dq, &p.dk, &p.dv}) t->poison();
    EXPECT_EQ(attention_backward(params, p.backward_args(true, c.grad_lse), device_sequences, gpu),
              "cuda-generic");
    expect_close(p.dq.downloaded(), want_dq.host_view, c.dtype, false, "grad_query");
    expect_close(p.dk.downloaded(), want_dk.host_view, c.dtype, false, "grad_key");
    expect_close(p.dv.downloaded(), want_dv.host_view, c.dtype, false, "grad_value");
    EXPECT_EQ(status.read().code, OffsetsStatus::ok) << describe(status.read());
  }

  // Random packed problems; `causal` gives every sequence lq == lk.
  Case random_case(std::mt19937_64& rng, bool causal) {
    auto pick = [&](std::initializer_list<int64_t> options) {
      std::uniform_int_distribution<size_t> i(0, options.size() - 1);
      return *(options.begin() + i(rng));
    };
    Case c;
    c.causal = causal;
    c.dtype = std::vector<DType>{DType::f16, DType::bf16, DType::f32}[rng() % 3];
    c.kv_heads = pick({1, 2});
    c.heads = c.kv_heads * pick({1, 2, 3});
    c.dim = pick({8, 32, 40, 64, 128, 160});
    c.dim_v = rng() % 2 ? c.dim : pick({8, 24, 64, 96, 300});
    c.grad_lse = rng() % 2;
    if (rng() % 4 == 0) c.scale = 0.3;
    const int64_t sequences = pick({1, 2, 3, 5, 8});
    for (int64_t s = 0; s < sequences; ++s) {
      const int64_t lq = pick({0, 1, 2, 7, 19, 33, 70});
      int64_t lk = causal ? lq : pick({0, 1, 3, 16, 40, 65});
      if (lq > 0 && lk == 0) lk = 1;  // every query needs a key
      c.lq.push_back(lq);
      c.lk.push_back(lk);
    }
    return c;
  }
};

TEST_F(PackedOffsets, RandomCrossAttentionSmall) {
  std::mt19937_64 rng(7);
  for (uint64_t i = 0; i < 24; ++i) run(random_case(rng, false), 100 + i);
}

TEST_F(PackedOffsets, RandomCausalSmall) {
  std::mt19937_64 rng(8);
  for (uint64_t i = 0; i < 12; ++i) run(random_case(rng, true), 200 + i);
}

TEST_F(PackedOffsets, HandPickedLengthsSmall) {
  Case c;
  c.heads = 4;
  c.kv_heads = 2;
  c.dim = 64;
  c.dim_v = 48;
  c.dtype = DType::f32;
  // Empty sequences first, in the middle and last; one query; more queries
  // than keys; keys without queries.
  c.lq = {0, 1, 50, 0, 3, 0};
  c.lk = {0, 1, 4, 9, 60, 2};
  run(c, 1);
  c.dtype = DType::bf16;
  run(c, 2);
  c.lq = {37};  // one sequence, more queries than keys
  c.lk = {5};
  c.dtype = DType::f16;
  run(c, 3);
}

// Offsets breaking each rule: every output NaN, the first problem recorded
// in the status, which later calls leave alone.
TEST_F(PackedOffsets, BadOffsetsGiveNaNAndStatusSmall) {
  Case c;
  c.dtype = DType::f16;
  c.lq = {3, 5};
  c.lk = {4, 4};
  struct Bad {
    std::vector<int64_t> qo, ko;
    bool causal;
    OffsetsStatus::Code code;
    int32_t index;
  };
  const std::vector<Bad> bad{
      {{1, 3, 8}, {0, 4, 8}, false, OffsetsStatus::query_start, 0},
      {{0, 3, 8}, {2, 4, 8}, false, OffsetsStatus::key_start, 0},
      {{0, 9, 8}, {0, 4, 8}, false, OffsetsStatus::query_decreasing, 2},
      {{0, 3, 8}, {0, 9, 8}, false, OffsetsStatus::key_decreasing, 2},
      {{0, 3, 7}, {0, 4, 8}, false, OffsetsStatus::query_end, 2},
      {{0, 3, 8}, {0, 4, 1000000}, false, OffsetsStatus::key_end, 2},
      {{0, 3, 8}, {0, 8, 8}, false, OffsetsStatus::no_keys, 1},
      {{0, 3, 8}, {0, 4, 8}, true, OffsetsStatus::causal_lengths, 0},
      {{0, -5, 8}, {0, 4, 8}, false, OffsetsStatus::query_decreasing, 1},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(static_cast<int>(b.code));
    Problem p(c, 8, 8);
    std::mt19937_64 rng(3);
    for (Pair* t : {&p.q, &p.k, &p.v, &p.dout, &p.dlse, &p.o, &p.lse}) t->fill(rng);
    const DeviceInts dqo(b.qo), dko(b.ko);
    const DeviceStatus status;
    const DeviceOffsets s{dqo.get(), dko.get(), 2, -1, -1, status.get()};
    Options gpu;
    gpu.backend = "cuda-generic";
    const DenseParams params{b.causal, std::nullopt};
    attention_forward(params, p.forward_args(true), s, gpu);
    EXPECT_TRUE(all_nan(p.o.downloaded(), c.dtype));
    EXPECT_TRUE(all_nan(p.lse.downloaded(), DType::f32));
    const OffsetsStatus first = status.read();
    EXPECT_EQ(first.code, b.code) << describe(first);
    EXPECT_EQ(first.index, b.index) << describe(first);
    EXPECT_FALSE(describe(first).empty());
    attention_backward(params, p.backward_args(true, true), s, gpu);
    EXPECT_TRUE(all_nan(p.dq.downloaded(), c.dtype));
    EXPECT_TRUE(all_nan(p.dk.downloaded(), c.dtype));
    EXPECT_TRUE(all_nan(p.dv.downloaded(), c.dtype));
    const OffsetsStatus after = status.read();
    EXPECT_EQ(std::memcmp(&first, &after, sizeof(first)), 0);  // the first problem stays
  }
}

// A max_seqlen below a sequence's length is recorded; the result is right.
TEST_F(PackedOffsets, SmallMaxSeqlenIsRecordedSmall) {
  Case c;
  c.dtype = DType::f32;
  c.lq = {2, 6};
  c.lk = {5, 3};
  Problem p(c, 8, 8);
  std::mt19937_64 rng(4);
  for (Pair* t : {&p.q, &p.k, &p.v}) t->fill(rng);
  const std::vector<int64_t> qo = offsets_of(c.lq), ko = offsets_of(c.lk);
  Options reference;
  reference.backend = "reference";
  attention_forward(DenseParams{}, p.forward_args(false), Sequences{qo, ko}, reference);
  const DeviceInts dqo(qo), dko(ko);
  for (const auto& [q_max, k_max, code, index] :
       {std::tuple{5, 5, OffsetsStatus::query_above_max, 1},
        std::tuple{6, 4, OffsetsStatus::key_above_max, 0}}) {
    const DeviceStatus status;
    const DeviceOffsets s{dqo.get(), dko.get(), 2, q_max, k_max, status.get()};
    Options gpu;
    gpu.backend = "cuda-generic";
    attention_forward(DenseParams{}, p.forward_args(true), s, gpu);
    expect_close(p.o.downloaded(), p.o.host_view, c.dtype, false, "output");
    const OffsetsStatus st = status.read();
    EXPECT_EQ(st.code, code) << describe(st);
    EXPECT_EQ(st.index, index) << describe(st);
  }
}

// Host-checkable rules still raise at once; other backends refuse device offsets.
TEST_F(PackedOffsets, HostRulesSmall) {
  Case c;
  c.lq = {4};
  c.lk = {4};
  Problem p(c, 4, 4);
  const DeviceInts offsets(std::vector<int64_t>{0, 4});
  const DeviceOffsets s{offsets.get(), offsets.get(), 1, -1, -1, nullptr};
  Options sm90;
  sm90.backend = "sm90";
  EXPECT_THROW(attention_forward(DenseParams{}, p.forward_args(true), s, sm90), Error);
  const std::vector<int32_t> host_offsets{0, 4};
  const DeviceOffsets on_host{host_offsets.data(), host_offsets.data(), 1, -1, -1, nullptr};
  EXPECT_THROW(attention_forward(DenseParams{}, p.forward_args(true), on_host, Options{}), Error);
  DeviceOffsets too_big = s;
  too_big.query_max = 5;
  EXPECT_THROW(attention_forward(DenseParams{}, p.forward_args(true), too_big, Options{}), Error);
}

// A forward and a backward capture into a CUDA graph (nothing waits for the
// GPU: a sync or a device-to-host copy would invalidate the capture) and
// replay to the reference's results.
TEST_F(PackedOffsets, GraphCaptureSmall) {
  Case c;
  c.dtype = DType::f32;
  c.heads = 2;
  c.kv_heads = 2;
  c.lq = {3, 0, 9};
  c.lk = {6, 2, 4};
  const std::vector<int64_t> qo = offsets_of(c.lq), ko = offsets_of(c.lk);
  Problem p(c, qo.back(), ko.back());
  std::mt19937_64 rng(5);
  for (Pair* t : {&p.q, &p.k, &p.v, &p.dout, &p.dlse}) t->fill(rng);
  Options reference;
  reference.backend = "reference";
  attention_forward(DenseParams{}, p.forward_args(false), Sequences{qo, ko}, reference);
  Pair want_dq(c.dtype, {1, p.Lq, 2, c.dim}), want_dk(c.dtype, {1, p.Lk, 2, c.dim}),
      want_dv(c.dtype, {1, p.Lk, 2, c.dim_v});
  BackwardArgs b = p.backward_args(false, true);
  b.grad_query = want_dq.host_view;
  b.grad_key = want_dk.host_view;
  b.grad_value = want_dv.host_view;
  attention_backward(DenseParams{}, b, Sequences{qo, ko}, reference);

  const DeviceInts dqo(qo), dko(ko);
  const DeviceOffsets s{dqo.get(), dko.get(), 3, 9, 6, nullptr};
  cudaStream_t stream = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  Options gpu;
  gpu.stream = stream;
  Pair o2(c.dtype, {1, p.Lq, 2, c.dim_v}), lse2(DType::f32, {1, p.Lq, 2});
  ForwardArgs f = p.forward_args(true);
  f.output = o2.device_view;  // the backward reads the reference's O and LSE
  f.lse = lse2.device_view;
  p.o.upload();
  p.lse.upload();
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  std::string error;
  try {
    attention_forward(DenseParams{}, f, s, gpu);
    attention_backward(DenseParams{}, p.backward_args(true, true), s, gpu);
  } catch (const std::exception& e) {
    error = e.what();
  }
  cudaGraph_t graph = nullptr;
  const cudaError_t end = cudaStreamEndCapture(stream, &graph);
  ASSERT_EQ(error, "");
  ASSERT_EQ(end, cudaSuccess) << "capture invalidated: " << cudaGetErrorString(end);
  cudaGraphExec_t exec = nullptr;
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  CUDA_OK(cudaGraphLaunch(exec, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  expect_close(o2.downloaded(), p.o.host_view, c.dtype, false, "output");
  expect_close(lse2.downloaded(), p.lse.host_view, c.dtype, true, "lse");
  expect_close(p.dq.downloaded(), want_dq.host_view, c.dtype, false, "grad_query");
  expect_close(p.dk.downloaded(), want_dk.host_view, c.dtype, false, "grad_key");
  expect_close(p.dv.downloaded(), want_dv.host_view, c.dtype, false, "grad_value");
}

}  // namespace
}  // namespace gna
