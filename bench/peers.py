"""Side-by-side timings on one GPU, in one run: gna vs PyTorch SDPA with the
cuDNN backend (dense attention over the same tokens) vs FlexAttention
(compiled) with the same neighborhood mask, and with --natten vs NATTEN's
Hopper kernels where it has one (forward: end to end and its kernel alone).

    python bench/peers.py [--cases all|target|extra] [--natten] [--json out.json] [--gna-cli build/bin/gna]
    python bench/peers.py --train [--natten]       # forward + backward per call

Speedup = cuDNN dense time / gna time, everything gna runs counted (output
allocation, the kernels and their small passes). Times are medians of
CUDA-event-timed back-to-back calls after warm-up; each call gets fresh
inputs from a small rotation so no case runs out of a warm L2 only. With
--train each call is forward then backward (torch.autograd.grad of the
output against a fixed random gradient), and gna's kernels are also timed
alone on the device (torch.profiler), the forward and backward apart.
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
    # The families the second forward issue adds (a tenth field: batch).
    ("2d-64-w7-d32-b64", (64, 64), 4, (7, 7), (1, 1), (False, False), "f16", 32, 8.0, 64),
    ("3d-24x36x60-w9x15x21-bf16", (24, 36, 60), 24, (9, 15, 21), (1, 1, 1), (False,) * 3, "bf16",
     128, 6.0),
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

# Training (forward + backward): (name, shape, heads, window, stride, causal, dtype,
# head_dim, target fwd+bwd speedup, batch, kv_heads). The must-reach
# cases first, then the families where FlexAttention and NATTEN must be beaten.
TRAIN_CASES = [
    ("1d-32768-w2048", (32768,), 1, (2048,), (1,), (False,), "f16", 128, 10.0, 1, 1),
    ("1d-32768-w2048-s2048", (32768,), 1, (2048,), (2048,), (False,), "f16", 128, 12.0, 1, 1),
    ("2d-256-w80", (256, 256), 24, (80, 80), (1, 1), (False, False), "f16", 128, 5.0, 1, 24),
    ("2d-256-w80-s16", (256, 256), 24, (80, 80), (16, 16), (False, False), "f16", 128, 7.5, 1,
     24),
    ("3d-30x48x80-w18x24x24", (30, 48, 80), 24, (18, 24, 24), (1, 1, 1), (False,) * 3, "f16",
     128, 3.5, 1, 24),
    ("3d-30x48x80-w18x24x24-s16x8x8", (30, 48, 80), 24, (18, 24, 24), (16, 8, 8), (False,) * 3,
     "f16", 128, 8.0, 1, 24),
    ("1d-32768-w4096-causal-gqa-bf16", (32768,), 16, (4096,), (1,), (True,), "bf16", 128, None,
     1, 4),
    ("2d-56-w7-d32-b32", (56, 56), 4, (7, 7), (1, 1), (False, False), "f16", 32, None, 32, 4),
    ("2d-28-w7-d64-b32", (28, 28), 8, (7, 7), (1, 1), (False, False), "f16", 64, None, 32, 8),
    ("2d-64-w13-d64-b8", (64, 64), 8, (13, 13), (1, 1), (False, False), "bf16", 64, None, 8, 8),
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


def run_case(case, flex, cli, rotation, natten=False):
    name, shape, heads, window, stride, causal, dtype_name, head_dim, target = case[:9]
    batch = case[9] if len(case) > 9 else 1
    dtype = DTYPES[dtype_name]
    rank = len(shape)
    dilation = (1,) * rank
    n = math.prod(shape)
    gen = torch.Generator(device="cuda").manual_seed(0)

    def rand(*size):
        return torch.randn(*size, device="cuda", dtype=dtype, generator=gen)

    # gna: heads-last [B, *spatial, H, D]; dense peers: [B, H, N, D].
    gna_inputs = [tuple(rand(batch, *shape, heads, head_dim) for _ in range(3))
                  for _ in range(rotation)]
    dense_inputs = [tuple(t.reshape(batch, n, heads, head_dim).transpose(1, 2).contiguous()
                          for t in qkv) for qkv in gna_inputs]
    na = {1: gna.na1d, 2: gna.na2d, 3: gna.na3d}[rank]

    def run_gna(q, k, v):
        return na(q, k, v, kernel_size=window, stride=stride, dilation=dilation, is_causal=causal)

    def run_cudnn(q, k, v):
        with torch.nn.attention.sdpa_kernel([torch.nn.attention.SDPBackend.CUDNN_ATTENTION]):
            return F.scaled_dot_product_attention(q, k, v)

    row = {"case": name, "shape": list(shape), "heads": heads, "window": list(window),
           "stride": list(stride), "causal": list(causal), "dtype": dtype_name,
           "head_dim": head_dim, "batch": batch, "target_speedup": target}
    # Useful FLOPs: 2 * pairs * (D + Dv); dense: every pair.
    pairs = useful_pairs(shape, window, stride, causal)
    useful = 2.0 * pairs * batch * heads * 2 * head_dim
    dense = 2.0 * n * n * batch * heads * 2 * head_dim
    row["flop_bound"] = dense / useful

    row["gna_ms"] = time_ms(run_gna, gna_inputs)
    row["cudnn_ms"] = time_ms(run_cudnn, dense_inputs)
    row["gna_tflops"] = useful / row["gna_ms"] / 1e9
    row["cudnn_tflops"] = dense / row["cudnn_ms"] / 1e9
    row["speedup"] = row["cudnn_ms"] / row["gna_ms"]
    # The kernel alone on the device, against dense at the same count.
    row["gna_kernel_ms"] = device_ms(run_gna, gna_inputs, ("forward_kernel",)).get("forward_kernel")
    if row["gna_kernel_ms"]:
        row["gna_kernel_speedup"] = row["cudnn_ms"] / row["gna_kernel_ms"]
    if natten:
        run, why = natten_fn(rank, window, stride, causal, dtype_name, head_dim, heads, heads,
                             forward_only=True)
        if run is None:
            row["natten"] = why
        else:
            try:
                row["natten_ms"] = time_ms(run, gna_inputs)
                row["natten_speedup"] = row["cudnn_ms"] / row["natten_ms"]
                kernels = device_kernels(run, gna_inputs)
                name_, ms = max(kernels.items(), key=lambda kv: kv[1])
                row["natten_kernel"], row["natten_kernel_ms"] = name_[:80], ms
                row["natten_kernel_speedup"] = row["cudnn_ms"] / ms
            except Exception as e:  # noqa: BLE001 - a peer's refusal is reported, not fatal
                row["natten"] = f"{type(e).__name__}: {e}"[:300]
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
        ours = run_gna(q, k, v).reshape(batch, n, heads, head_dim).transpose(1, 2).float()
        theirs = flex_fn(*dense_inputs[0], block_mask=mask).float()
        row["max_abs_diff_vs_flex"] = (ours - theirs).abs().max().item()
    return row


def useful_pairs(shape, window, stride, causal):
    pairs = 1
    for a in range(len(shape)):
        pairs *= sum(len(_keys_1d(i, shape[a], window[a], stride[a], 1, causal[a]))
                     for i in range(shape[a]))
    return pairs


def device_ms(fn, inputs, match, calls=5):
    """Device time per call of the CUDA kernels whose name contains one of
    `match` (torch.profiler), summed per call."""
    from torch.profiler import ProfilerActivity, profile
    for args in inputs:
        fn(*args)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for i in range(calls):
            fn(*inputs[i % len(inputs)])
        torch.cuda.synchronize()
    total = {}
    for e in prof.key_averages():
        t = getattr(e, "device_time_total", None)
        if t is None:
            t = getattr(e, "cuda_time_total", 0.0)
        for m in match:
            if m in e.key:
                total[m] = total.get(m, 0.0) + t / 1e3 / calls
    return total


def device_kernels(fn, inputs, calls=5):
    """Device time per call of every CUDA kernel `fn` runs (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile
    for args in inputs:
        fn(*args)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for i in range(calls):
            fn(*inputs[i % len(inputs)])
        torch.cuda.synchronize()
    out = {}
    for e in prof.key_averages():
        t = getattr(e, "device_time_total", None)
        if t is None:
            t = getattr(e, "cuda_time_total", 0.0)
        if t > 0:
            out[e.key] = t / 1e3 / calls
    return out


def natten_fn(rank, window, stride, causal, dtype_name, head_dim, heads, kv_heads,
              forward_only=False):
    """NATTEN's Hopper kernels as a user calls them, or None with why not."""
    if kv_heads != heads:
        return None, "no NATTEN kernel for GQA"
    if not forward_only and (dtype_name != "f16" or head_dim != 128):
        return None, "no NATTEN Hopper backward for this dtype / head dim"
    if not forward_only and any(causal):
        return None, "no NATTEN Hopper backward for causal windows"
    try:
        import natten
    except ImportError as e:
        return None, f"natten not importable: {e}"
    tiles = {1: ((128,), (128,), (64,), (128,)), 2: ((16, 8), (16, 8), (8, 8), (16, 8)),
             3: ((4, 4, 8), (4, 4, 8), (4, 4, 4), (4, 4, 8))}[rank]
    na = {1: natten.na1d, 2: natten.na2d, 3: natten.na3d}[rank]

    def run(q, k, v):
        return na(q, k, v, kernel_size=window, stride=stride, backend="hopper-fna",
                  q_tile_shape=tiles[0], kv_tile_shape=tiles[1],
                  backward_q_tile_shape=tiles[2], backward_kv_tile_shape=tiles[3])
    return run, ""


def run_train_case(case, flex, natten, rotation):
    """Forward + backward per call: gna vs cuDNN dense vs Flex vs NATTEN."""
    (name, shape, heads, window, stride, causal, dtype_name, head_dim, target, batch,
     kv_heads) = case
    dtype = DTYPES[dtype_name]
    rank = len(shape)
    n = math.prod(shape)
    gen = torch.Generator(device="cuda").manual_seed(0)

    def leaf(*size):
        return torch.randn(*size, device="cuda", dtype=dtype, generator=gen).requires_grad_()

    gna_inputs = []
    for _ in range(rotation):
        q = leaf(batch, *shape, heads, head_dim)
        k, v = (leaf(batch, *shape, kv_heads, head_dim) for _ in range(2))
        gna_inputs.append((q, k, v, torch.randn_like(q)))
    dense_inputs = [tuple(t.detach().reshape(batch, n, t.shape[-2], head_dim).transpose(1, 2)
                          .contiguous().requires_grad_(t.requires_grad) for t in qkvg)
                    for qkvg in gna_inputs]
    na = {1: gna.na1d, 2: gna.na2d, 3: gna.na3d}[rank]
    gqa = kv_heads != heads

    def train(forward):
        def step(q, k, v, g):
            out = forward(q, k, v)
            return torch.autograd.grad(out, (q, k, v), g)
        return step

    def gna_forward(q, k, v):
        return na(q, k, v, kernel_size=window, stride=stride, is_causal=causal)

    def cudnn_forward(q, k, v):
        with torch.nn.attention.sdpa_kernel([torch.nn.attention.SDPBackend.CUDNN_ATTENTION]):
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)

    pairs = useful_pairs(shape, window, stride, causal)
    fwd_flops = 2.0 * pairs * batch * heads * 2 * head_dim
    bwd_flops = 2.5 * fwd_flops
    dense_fwd = 2.0 * n * n * batch * heads * 2 * head_dim
    row = {"case": name, "pass": "forward+backward", "shape": list(shape), "heads": heads,
           "kv_heads": kv_heads, "batch": batch, "window": list(window), "stride": list(stride),
           "causal": list(causal), "dtype": dtype_name, "head_dim": head_dim,
           "target_speedup": target, "flop_bound": dense_fwd / fwd_flops}
    row["gna_ms"] = time_ms(train(gna_forward), gna_inputs)
    row["cudnn_ms"] = time_ms(train(cudnn_forward), dense_inputs)
    row["speedup"] = row["cudnn_ms"] / row["gna_ms"]
    row["gna_tflops"] = (fwd_flops + bwd_flops) / row["gna_ms"] / 1e9
    kernels = device_ms(train(gna_forward), gna_inputs,
                        ("forward_kernel", "backward_kernel", "prepass_kernel", "dq_pass_kernel",
                         "extra_pass_kernel", "cuda_generic"))
    row["gna_kernel_ms"] = kernels
    bwd_ms = sum(t for m, t in kernels.items() if m != "forward_kernel")
    if "backward_kernel" in kernels:
        row["gna_backward_device_ms"] = bwd_ms
        row["gna_backward_tflops"] = bwd_flops / bwd_ms / 1e9
    if flex:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        mask = create_block_mask(neighborhood_mask_mod(shape, window, stride, (1,) * rank, causal),
                                 None, None, n, n, device="cuda", _compile=True)
        flex_fn = torch.compile(flex_attention)
        row["flex_ms"] = time_ms(
            train(lambda q, k, v: flex_fn(q, k, v, block_mask=mask, enable_gqa=gqa)), dense_inputs)
        row["flex_speedup"] = row["cudnn_ms"] / row["flex_ms"]
    if natten:
        run, why = natten_fn(rank, window, stride, causal, dtype_name, head_dim, heads, kv_heads)
        if run is None:
            row["natten"] = why
        else:
            row["natten_ms"] = time_ms(train(run), gna_inputs)
            row["natten_speedup"] = row["cudnn_ms"] / row["natten_ms"]
    # Spot check: gna's gradients against cuDNN's dense-with-mask-free result
    # are not comparable; against Flex (same mask) they are.
    if flex:
        q, k, v, g = gna_inputs[0]
        ours = train(gna_forward)(q, k, v, g)
        dq, dk, dv, dg = dense_inputs[0]
        theirs = train(lambda q, k, v: flex_fn(q, k, v, block_mask=mask, enable_gqa=gqa))(
            dq, dk, dv, dg)
        row["max_abs_grad_diff_vs_flex"] = max(
            (a.reshape(batch, n, a.shape[-2], head_dim).transpose(1, 2).float() - b.float())
            .abs().max().item() for a, b in zip(ours, theirs))
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
    ap.add_argument("--train", action="store_true", help="forward + backward per call")
    ap.add_argument("--natten", action="store_true", help="also time NATTEN's Hopper kernels")
    args = ap.parse_args()
    if args.train:
        return train_main(args)
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
            row = run_case(case, not args.no_flex, args.gna_cli, args.rotation, args.natten)
        except Exception as e:  # report the case and go on: every case is reported
            row = {"case": case[0], "error": f"{type(e).__name__}: {e}"}
        rows.append(row)
        print(json.dumps(row), flush=True)
        torch.cuda.empty_cache()
    header = f"{'case':34} {'gna ms':>9} {'cuDNN ms':>9} {'flex ms':>9} {'speedup':>8} " \
             f"{'kernel x':>8} {'flex x':>7} {'natten x':>8} {'nat k x':>7} {'target':>7} " \
             f"{'bound':>6} {'TFLOP/s':>8}"
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
        nan = float("nan")
        print(f"{r['case']:34} {r['gna_ms']:9.3f} {r['cudnn_ms']:9.3f} {flex_ms:9.3f} "
              f"{r['speedup']:8.2f} {r.get('gna_kernel_speedup', nan):8.2f} {flex_x:7.2f} "
              f"{r.get('natten_speedup', nan):8.2f} {r.get('natten_kernel_speedup', nan):7.2f} "
              f"{target:7.1f} {r['flop_bound']:6.2f} {r['gna_tflops']:8.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                       "results": rows}, f, indent=1)
    return 0


def train_main(args):
    cases = TRAIN_CASES
    if args.only:
        keep = set(args.only.split(","))
        cases = [c for c in cases if c[0] in keep]
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, gna {gna.__version__}"
          " -- forward + backward per call")
    rows = []
    for case in cases:
        try:
            row = run_train_case(case, not args.no_flex, args.natten, args.rotation)
        except Exception as e:  # report the case and go on: every case is reported
            row = {"case": case[0], "error": f"{type(e).__name__}: {e}"}
        rows.append(row)
        print(json.dumps(row), flush=True)
        torch.cuda.empty_cache()
    print(f"{'case':34} {'gna ms':>9} {'cuDNN ms':>9} {'flex ms':>9} {'natten ms':>9} "
          f"{'speedup':>8} {'flex x':>7} {'natten x':>8} {'target':>7} {'bwd TF/s':>8}")
    nan = float("nan")
    for r in rows:
        if "error" in r:
            print(f"{r['case']:34} ERROR {r['error']}")
            continue
        print(f"{r['case']:34} {r['gna_ms']:9.3f} {r['cudnn_ms']:9.3f} {r.get('flex_ms', nan):9.3f} "
              f"{r.get('natten_ms', nan):9.3f} {r['speedup']:8.2f} {r.get('flex_speedup', nan):7.2f} "
              f"{r.get('natten_speedup', nan):8.2f} {r['target_speedup'] or nan:7.1f} "
              f"{r.get('gna_backward_tflops', nan):8.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                       "pass": "forward+backward", "results": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
