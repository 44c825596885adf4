#!/usr/bin/env bash
# The C++ core, the cpu backends (Highway), the CLI and their tests built
# with AddressSanitizer and UndefinedBehaviorSanitizer in build-asan/:
# signed overflow, out-of-bounds access, use after free and the rest of
# -fsanitize=undefined all abort the test that hits them
# (-fno-sanitize-recover=all). CUDA and Python are off; -O1 keeps the build
# and the run within a few minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# Highway targets: the portable fallback, AVX2 and AVX-512 (SSE4 and SSSE3
# left out: one compile of every pass less).
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Sanitize \
  -DGNA_CUDA=OFF -DGNA_PYTHON=OFF -DGNA_HWY_DISABLED_TARGETS="(HWY_SSSE3|HWY_SSE4)" \
  -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g $sanitize" \
  -DCMAKE_EXE_LINKER_FLAGS_SANITIZE="$sanitize" \
  -DCMAKE_SHARED_LINKER_FLAGS_SANITIZE="$sanitize" >/dev/null
cmake --build build-asan -j "$(nproc)"
# allocator_may_return_null: a test asks for 2^50 bytes on purpose and wants
# the failure back as an error, not an abort.
export ASAN_OPTIONS="allocator_may_return_null=1:detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Left to build/: the install test (it builds a separate consumer project
# without the sanitizers) and the long random sweeps against the brute-force
# oracle (minutes each under ASan; the case tests run the same code paths),
# and the cpu suite's reruns on narrower SIMD targets (the targets test
# covers each target here).
skip='^install_|^ReferenceVsOracle\.(Forward|Backward)$|^Cli\.CheckPassesOnRandomCases$|^CpuSweep\.|^cpu_backend_test\.'
(cd build-asan && ctest --output-on-failure -j "$(nproc)" -E "$skip")
