// One correctness case: run a backend on random inputs and compare every
// output with the oracle of that backend (the brute-force dense oracle for
// the reference, the reference for everything else).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "gna/attention.hpp"
#include "harness/tensors.hpp"

namespace gna::harness {

struct CaseResult {
  bool ran = false;
  std::string skipped;        // why the backend could not run it
  bool passed = false;
  double worst = 0.0;         // largest error / tolerance over all outputs
  std::string worst_tensor;   // which output that was
  std::string detail;         // per-output errors, for failure reports
};

struct CaseSpec {
  Problem problem;
  Layout layout = Layout::contiguous;
  Pass pass = Pass::forward;
  uint64_t seed = 0;
  bool deterministic = false;  // Options::deterministic of the candidate's run
  bool grad_lse = false;  // backward: a gradient flows into LSE too
};

CaseResult run_case(const CaseSpec& spec, const std::string& backend, Device device);

// The random problems a backend is checked on: all it claims to support, at
// sizes the reference answers quickly.
RandomSpec spec_for_backend(const std::string& backend);

// The device a backend runs on in checks: CPU for the CPU backends, the first
// CUDA device otherwise (nullopt when there is none).
std::optional<Device> device_for_backend(const std::string& backend);

}  // namespace gna::harness
