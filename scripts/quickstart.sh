#!/usr/bin/env bash
# The main job from nothing: install dependencies, build, time the default
# 2-D problem on the best available backend, and check every backend
# against the reference.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh cpp
bash scripts/build.sh
build/bin/gna bench
build/bin/gna check --cases 20
