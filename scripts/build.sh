#!/usr/bin/env bash
# Configures and builds gna into build/ (Release). CUDA backends are built
# when nvcc is found; pass extra CMake options as arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
# Hopper kernels take ~6 GB of RAM each to compile: cap parallel jobs by memory.
mem_gb=$(awk '/MemAvailable/ {print int($2 / 1048576)}' /proc/meminfo)
jobs=$(( mem_gb / 7 )); [ "$jobs" -lt 1 ] && jobs=1
cores=$(nproc); [ "$jobs" -gt "$cores" ] && jobs=$cores
cmake --build build -j "$jobs"
