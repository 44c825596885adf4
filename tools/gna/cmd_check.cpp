// gna check: random problems covering every parameter through each backend,
// compared with the reference (the reference itself with the brute-force
// dense oracle). Exits 1 on any mismatch.
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "cli.hpp"
#include "gna/attention.hpp"
#include "harness/check.hpp"

namespace gna::cli {
namespace {

struct Tally {
  std::string backend, pass;
  int cases = 0, passed = 0, skipped = 0;
  double worst = 0.0;
  std::string skip_reason;
  std::vector<std::string> failures;
  bool ok() const { return passed + skipped == cases; }
};

std::vector<Pass> passes_of(const std::string& text) {
  if (text == "forward") return {Pass::forward};
  if (text == "backward") return {Pass::backward};
  if (text == "both") return {Pass::forward, Pass::backward};
  throw UsageError("--pass must be forward, backward or both, got '" + text + "'");
}

}  // namespace

int run_check(int argc, char** argv) {
  Command cmd("check",
              "Run random problems covering every parameter (rank, borders, even windows,\n"
              "stride == window, dilation, causal, GQA, Dv != D, additional KV, non-contiguous\n"
              "layouts, a gradient into LSE) through each available backend and compare with the\n"
              "reference.",
              {{"backend", "NAME", "check only this backend (default: every built one)"},
               {"cases", "N", "random problems per backend and pass (default 50)"},
               {"seed", "S", "random seed (default 1)"},
               {"pass", "forward|backward|both", "which passes to check (default both)"},
               {"deterministic", "", "run the backends in deterministic mode"},
               {"json", "", "print the results as JSON"}});
  if (!cmd.parse(argc, argv)) return 0;
  const int64_t cases = cmd.integer("cases", 50);
  const int64_t seed = cmd.integer("seed", 1);
  if (cases < 1) throw UsageError("--cases must be >= 1");
  const std::vector<Pass> passes = passes_of(cmd.text("pass", "both"));

  std::vector<std::string> names = backend_names();
  if (cmd.has("backend")) {
    const std::string wanted = cmd.text("backend", "");
    bool built = false;
    for (const std::string& n : names) built |= n == wanted;
    if (!built) {
      std::string list;
      for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
      throw UsageError("--backend " + wanted + " is not built into this gna (built: " + list + ")");
    }
    if (!harness::device_for_backend(wanted)) {
      throw UsageError("--backend " + wanted + " needs a CUDA device and none is visible");
    }
    names = {wanted};
  }

  std::vector<Tally> tallies;
  for (const std::string& backend : names) {
    const std::optional<Device> device = harness::device_for_backend(backend);
    const harness::RandomSpec spec = harness::spec_for_backend(backend);
    for (Pass pass : passes) {
      Tally t;
      t.backend = backend;
      t.pass = pass == Pass::forward ? "forward" : "backward";
      if (!device) {
        t.skip_reason = "no CUDA device visible";
        tallies.push_back(t);
        continue;
      }
      std::mt19937_64 rng(static_cast<uint64_t>(seed) * 1000003u + (pass == Pass::backward));
      for (int64_t i = 0; i < cases; ++i) {
        harness::CaseSpec c;
        c.problem = harness::random_problem(rng, spec);
        c.layout = harness::random_layout(rng, backend != "sm90");
        c.pass = pass;
        c.seed = rng();
        c.deterministic = cmd.flag("deterministic");
        c.grad_lse = pass == Pass::backward && i % 2 == 1;
        const harness::CaseResult r = harness::run_case(c, backend, *device);
        ++t.cases;
        if (!r.ran) {
          ++t.skipped;
          t.skip_reason = r.skipped;
          continue;
        }
        t.worst = std::max(t.worst, r.worst);
        if (r.passed) {
          ++t.passed;
        } else {
          t.failures.push_back(c.problem.describe() + " layout " + harness::layout_name(c.layout) +
                               (c.grad_lse ? " with grad_lse" : "") + ": " + r.detail);
        }
      }
      tallies.push_back(t);
    }
  }

  bool all_ok = true;
  for (const Tally& t : tallies) all_ok &= t.ok();
  if (cmd.flag("json")) {
    std::vector<std::string> items;
    for (const Tally& t : tallies) {
      std::vector<std::string> failures;
      for (const std::string& f : t.failures) failures.push_back(json_string(f));
      items.push_back("{\"backend\": " + json_string(t.backend) + ", \"pass\": " +
                      json_string(t.pass) + ", \"cases\": " + json_number(t.cases) +
                      ", \"passed\": " + json_number(t.passed) + ", \"skipped\": " +
                      json_number(t.skipped) + ", \"skip_reason\": " + json_string(t.skip_reason) +
                      ", \"worst_error_over_tolerance\": " + json_number(t.worst) +
                      ", \"failures\": " + json_list(failures) + "}");
    }
    std::cout << "{\"seed\": " << seed << ", \"ok\": " << (all_ok ? "true" : "false")
              << ", \"results\": " << json_list(items) << "}\n";
  } else {
    std::printf("%-14s %-9s %6s %7s %8s %14s  %s\n", "backend", "pass", "cases", "passed",
                "skipped", "worst err/tol", "status");
    for (const Tally& t : tallies) {
      std::printf("%-14s %-9s %6d %7d %8d %14.3g  %s\n", t.backend.c_str(), t.pass.c_str(),
                  t.cases, t.passed, t.skipped, t.worst,
                  !t.ok() ? "MISMATCH" : t.passed == 0 ? "skipped" : "ok");
      if (!t.skip_reason.empty()) {
        std::printf("    skipped %d: %s\n", t.skipped, t.skip_reason.c_str());
      }
      for (const std::string& f : t.failures) std::printf("    FAIL %s\n", f.c_str());
    }
    std::printf("%s\n", all_ok ? "all checks passed" : "some checks FAILED");
  }
  return all_ok ? 0 : 1;
}

}  // namespace gna::cli
