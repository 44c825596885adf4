// The SIMD target the cpu suite runs on (suite_target.cpp): 0 for the
// machine's best, else the Highway target GNA_TEST_SIMD_TARGET forced.
#pragma once

#include <cstdint>

namespace gna::cpu_test {

int64_t suite_target();

}  // namespace gna::cpu_test
