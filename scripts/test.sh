#!/usr/bin/env bash
# Every test: C++ (CTest: core, simulator, GPU tests that skip without a GPU),
# the CPU-side C++ tests again under ASan and UBSan, and Python (pytest,
# after `pip install .` into .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh python
bash scripts/build.sh
(cd build && ctest --output-on-failure -j "$(nproc)")
# The same C++ tests under AddressSanitizer and UBSan (build-asan/).
bash scripts/test_sanitizers.sh
if [ -f pyproject.toml ]; then
  # The C++ build above already compiled the CUDA kernels; CI machines have
  # no GPU, so the Python extension is built without them unless asked.
  .venv/bin/python -m pip install -q --no-build-isolation --no-deps \
    -C cmake.define.GNA_CUDA="${GNA_PYTHON_CUDA:-OFF}" .
  .venv/bin/python -m pytest -q -rs tests/python
fi
