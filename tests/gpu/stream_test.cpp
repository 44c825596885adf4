// The backend runs on the caller's stream and nowhere else, never waits on
// the host, and launches nothing for empty problems.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "gpu_test.hpp"
#include "harness/buffer.hpp"

namespace gna::gpu_test {
namespace {

using harness::Tensors;

#define CUDA_OK(call)                                                                \
  do {                                                                               \
    const cudaError_t status_ = (call);                                              \
    ASSERT_EQ(status_, cudaSuccess) << #call << ": " << cudaGetErrorString(status_); \
  } while (0)

// Bytes a view spans in memory (its element strides may leave gaps).
size_t span_bytes(const TensorView& t) {
  int64_t span = 1;
  for (int i = 0; i < t.ndim; ++i) {
    if (t.shape[i] == 0) return 0;
    span += (t.shape[i] - 1) * t.stride[i];
  }
  return static_cast<size_t>(span) * dtype_size(t.dtype);
}

// A non-blocking stream, so that work on the legacy default stream does
// not wait for it (and it does not wait for that work).
class Stream {
 public:
  Stream() { cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking); }
  ~Stream() { cudaStreamDestroy(stream_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

class PinnedHost {
 public:
  explicit PinnedHost(size_t bytes) {
    if (bytes > 0) cudaMallocHost(&data_, bytes);
  }
  ~PinnedHost() { cudaFreeHost(data_); }
  PinnedHost(const PinnedHost&) = delete;
  PinnedHost& operator=(const PinnedHost&) = delete;
  void* get() const { return data_; }

 private:
  void* data_ = nullptr;
};

class StreamUse : public GpuTest {
 protected:
  Problem problem() const {
    Problem p = window_problem({16, 12}, {5, 3}, {1, 3});
    p.heads = 4;
    p.kv_heads = 2;
    p.extra_kv = 3;
    return p;
  }

  // Host inputs and the reference's forward (and backward) results.
  void reference(const Problem& p, Tensors& want, bool backward) {
    std::mt19937_64 rng(11);
    want.randomize_inputs(rng);
    gna::forward(p.params, want.forward_args(), options_for("reference"));
    if (backward) gna::backward(p.params, want.backward_args(), options_for("reference"));
  }

  void expect_same(const Tensors& got, const Tensors& want, Tensors::Slot slot) {
    std::vector<unsigned char> a, b;
    const harness::Difference d = harness::compare(got.host_view(slot, a), want.host_view(slot, b));
    const double tol = harness::tolerance(want.problem().dtype, slot == Tensors::lse) *
                       (slot == Tensors::lse ? 1.0 : std::max(1.0, d.ref_max));
    EXPECT_TRUE(d.finite && d.max_abs <= tol)
        << harness::slot_name(slot) << ": error " << d.max_abs << (d.finite ? "" : " (non-finite)");
  }
};

// Inputs reach the device only through copies queued on the stream behind a
// 200 ms host callback. A backend that launched anywhere else would read the
// NaN the inputs hold before then.
TEST_P(StreamUse, RunsOnCallersStreamSmall) {
  const Problem p = problem();
  const std::string why = reason(p, Pass::forward);
  if (!why.empty()) GTEST_SKIP() << backend_ << ": " << why;
  Tensors want(p, Device{}, harness::Layout::padded);
  reference(p, want, false);
  Tensors got(p, device_, harness::Layout::padded);
  got.poison_outputs();

  const Stream stream;
  const Tensors::Slot inputs[] = {Tensors::q, Tensors::k, Tensors::v, Tensors::xk, Tensors::xv};
  std::vector<std::unique_ptr<PinnedHost>> staging;
  for (Tensors::Slot s : inputs) {
    const size_t bytes = span_bytes(got.view(s));
    CUDA_OK(cudaMemset(got.view(s).data, 0xff, bytes));  // NaN until the copy lands
    staging.push_back(std::make_unique<PinnedHost>(bytes));
    std::memcpy(staging.back()->get(), want.view(s).data, bytes);
  }
  CUDA_OK(cudaDeviceSynchronize());
  CUDA_OK(cudaLaunchHostFunc(
      stream.get(), [](void*) { std::this_thread::sleep_for(std::chrono::milliseconds(200)); },
      nullptr));
  for (size_t i = 0; i < staging.size(); ++i) {
    const TensorView& t = got.view(inputs[i]);
    CUDA_OK(cudaMemcpyAsync(t.data, staging[i]->get(), span_bytes(t), cudaMemcpyHostToDevice,
                            stream.get()));
  }
  Options options;
  options.backend = backend_;
  options.stream = stream.get();
  ASSERT_EQ(gna::forward(p.params, got.forward_args(), options), backend_);
  CUDA_OK(cudaStreamSynchronize(stream.get()));
  expect_same(got, want, Tensors::o);
  expect_same(got, want, Tensors::lse);
}

// Captures forward (and backward) into a CUDA graph: capture fails if the
// backend synchronizes, uses another stream or allocates outside the stream.
TEST_P(StreamUse, GraphCaptureSmall) {
  for (Pass pass : {Pass::forward, Pass::backward}) {
    const Problem p = problem();
    const std::string why = reason(p, pass);
    if (!why.empty()) {
      ++skipped_;
      skip_reason_ = why;
      continue;
    }
    const bool backward = pass == Pass::backward;
    Tensors want(p, Device{}, harness::Layout::contiguous);
    reference(p, want, backward);
    Tensors got(p, device_, harness::Layout::contiguous);
    got.copy_from(want);
    got.poison_outputs();
    if (backward) got.copy_forward_results_from(want);

    const Stream stream;
    Options options;
    options.backend = backend_;
    options.stream = stream.get();
    CUDA_OK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeThreadLocal));
    std::string error;
    try {
      if (backward) {
        gna::backward(p.params, got.backward_args(), options);
      } else {
        gna::forward(p.params, got.forward_args(), options);
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(stream.get(), &graph);
    ASSERT_EQ(error, "");
    ASSERT_EQ(end, cudaSuccess) << "capture invalidated: " << cudaGetErrorString(end);
    cudaGraphExec_t exec = nullptr;
    CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_OK(cudaGraphLaunch(exec, stream.get()));
    CUDA_OK(cudaStreamSynchronize(stream.get()));
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    ++ran_;
    if (backward) {
      for (Tensors::Slot s : {Tensors::dq, Tensors::dk, Tensors::dv, Tensors::dxk, Tensors::dxv}) {
        expect_same(got, want, s);
      }
    } else {
      expect_same(got, want, Tensors::o);
      expect_same(got, want, Tensors::lse);
    }
  }
  GNA_SKIP_IF_NOTHING_RAN();
}

// Empty problems (an extent, the batch or the heads 0) launch nothing: the
// captured graph has no node, and memory behind the outputs' pointers keeps
// its contents.
TEST_P(StreamUse, EmptyProblemSmall) {
  harness::Buffer memory(device_, 4096);
  memory.fill_byte(0x5a);
  auto view = [&](std::vector<int64_t> shape, DType dtype) {
    return TensorView::contiguous(memory.data(), dtype, static_cast<int>(shape.size()),
                                  shape.data(), device_);
  };
  struct Extents {
    int64_t batch, tokens, heads;
  };
  for (Extents s : {Extents{1, 0, 2}, Extents{0, 16, 2}, Extents{1, 16, 0}}) {
    Params params;
    params.axis[0].kernel_size = 3;
    const TensorView qo = view({s.batch, s.tokens, s.heads, 64}, DType::f16);
    const TensorView kv = view({s.batch, s.tokens, 1, 64}, DType::f16);
    const TensorView l = view({s.batch, s.tokens, s.heads}, DType::f32);
    ForwardArgs fa{qo, kv, kv, qo, l, {}, {}};
    BackwardArgs ba{qo, kv, kv, qo, l, qo, {}, {}, {}, qo, kv, kv, {}, {}};
    const Stream stream;
    Options options;
    options.backend = backend_;
    options.stream = stream.get();
    for (Pass pass : {Pass::forward, Pass::backward}) {
      // Without query heads the keys still have a gradient (zero): that case
      // writes memory and is checked by BackwardWithoutQueryHeadsSmall.
      if (pass == Pass::backward && s.heads == 0 && s.batch > 0 && s.tokens > 0) continue;
      Problem p =
          pass == Pass::forward ? gna::make_problem(params, fa) : gna::make_problem(params, ba);
      const std::string why = reason(p, pass);
      if (!why.empty()) {
        ++skipped_;
        skip_reason_ = why;
        continue;
      }
      ++ran_;
      CUDA_OK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeThreadLocal));
      std::string ran_backend;
      try {
        ran_backend = pass == Pass::forward ? gna::forward(params, fa, options)
                                            : gna::backward(params, ba, options);
      } catch (const std::exception& e) {
        ran_backend = e.what();
      }
      cudaGraph_t graph = nullptr;
      CUDA_OK(cudaStreamEndCapture(stream.get(), &graph));
      size_t nodes = 0;
      CUDA_OK(cudaGraphGetNodes(graph, nullptr, &nodes));
      cudaGraphDestroy(graph);
      EXPECT_EQ(ran_backend, backend_);
      EXPECT_EQ(nodes, 0u) << "an empty problem queued work";
    }
  }
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<unsigned char> host(4096);
  memory.download(host.data(), host.size());
  EXPECT_EQ(std::count(host.begin(), host.end(), 0x5a), 4096) << "an empty problem wrote memory";
  GNA_SKIP_IF_NOTHING_RAN();
}

// Keys nobody attends to (kv heads but no query heads) get a zero gradient,
// not whatever the caller's buffer held.
TEST_P(StreamUse, BackwardWithoutQueryHeadsSmall) {
  Params params;
  params.axis[0].kernel_size = 3;
  const Problem probe = [&] {
    Problem p;
    p.params = params;
    p.extent[0] = 16;
    p.heads = 1;
    return p;
  }();
  const std::string why = reason(probe, Pass::backward);
  if (!why.empty()) GTEST_SKIP() << why;
  const int64_t keys_bytes = 16 * 64 * 2;
  harness::Buffer inputs(device_, 4096), grads(device_, 2 * keys_bytes);
  inputs.fill_byte(0);
  grads.fill_byte(0x5a);
  auto view = [&](void* data, std::vector<int64_t> shape, DType dtype) {
    return TensorView::contiguous(data, dtype, static_cast<int>(shape.size()), shape.data(), device_);
  };
  const TensorView qo = view(inputs.data(), {1, 16, 0, 64}, DType::f16);
  const TensorView kv = view(inputs.data(), {1, 16, 1, 64}, DType::f16);
  const TensorView l = view(inputs.data(), {1, 16, 0}, DType::f32);
  const TensorView dk = view(grads.data(), {1, 16, 1, 64}, DType::f16);
  const TensorView dv = view(static_cast<char*>(grads.data()) + keys_bytes, {1, 16, 1, 64}, DType::f16);
  BackwardArgs ba{qo, kv, kv, qo, l, qo, {}, {}, {}, qo, dk, dv, {}, {}};
  Options options;
  options.backend = backend_;
  EXPECT_EQ(gna::backward(params, ba, options), backend_);
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<unsigned char> host(2 * keys_bytes);
  grads.download(host.data(), host.size());
  EXPECT_EQ(std::count(host.begin(), host.end(), 0), static_cast<long>(host.size()))
      << "gradients of unattended keys must be zero";
}

GNA_GPU_INSTANTIATE(StreamUse);

}  // namespace
}  // namespace gna::gpu_test
