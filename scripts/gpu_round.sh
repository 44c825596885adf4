#!/usr/bin/env bash
# One round of GPU work on the lent H200, with binaries built on the dev
# machine and carried (build/bin, dist/*.whl). Writes logs and JSON to $OUT
# (or out/ when unset). Stages run in order; each has its own time limit so
# that a hang costs one stage, not the round.
#   bash scripts/gpu_round.sh check tests bench python peers sanitize
#   bash scripts/gpu_round.sh bwd_check tests bwd_sanitize bwd_race bwd_bench train
#   bash scripts/gpu_round.sh dist1   (one GPU)   /   dist2   (two GPUs: gna.distributed)
#   bash scripts/gpu_round.sh verify  (after a kernel change: checks, GPU tests, sanitizers, small)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out}"
mkdir -p "$OUT"
BIN=build/bin
export PYTHONUNBUFFERED=1
# build/bin links Highway's shared library; the GPU machine has none installed.
[ -d .whl/lib ] && export LD_LIBRARY_PATH="$PWD/.whl/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

stage() { echo "=== $1 ($(date +%T))"; }

# The eight target cases of the Hopper forward issue: shape window stride heads
# (fp16, head dim 128, batch 1, non-causal, dilation 1).
TARGET_CASES="32768 2048 1 1
32768 2048 256 1
32768 2048 2048 1
256x256 80x80 1x1 24
256x256 80x80 16x16 24
30x48x80 18x24x24 1x1x1 24
30x48x80 18x24x24 16x8x8 24
16x44x80 16x32x48 1x8x16 32"

for what in "$@"; do
  case "$what" in
    env)
      stage env
      nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/env.txt"
      python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)' | tee -a "$OUT/env.txt"
      ;;
    check)
      stage "gna check sm90 + cuda-generic"
      timeout 240 $BIN/gna check --backend sm90 --cases 100 --pass forward --seed 11 2>&1 | tee "$OUT/check_sm90.log" | tail -25
      timeout 180 $BIN/gna check --backend cuda-generic --cases 40 --seed 12 2>&1 | tee "$OUT/check_generic.log" | tail -12
      ;;
    tests)
      stage "GPU tests"
      timeout 300 $BIN/gna_gpu_tests --gtest_brief=1 2>&1 | tee "$OUT/gpu_tests.log" | tail -40
      ;;
    bench)
      stage "gna bench, the eight target cases, sm90"
      while read -r shape window stride heads; do
        timeout 60 $BIN/gna bench --backend sm90 --shape "$shape" --window "$window" --stride "$stride" \
          --heads "$heads" --dim 128 --dtype f16 --json | tee -a "$OUT/bench.jsonl"
      done <<<"$TARGET_CASES"
      ;;
    sweep)
      stage "tile sweep: the simulator's best configurations, timed"
      while read -r shape window stride heads; do
        timeout 120 $BIN/gna bench --sweep "${SWEEP_TOP:-32}" --iters 3 --shape "$shape" --window "$window" \
          --stride "$stride" --heads "$heads" --dim 128 --dtype f16 --json | tee -a "$OUT/sweep.jsonl" | cut -c1-300
      done <<<"$TARGET_CASES"
      ;;
    python)
      stage "python tests on CUDA"
      python3 -m pip install -q --no-deps --no-index --target /tmp/gna-site dist/*.whl || exit 1
      # pytest-xdist, when carried (.whl/py), spreads the tests over the host's cores.
      parallel=""
      if ls .whl/py/pytest_xdist-*.whl >/dev/null 2>&1; then
        python3 -m pip install -q --no-deps --no-index --target /tmp/gna-site .whl/py/*.whl && parallel="-n 8"
      fi
      PYTHONPATH=/tmp/gna-site timeout 400 python3 -m pytest -q -rfs $parallel -p no:cacheprovider tests/python 2>&1 | tee "$OUT/pytest.log" | grep -vE "^SKIPPED" | tail -40
      ;;
    peers)
      stage "peers: gna vs cuDNN vs FlexAttention"
      python3 -m pip install -q --no-deps --no-index --target /tmp/gna-site dist/*.whl || exit 1
      PYTHONPATH=/tmp/gna-site timeout 500 python3 bench/peers.py --overhead ${PEERS_ARGS:-} --json "$OUT/peers.json" --gna-cli $BIN/gna 2>&1 | tee "$OUT/peers.log" | tail -20
      ;;
    sanitize)
      stage "compute-sanitizer"
      timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 $BIN/gna check --backend sm90 --cases 6 --pass forward --seed 3 2>&1 | tail -8 | tee "$OUT/sanitize_sm90.log"
      timeout 300 compute-sanitizer --tool memcheck --error-exitcode 9 $BIN/gna_gpu_tests --gtest_filter='*Small*' --gtest_brief=1 2>&1 | tail -15 | tee "$OUT/sanitize_tests.log"
      ;;
    race)
      stage "racecheck and synccheck of the sm90 kernel on real problems"
      for tool in racecheck synccheck; do
        for shape in "13x9 5x3 1x1 2x1" "64x64 13x13 2x2 1x1" "40 9 3 2"; do
          set -- $shape
          timeout 120 compute-sanitizer --tool $tool --error-exitcode 9 $BIN/gna bench --backend sm90 \
            --shape $1 --window $2 --stride $3 --dilation $4 --heads 2 --dim 64 --iters 1 --warmup 0 2>&1 \
            | grep -E "SUMMARY|backend|error" | tee -a "$OUT/race.log"
        done
      done
      ;;
    bwd_check)
      stage "gna check sm90 backward (and deterministic)"
      timeout 300 $BIN/gna check --backend sm90 --cases 80 --pass backward --seed 13 2>&1 | tee "$OUT/check_sm90_bwd.log" | tail -25
      timeout 200 $BIN/gna check --backend sm90 --cases 30 --pass backward --seed 14 --deterministic 2>&1 | tee "$OUT/check_sm90_bwd_det.log" | tail -12
      ;;
    bwd_sanitize)
      stage "compute-sanitizer memcheck, sm90 backward"
      timeout 300 compute-sanitizer --tool memcheck --error-exitcode 9 $BIN/gna check --backend sm90 --cases 8 --pass backward --seed 5 2>&1 | tail -8 | tee "$OUT/sanitize_sm90_bwd.log"
      timeout 300 compute-sanitizer --tool memcheck --error-exitcode 9 $BIN/gna check --backend sm90 --cases 4 --pass backward --seed 6 --deterministic 2>&1 | tail -8 | tee -a "$OUT/sanitize_sm90_bwd.log"
      ;;
    bwd_race)
      stage "racecheck and synccheck of the sm90 backward on real problems"
      for tool in racecheck synccheck; do
        for shape in "13x9 5x3 1x1 2x1 64" "64x64 13x13 2x2 1x1 128" "300 9 3 2 32"; do
          set -- $shape
          timeout 150 compute-sanitizer --tool $tool --error-exitcode 9 $BIN/gna bench --backend sm90 --backward \
            --shape $1 --window $2 --stride $3 --dilation $4 --heads 2 --kv-heads 1 --dim $5 --extra-kv 3 --iters 1 --warmup 0 2>&1 \
            | grep -E "SUMMARY|backend|rror" | tee -a "$OUT/race_bwd.log"
        done
      done
      ;;
    bwd_bench)
      stage "gna bench --backward, the target cases, sm90"
      while read -r shape window stride heads; do
        timeout 60 $BIN/gna bench --backend sm90 --backward --shape "$shape" --window "$window" --stride "$stride" \
          --heads "$heads" --dim 128 --dtype f16 --json | tee -a "$OUT/bench_bwd.jsonl"
      done <<<"$TARGET_CASES"
      timeout 60 $BIN/gna bench --backend sm90 --backward --deterministic --shape 256x256 --window 80x80 --heads 24 --dim 128 --json | tee -a "$OUT/bench_bwd_det.jsonl"
      timeout 60 $BIN/gna bench --backend sm90 --backward --deterministic --shape 32768 --window 2048 --heads 1 --dim 128 --json | tee -a "$OUT/bench_bwd_det.jsonl"
      ;;
    train)
      stage "peers: forward + backward, gna vs cuDNN vs FlexAttention vs NATTEN"
      python3 -m pip install -q --no-deps --no-index --target /tmp/gna-site dist/*.whl || exit 1
      [ -n "$(ls .whl/natten-*.whl 2>/dev/null)" ] && python3 -m pip install -q --no-deps --no-index --target /tmp/gna-site .whl/natten-*.whl
      PYTHONPATH=/tmp/gna-site timeout 560 python3 bench/peers.py --train --natten ${PEERS_ARGS:-} --json "$OUT/train.json" 2>&1 | tee "$OUT/train.log" | tail -16
      ;;
    verify)
      stage "after a kernel change, quickly: sm90 checks, GPU tests, memcheck and racecheck on small problems"
      timeout 60 $BIN/gna check --backend sm90 --cases 60 --pass forward --seed 21 2>&1 | tee "$OUT/verify_check.log" | tail -3
      timeout 90 $BIN/gna check --backend sm90 --cases 60 --pass backward --seed 22 2>&1 | tee -a "$OUT/verify_check.log" | tail -3
      timeout 60 $BIN/gna check --backend sm90 --cases 20 --pass backward --seed 23 --deterministic 2>&1 | tee -a "$OUT/verify_check.log" | tail -3
      timeout 120 $BIN/gna_gpu_tests --gtest_brief=1 2>&1 | tee "$OUT/gpu_tests.log" | tail -4
      for pass in forward backward; do
        timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 $BIN/gna check --backend sm90 --cases 4 --pass $pass --seed 24 2>&1 | tail -3 | tee -a "$OUT/verify_sanitize.log"
      done
      # racecheck: both kernels on a 2-D problem (odd extents, dilation, GQA,
      # additional KV), the backward on a strided 1-D one; synccheck: the backward.
      # The forward also on 1-D problems of hundreds of work items, so that each
      # persistent CTA runs several (both Q buffers, the ring across items, and
      # at head dim 128 the ping-pong turns).
      for run in "racecheck 20000 129 3 1 128 -" "synccheck 20000 129 3 1 128 -" "racecheck 40000 9 1 2 32 -" \
                 "racecheck 13x9 5x3 1x1 2x1 64 -" "racecheck 13x9 5x3 1x1 2x1 64 --backward" \
                 "racecheck 300 9 3 2 32 --backward" "synccheck 13x9 5x3 1x1 2x1 64 --backward"; do
        set -- $run
        pass="$7"; [ "$pass" = "-" ] && pass=""
        timeout 90 compute-sanitizer --tool $1 --error-exitcode 9 $BIN/gna bench --backend sm90 $pass \
          --shape $2 --window $3 --stride $4 --dilation $5 --heads 2 --kv-heads 1 --dim $6 --extra-kv 3 \
          --iters 1 --warmup 0 2>&1 | grep -E "SUMMARY|rror" | sed "s/^/$1 $2 ${pass:-forward}: /" | tee -a "$OUT/verify_race.log"
      done
      ;;
    ncu_bwd)
      stage "Nsight Compute: the sm90 backward kernel on a 1-D and a 2-D target case"
      for shape in "32768 2048 1 1" "256x256 80x80 16x16 24"; do
        set -- $shape
        timeout 240 ncu --kernel-name regex:backward_kernel --launch-skip 1 --launch-count 1 \
          --section SpeedOfLight --section WarpStateStats --section SchedulerStats \
          --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section Occupancy \
          $BIN/gna bench --backend sm90 --backward --shape $1 --window $2 --stride $3 --heads $4 \
          --dim 128 --dtype f16 --iters 2 --warmup 0 2>&1 | tee -a "$OUT/ncu_bwd.log" | grep -vE "^==PROF==" | tail -120
      done
      ;;
    host)
      stage "host cost per call against device time"
      python3 -m pip install -q --no-deps --no-index --target /tmp/gna-site dist/*.whl || exit 1
      for shape in "32768 2048 1" "256x256 80x80 24" "56x56 7x7 4"; do
        set -- $shape
        PYTHONPATH=/tmp/gna-site timeout 120 python3 bench/host_cost.py --shape $1 --window $2 --heads $3 | tee -a "$OUT/host.jsonl"
      done
      PYTHONPATH=/tmp/gna-site timeout 120 python3 bench/host_cost.py --breakdown 2>&1 | tee "$OUT/host_breakdown.log" | tail -70
      ;;
    profile)
      stage "python -m gna.profile on the GPU (default problem, forward and forward + backward)"
      python3 -m pip install -q --no-deps --no-index --target /tmp/gna-site dist/*.whl || exit 1
      PYTHONPATH=/tmp/gna-site timeout 200 python3 -m gna.profile --no-progress 2>&1 | tee "$OUT/profile.log" | tail -12
      PYTHONPATH=/tmp/gna-site timeout 200 python3 -m gna.profile --backward --no-progress 2>&1 | tee -a "$OUT/profile.log" | tail -12
      PYTHONPATH=/tmp/gna-site timeout 200 python3 -m gna.profile --shape 32768 --window 1024 --heads 1 --sweep-window 512:4096:512 --plot "$OUT/profile_sweep.png" --no-progress 2>&1 | tee -a "$OUT/profile.log" | tail -12
      ;;
    dist1)
      stage "gna.distributed on one GPU: NCCL world size 1, then the one-GPU bench"
      python3 -m pip install -q --no-deps --no-index --target /tmp/gna-site dist/*.whl || exit 1
      PYTHONPATH=/tmp/gna-site timeout 300 python3 -m pytest -q -rs -p no:cacheprovider tests/python/test_distributed_gpu.py 2>&1 | tee "$OUT/pytest_distributed.log" | tail -8
      PYTHONPATH=/tmp/gna-site timeout 400 python3 bench/distributed.py --out "$OUT/distributed_1gpu.json" 2>&1 | tee "$OUT/distributed_1gpu.log" | tail -8
      ;;
    dist2)
      stage "gna.distributed on two GPUs (nvidia-h200-x2): tests, then strong scaling"
      python3 -m pip install -q --no-deps --no-index --target /tmp/gna-site dist/*.whl || exit 1
      PYTHONPATH=/tmp/gna-site timeout 300 python3 -m pytest -q -rs -p no:cacheprovider tests/python/test_distributed_gpu.py 2>&1 | tee "$OUT/pytest_distributed.log" | tail -8
      PYTHONPATH=/tmp/gna-site timeout 500 python3 -m torch.distributed.run --nproc_per_node 2 bench/distributed.py --out "$OUT/distributed_2gpu.json" 2>&1 | tee "$OUT/distributed_2gpu.log" | grep -v "^W\|^\*" | tail -8
      ;;
    *) echo "unknown stage $what"; exit 2 ;;
  esac
done
