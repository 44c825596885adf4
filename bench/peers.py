"""Side-by-side forward timings on one GPU, in one run: gna vs PyTorch SDPA
with the cuDNN backend (dense attention over the same tokens) vs
FlexAttention (compiled) with the same neighborhood mask.

    python bench/peers.py [--cases all|target|extra] [--json out.json] [--gna-cli build/bin/gna]

Speedup = cuDNN dense time / gna time, everything gna runs counted (output
allocation and the kernel; there is no separate reordering pass). Times are
medians of CUDA-event-timed runs after warm-up; each call gets fresh inputs
from a small rotation so no case runs out of a warm L2 only.
"""
import argparse
import json
import math
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F

import gna
from gna.profile import neighborhood_mask_mod, time_ms  # shared with python -m gna.profile

# (name, shape, heads, window, stride, causal, dtype, head_dim, target speedup)
TARGET_CASES = [
    ("1d-32768-w2048", (32768,), 1, (2048,), (1,), (False,), "f16", 128, 12.0),
    ("1d-32768-w2048-s256", (32768,), 1, (2048,), (256,), (False,), "f16", 128, 14.0),
    ("1d-32768-w2048-s2048", (32768,), 1, (2048,), (2048,), (False,), "f16", 128, 14.5),
    ("2d-256-w80", (256, 256), 24, (80, 80), (1, 1), (False, False), "f16", 128, 7.0),
    ("2d-256-w80-s16", (256, 256), 24, (80, 80), (16, 16), (False, False), "f16", 128, 10.0),
    ("3d-30x48x80-w18x24x24", (30, 48, 80), 24, (18, 24, 24), (1, 1, 1), (False,) * 3, "f16",
     128, 5.0),
    ("3d-30x48x80-w18x24x24-s16x8x8", (30, 48, 80), 24, (18, 24, 24), (16, 8, 8), (False,) * 3,
     "f16", 128, 10.5),
    ("3d-16x44x80-w16x32x48-s1x8x16", (16, 44, 80), 32, (16, 32, 48), (1, 8, 16), (False,) * 3,
     "f16", 128, 2.1),
]

# No target yet: other dtypes, head dims, and a causal video case.
EXTRA_CASES = [
    ("2d-256-w80-bf16", (256, 256), 24, (80, 80), (1, 1), (False, False), "bf16", 128, None),
    ("2d-256-w80-d64", (256, 256), 24, (80, 80), (1, 1), (False, False), "f16", 64, None),
    ("2d-256-w80-d256", (256, 256), 24, (80, 80), (1, 1), (False, False), "f16", 256, None),
    ("1d-32768-w2048-bf16", (32768,), 1, (2048,), (1,), (False,), "bf16", 128, None),
    ("3d-30x48x80-w18x24x24-causal", (30, 48, 80), 24, (18, 24, 24), (1, 1, 1),
     (True, False, False), "f16", 128, None),
]

DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16}


def call_overhead_us(calls=2000):
    """Wall time per call of tiny problems, back to back: the host cost of a
    call (Python, dispatch, launch) when the kernel itself takes microseconds."""
    import time
    q = torch.randn(1, 256, 1, 64, device="cuda", dtype=torch.float16)
    cases = {
        "gna.na1d (torch op)": lambda: gna.na1d(q, q, q, kernel_size=7),
        "sdpa (dense)": lambda: F.scaled_dot_product_attention(q.transpose(1, 2), q.transpose(1, 2),
                                                               q.transpose(1, 2)),
    }
    out = {}
    for name, fn in cases.items():
        for _ in range(50):
            fn()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
        out[name] = (time.perf_counter() - t0) / calls * 1e6
    return out


def sim_info(cli, shape, window, stride, causal, head_dim):
    if not cli:
        return {}
    x = lambda t: "x".join(str(int(v)) for v in t)  # noqa: E731
    cmd = [cli, "sim", "--shape", x(shape), "--window", x(window), "--stride", x(stride),
           "--causal", x(causal), "--dim", str(head_dim), "--json"]
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        return json.loads(out)
    except (OSError, subprocess.CalledProcessError, json.JSONDecodeError) as e:
        return {"error": str(e)}


def run_case(case, flex, cli, rotation):
    name, shape, heads, window, stride, causal, dtype_name, head_dim, target = case
    dtype = DTYPES[dtype_name]
    rank = len(shape)
    dilation = (1,) * rank
    n = math.prod(shape)
    gen = torch.Generator(device="cuda").manual_seed(0)

    def rand(*size):
        return torch.randn(*size, device="cuda", dtype=dtype, generator=gen)

    # gna: heads-last [B, *spatial, H, D]; dense peers: [B, H, N, D].
    gna_inputs = [tuple(rand(1, *shape, heads, head_dim) for _ in range(3)) for _ in range(rotation)]
    dense_inputs = [tuple(t.reshape(1, n, heads, head_dim).transpose(1, 2).contiguous() for t in qkv)
                    for qkv in gna_inputs]
    na = {1: gna.na1d, 2: gna.na2d, 3: gna.na3d}[rank]

    def run_gna(q, k, v):
        return na(q, k, v, kernel_size=window, stride=stride, dilation=dilation, is_causal=causal)

    def run_cudnn(q, k, v):
        with torch.nn.attention.sdpa_kernel([torch.nn.attention.SDPBackend.CUDNN_ATTENTION]):
            return F.scaled_dot_product_attention(q, k, v)

    row = {"case": name, "shape": list(shape), "heads": heads, "window": list(window),
           "stride": list(stride), "causal": list(causal), "dtype": dtype_name,
           "head_dim": head_dim, "target_speedup": target}
    # Useful FLOPs: 2 * pairs * (D + Dv); dense: every pair.
    pairs = 1
    for a in range(rank):
        counts = [len(_keys_1d(i, shape[a], window[a], stride[a], 1, causal[a]))
                  for i in range(shape[a])]
        pairs *= sum(counts)
    useful = 2.0 * pairs * heads * 2 * head_dim
    dense = 2.0 * n * n * heads * 2 * head_dim
    row["flop_bound"] = dense / useful

    row["gna_ms"] = time_ms(run_gna, gna_inputs)
    row["cudnn_ms"] = time_ms(run_cudnn, dense_inputs)
    row["gna_tflops"] = useful / row["gna_ms"] / 1e9
    row["cudnn_tflops"] = dense / row["cudnn_ms"] / 1e9
    row["speedup"] = row["cudnn_ms"] / row["gna_ms"]
    if flex:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        mask = create_block_mask(neighborhood_mask_mod(shape, window, stride, dilation, causal),
                                 None, None, n, n, device="cuda", _compile=True)
        flex_fn = torch.compile(flex_attention)
        row["flex_ms"] = time_ms(lambda q, k, v: flex_fn(q, k, v, block_mask=mask), dense_inputs)
        row["flex_speedup"] = row["cudnn_ms"] / row["flex_ms"]
    row["sim"] = sim_info(cli, shape, window, stride, causal, head_dim)
    # Correctness spot check against FlexAttention's masked result (same math).
    if flex:
        q, k, v = gna_inputs[0]
        ours = run_gna(q, k, v).reshape(1, n, heads, head_dim).transpose(1, 2).float()
        theirs = flex_fn(*dense_inputs[0], block_mask=mask).float()
        row["max_abs_diff_vs_flex"] = (ours - theirs).abs().max().item()
    return row


def _keys_1d(i, n, k, s, d, causal):
    g, p = i % d, i // d
    m = (n - g + d - 1) // d
    run = (p // s) * s
    if causal:
        leader = min(run + s - 1, m - 1)
        return range(max(leader - k + 1, 0), p + 1)
    left, right = k // 2, k - 1 - k // 2
    center = min(max(min(run + s // 2, m - 1), left), m - 1 - right)
    return range(center - left, center + right + 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", choices=["all", "target", "extra"], default="all")
    ap.add_argument("--only", default="", help="comma-separated case names")
    ap.add_argument("--json", default="", help="write results here")
    ap.add_argument("--no-flex", action="store_true", help="skip FlexAttention")
    ap.add_argument("--gna-cli", default="", help="path of the gna CLI for simulator figures")
    ap.add_argument("--rotation", type=int, default=2, help="input sets cycled through")
    ap.add_argument("--overhead", action="store_true", help="also measure per-call host overhead")
    args = ap.parse_args()
    cases = {"all": TARGET_CASES + EXTRA_CASES, "target": TARGET_CASES, "extra": EXTRA_CASES}[args.cases]
    if args.only:
        keep = set(args.only.split(","))
        cases = [c for c in cases if c[0] in keep]
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, gna {gna.__version__}")
    rows = []
    if args.overhead:
        overhead = call_overhead_us()
        print("per-call wall time of tiny problems (us):", json.dumps(overhead), flush=True)
        rows.append({"case": "call-overhead-us", **overhead})
    for case in cases:
        try:
            row = run_case(case, not args.no_flex, args.gna_cli, args.rotation)
        except Exception as e:  # report the case and go on: every case is reported
            row = {"case": case[0], "error": f"{type(e).__name__}: {e}"}
        rows.append(row)
        print(json.dumps(row), flush=True)
        torch.cuda.empty_cache()
    header = f"{'case':34} {'gna ms':>9} {'cuDNN ms':>9} {'flex ms':>9} {'speedup':>8} " \
             f"{'flex x':>7} {'target':>7} {'bound':>6} {'TFLOP/s':>8}"
    print(header)
    for r in rows:
        if r["case"] == "call-overhead-us":
            continue
        if "error" in r:
            print(f"{r['case']:34} ERROR {r['error']}")
            continue
        flex_ms = r.get("flex_ms", float("nan"))
        flex_x = r.get("flex_speedup", float("nan"))
        target = r["target_speedup"] or float("nan")
        print(f"{r['case']:34} {r['gna_ms']:9.3f} {r['cudnn_ms']:9.3f} {flex_ms:9.3f} "
              f"{r['speedup']:8.2f} {flex_x:7.2f} {target:7.1f} {r['flop_bound']:6.2f} "
              f"{r['gna_tflops']:8.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                       "results": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
