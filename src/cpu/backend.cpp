// The cpu backend: generalized neighborhood attention at GEMM-like speed on
// the CPU, fp32 / fp16 / bf16 with fp32 accumulation. Flash structure
// (src/cpu/passes.hpp): tiles of one token per SIMD lane walk only the
// chunks their windows reach, with an online softmax and O(tokens) memory.
#include <vector>

#include "core/backend.hpp"
#include "core/check.hpp"
#include "cpu/overflow.hpp"
#include "cpu/passes.hpp"
#include "cpu/rows.hpp"
#include "cpu/thread_pool.hpp"

namespace gna::cpu {
namespace {

class CpuBackend final : public detail::Backend {
 public:
  const char* name() const override { return "cpu"; }

  std::string cannot_run(const Problem& p, Pass, Device device) const override {
    if (device.type != DeviceType::cpu) {
      return detail::concat("tensors are on ", device_name(device),
                            "; the cpu backend runs on CPU tensors");
    }
    if (p.dtype == DType::f64) {
      return "float64 runs on the reference backend only (the cpu backend accumulates in fp32)";
    }
    return "";
  }

  void forward(const Problem& p, const ForwardArgs& args, const Options& o) const override {
    // The LSE tells whether the scores fit fp32 (overflow.hpp): a caller
    // who asks for none gets one kept here.
    ForwardArgs run = args;
    std::vector<float> own_lse;
    if (!args.lse.defined()) {
      int64_t rows = 1;
      for (int i = 0; i + 1 < args.query.ndim; ++i) rows *= args.query.shape[i];
      own_lse.resize(static_cast<size_t>(rows));
      run.lse = TensorView::contiguous(own_lse.data(), DType::f32, args.query.ndim - 1,
                                       args.query.shape);
    }
    forward_pass(p, run, thread_count(o.threads));
    if (!scores_fit_fp32(run.lse, p.scale())) detail::reference_backend()->forward(p, args, o);
  }

  void backward(const Problem& p, const BackwardArgs& args, const Options& o) const override {
    if (p.empty()) {
      // Keys and values nobody attends to still have a gradient: zero.
      for (const TensorView* g : {&args.grad_key, &args.grad_value, &args.grad_extra_key,
                                  &args.grad_extra_value}) {
        zero_fill(*g);
      }
      return;
    }
    if (!scores_fit_fp32(args.lse, p.scale())) {
      detail::reference_backend()->backward(p, args, o);
      return;
    }
    backward_pass(p, args, thread_count(o.threads));
  }
};

}  // namespace
}  // namespace gna::cpu

namespace gna::detail {
const Backend* cpu_backend() {
  static const cpu::CpuBackend backend;
  return &backend;
}
}  // namespace gna::detail
