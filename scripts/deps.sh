#!/usr/bin/env bash
# Installs what gna needs, pinned, into the machine (Debian packages) and
# into the checkout (.deps/ for CUTLASS headers, .venv/ for Python).
#   scripts/deps.sh cpp      compilers, CMake, GoogleTest, Highway, CUTLASS headers
#   scripts/deps.sh python   the above plus a virtual environment with the
#                            pinned Python packages of python/requirements-dev.txt
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-cpp}"

CUTLASS_VERSION=4.2.0.0
# Highway (SIMD with run-time dispatch, for the cpu backend): Debian 12's
# package, pinned where that version is on offer; CMake checks >= 1.0.3.
HWY_DEBIAN_VERSION=1.0.3-3+deb12u1
# NATTEN for the compatibility tests (docs/natten.md is written against it).
NATTEN_VERSION=0.21.7

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v ninja >/dev/null || need_apt+=(ninja-build)
command -v g++ >/dev/null || need_apt+=(g++)
[ -f /usr/include/gtest/gtest.h ] || need_apt+=(libgtest-dev)
command -v unzip >/dev/null || need_apt+=(unzip)
need_hwy=0
[ -f /usr/include/hwy/highway.h ] || need_hwy=1
if [ ${#need_apt[@]} -gt 0 ] || [ $need_hwy -eq 1 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  if [ $need_hwy -eq 1 ]; then
    if apt-cache policy libhwy-dev | grep -qF "$HWY_DEBIAN_VERSION"; then
      need_apt+=("libhwy-dev=$HWY_DEBIAN_VERSION")
    else
      need_apt+=(libhwy-dev)
    fi
  fi
  echo "deps: installing Debian packages: ${need_apt[*]}"
  $sudo_cmd apt-get install -y -qq "${need_apt[@]}"
fi

# CUTLASS/CuTe headers, from the pinned PyPI wheel (headers only are used).
if [ ! -f .deps/cutlass/include/cute/tensor.hpp ]; then
  echo "deps: fetching CUTLASS headers (nvidia-cutlass==$CUTLASS_VERSION)"
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "nvidia-cutlass==$CUTLASS_VERSION"
  rm -rf .deps/cutlass && mkdir -p .deps/cutlass
  unzip -q "$tmp"/nvidia_cutlass-*.whl 'cutlass_library/source/include/*' -d "$tmp/x"
  mv "$tmp/x/cutlass_library/source/include" .deps/cutlass/include
  rm -rf "$tmp"
fi

if [ "$what" = python ]; then
  # Python 3.12 when present (the extension then uses the stable ABI), else python3.
  py=python3
  for cand in python3.12 /root/.pyenv/versions/3.12*/bin/python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null; then
      py="$cand"
      break
    fi
  done
  if [ ! -x .venv/bin/python ]; then
    echo "deps: creating .venv with $($py --version)"
    "$py" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip==25.3
  .venv/bin/python -m pip install -q -r python/requirements-dev.txt
  # NATTEN, the oracle of tests/python/test_natten_compat.py: its sdist,
  # pure Python, built against the torch installed above (no build
  # isolation, which would fetch another torch) and without its CUDA library
  # (no visible GPU: setup.py then skips libnatten instead of compiling it
  # for an hour).
  if ! .venv/bin/python -c "import importlib.metadata as m; assert m.version('natten') == '$NATTEN_VERSION'" 2>/dev/null; then
    echo "deps: installing natten==$NATTEN_VERSION (Python only, for the compatibility tests)"
    CUDA_VISIBLE_DEVICES="" NATTEN_CUDA_ARCH="" .venv/bin/python -m pip install -q \
      --no-build-isolation --no-deps "natten==$NATTEN_VERSION"
  fi
fi
