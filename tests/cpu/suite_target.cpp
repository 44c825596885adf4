// GNA_TEST_SIMD_TARGET=AVX2 (a Highway target name, any case) runs the whole
// cpu suite on that target, as a machine without the better ones would run
// it: tile shapes, head groups and phase counts follow the vector width, and
// each must be right on every width this build holds. Unset: the machine's
// best target. A target this machine cannot run skips the suite, saying so.
#include "suite_target.hpp"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace gna::cpu_test {
namespace {

int64_t forced = 0;  // 0: none

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class SuiteTarget : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* name = std::getenv("GNA_TEST_SIMD_TARGET");
    if (name == nullptr || *name == '\0') return;
    std::string available;
    for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
      if (lower(hwy::TargetName(target)) == lower(name)) {
        forced = target;
        hwy::SetSupportedTargetsForTest(forced);
        std::printf("cpu suite on SIMD target %s\n", hwy::TargetName(target));
        return;
      }
      available += std::string(available.empty() ? "" : ", ") + hwy::TargetName(target);
    }
    GTEST_SKIP() << "GNA_TEST_SIMD_TARGET=" << name << ": not a target this machine runs ("
                 << available << ")";
  }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

const auto* const registered = ::testing::AddGlobalTestEnvironment(new SuiteTarget);

}  // namespace

int64_t suite_target() { return forced; }

}  // namespace gna::cpu_test
