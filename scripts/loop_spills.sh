#!/usr/bin/env bash
# Spills of an sm90 kernel's step loop, per instantiation: ptxas's spill
# bytes for the whole kernel, and the local loads/stores (LDL/STL) between
# its first and last wgmma (HGMMA), which is where they cost every step.
#   bash scripts/loop_spills.sh [backward_f16_d128 forward_f16_d64 ...]
# Needs nvcc and cuobjdump (the CUDA toolkit's, or the one torch's triton wheel
# brings in .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
bundled=(.venv/lib/python3*/site-packages/triton/backends/nvidia/bin/cuobjdump)
CUOBJDUMP="$(command -v cuobjdump || echo "${bundled[0]}")"
[ -x "$CUOBJDUMP" ] || { echo "loop_spills: no cuobjdump found" >&2; exit 2; }
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
units=("$@"); [ ${#units[@]} -gt 0 ] || units=(backward_f16_d128 backward_f16_d64 backward_f16_d32)
for u in "${units[@]}"; do
    kernel="${u%%_*}_kernel"  # forward_f16_d64 -> forward_kernel
    nvcc -c -gencode=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr -O3 -DNDEBUG \
      -DGNA_WITH_CUDA=1 -DGNA_WITH_SM90=1 -Iinclude -Isrc -isystem .deps/cutlass/include \
      -Xptxas -v "src/cuda/sm90/$u.cu" -o "$work/$u.o" 2>"$work/$u.ptxas"
    bytes=$(grep -A2 "$kernel" "$work/$u.ptxas" | grep -m1 -o "[0-9]* bytes spill stores, [0-9]* bytes spill loads")
    "$CUOBJDUMP" -sass "$work/$u.o" 2>/dev/null |
      awk -v k="$kernel" '/Function :/ { inside = index($0, k) > 0 } inside' > "$work/$u.sass"
    first=$(grep -m1 -n HGMMA "$work/$u.sass" | cut -d: -f1)
    last=$(grep -n HGMMA "$work/$u.sass" | tail -n 1 | cut -d: -f1)
    loop="$(sed -n "${first},${last}p" "$work/$u.sass")"
    echo "$u: kernel $bytes; step loop LDL $(grep -c LDL <<<"$loop" || true), STL $(grep -c STL <<<"$loop" || true)"
done
