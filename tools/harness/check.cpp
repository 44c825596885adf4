#include "harness/check.hpp"

#include <algorithm>
#include <sstream>
#include <vector>

#include "gna/error.hpp"
#include "harness/oracle.hpp"

namespace gna::harness {
namespace {

// Compares `outputs` of the candidate against the expected tensors.
void compare_outputs(const Tensors& got, const Tensors& want,
                     std::initializer_list<Tensors::Slot> outputs, CaseResult& r) {
  std::ostringstream detail;
  r.passed = true;
  for (Tensors::Slot s : outputs) {
    if (!want.view(s).defined()) continue;
    std::vector<unsigned char> a_mem, b_mem;
    const Difference d = compare(got.host_view(s, a_mem), want.host_view(s, b_mem));
    const bool lse = s == Tensors::lse;
    // Outputs are O(1) by construction; gradients can grow, so their
    // tolerance scales with the largest reference value beyond 1.
    const double scale = lse ? 1.0 : std::max(1.0, d.ref_max);
    const double ratio = d.finite ? d.max_abs / (tolerance(want.problem().dtype, lse) * scale)
                                  : INFINITY;
    detail << slot_name(s) << " err " << d.max_abs << (d.finite ? "" : " (non-finite)") << "; ";
    if (ratio > r.worst || r.worst_tensor.empty()) {
      r.worst = std::max(r.worst, ratio);
      r.worst_tensor = slot_name(s);
    }
    if (!(ratio <= 1.0)) r.passed = false;
  }
  r.detail = detail.str();
}

}  // namespace

CaseResult run_case(const CaseSpec& spec, const std::string& backend, Device device) {
  CaseResult r;
  const Problem& p = spec.problem;
  for (const BackendInfo& info : backends(p, spec.pass, device)) {
    if (info.name == backend && !info.reason.empty()) {
      r.skipped = info.reason;
      return r;
    }
  }
  const bool is_reference = backend == "reference";
  std::mt19937_64 rng(spec.seed);

  // Expected results on the host.
  Tensors want(p, Device{}, spec.layout, spec.grad_lse);
  want.randomize_inputs(rng);
  if (is_reference) {
    oracle_forward(p, want.forward_args());
  } else {
    gna::forward(p.params, want.forward_args(), Options{"reference"});
  }
  if (spec.pass == Pass::backward) {
    if (is_reference) {
      oracle_backward(p, want.backward_args());
    } else {
      gna::backward(p.params, want.backward_args(), Options{"reference"});
    }
  }

  // The candidate gets the same inputs (and, for backward, the same O and
  // LSE, so that its gradients are compared on equal footing).
  Tensors got(p, device, spec.layout, spec.grad_lse);
  got.copy_from(want);
  got.poison_outputs();
  Options options;
  options.backend = backend;
  options.deterministic = spec.deterministic;
  try {
    if (spec.pass == Pass::forward) {
      gna::forward(p.params, got.forward_args(), options);
    } else {
      got.copy_forward_results_from(want);
      gna::backward(p.params, got.backward_args(), options);
    }
  } catch (const Error& e) {
    // Limits that depend on the tensors (alignment, strides) show up here.
    if (e.kind() != ErrorKind::unsupported) throw;
    r.skipped = e.what();
    return r;
  }
  synchronize(device);
  if (spec.pass == Pass::forward) {
    compare_outputs(got, want, {Tensors::o, Tensors::lse}, r);
  } else {
    compare_outputs(got, want,
                    {Tensors::dq, Tensors::dk, Tensors::dv, Tensors::dxk, Tensors::dxv}, r);
  }
  r.ran = true;
  return r;
}

RandomSpec spec_for_backend(const std::string& backend) {
  RandomSpec spec;
  if (backend == "reference") {
    spec.dtypes = {DType::f32, DType::f64, DType::f16, DType::bf16};
  } else if (backend == "cpu") {
    spec.dtypes = {DType::f32, DType::f16, DType::bf16};
    spec.head_dims = {1, 3, 8, 16, 24, 32, 64, 80};
  } else if (backend == "sm90") {
    spec.dtypes = {DType::f16, DType::bf16};
    spec.head_dims = {32, 64, 128, 256};
    spec.max_extent = 48;
    spec.max_tokens = 1024;
    spec.max_batch = 2;
  } else {
    spec.dtypes = {DType::f32, DType::f16, DType::bf16};
    spec.head_dims = {8, 16, 24, 32, 64, 80, 128};
    spec.max_tokens = 600;
  }
  return spec;
}

std::optional<Device> device_for_backend(const std::string& backend) {
  if (backend == "reference" || backend == "cpu") return Device{};
  if (cuda_device_count() > 0) return Device{DeviceType::cuda, 0};
  return std::nullopt;
}

}  // namespace gna::harness
