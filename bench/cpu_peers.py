"""Side-by-side CPU timings in one run, fp32: gna's cpu backend against the
machine's GEMM rate (torch.matmul of 1024^3), torch's dense SDPA, compiled
FlexAttention with the same neighborhood mask, and gna's reference backend;
forward and backward. FlexAttention runs forward only: on the CPU, torch
2.11 refuses its backward (recorded per case).

    python bench/cpu_peers.py [--cases all|target|extra] [--only a,b] [--rounds 5]
                              [--no-flex] [--json bench/results/cpu_peers.json]

Every case interleaves its contenders round by round (one sample of each per
round), so load from other processes hits them alike; each sample times
back-to-back calls for at least --sample-ms, after --settle-ms idle (torch's
OpenMP threads keep spinning for milliseconds after each of its ops and
would slow down whatever runs next on a machine of few cores). Reported: medians, and per
contender the spread (max/min over rounds) as the noise of the run. The
GEMM rate is measured inside every case's rounds too. Backward times the
backward alone (autograd through a recorded forward). The reference is
timed after the others, median of three single calls (it takes seconds).
"""
import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import gna

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import _keys_1d, neighborhood_mask_mod  # noqa: E402  (same mask, same pair count)

# (name, shape, heads, kv_heads, window, stride, dilation, causal, head_dim, must reach 40% GEMM)
TARGET_CASES = [
    ("2d-56x56-w7-d32", (56, 56), 4, 4, (7, 7), (1, 1), (1, 1), (False, False), 32, True),
    ("2d-64x64-w13-d64", (64, 64), 4, 4, (13, 13), (1, 1), (1, 1), (False, False), 64, True),
    ("2d-96x96-w9-d32", (96, 96), 2, 2, (9, 9), (1, 1), (1, 1), (False, False), 32, True),
    ("1d-4096-w512-d64", (4096,), 4, 4, (512,), (1,), (1,), (False,), 64, True),
    ("1d-8192-w256-d64", (8192,), 2, 2, (256,), (1,), (1,), (False,), 64, True),
    ("1d-2048-w1024-d64", (2048,), 4, 4, (1024,), (1,), (1,), (False,), 64, True),
]

# No GEMM target: dilation, causal, blocked, GQA, 3-D, small head dim.
EXTRA_CASES = [
    ("2d-56x56-w7-dil2-d32", (56, 56), 4, 4, (7, 7), (1, 1), (2, 2), (False, False), 32, False),
    ("1d-4096-w512-causal-d64", (4096,), 4, 4, (512,), (1,), (1,), (True,), 64, False),
    ("2d-64x64-w16-s16-d64", (64, 64), 4, 4, (16, 16), (16, 16), (1, 1), (False, False), 64,
     False),
    ("1d-4096-w512-gqa8to2-d64", (4096,), 8, 2, (512,), (1,), (1,), (False,), 64, False),
    ("3d-8x28x28-w3x7x7-d32", (8, 28, 28), 4, 4, (3, 7, 7), (1, 1, 1), (1, 1, 1), (False,) * 3,
     32, False),
    ("2d-56x56-w7-d16", (56, 56), 4, 4, (7, 7), (1, 1), (1, 1), (False, False), 16, False),
]


def one_sample_ms(fn, sample_ms):
    """Mean time of back-to-back calls lasting at least sample_ms."""
    calls, elapsed = 0, 0.0
    start = time.perf_counter()
    while elapsed < sample_ms / 1e3 or calls == 0:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
    return elapsed / calls * 1e3


def interleaved(contenders, rounds, sample_ms, settle_s):
    """{name: [ms per round]}: one sample of each contender per round, each
    after `settle_s` idle: torch's OpenMP threads spin for milliseconds after
    every parallel region and would slow down whoever runs next."""
    samples = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            time.sleep(settle_s)
            samples[name].append(one_sample_ms(fn, sample_ms))
    return samples


def summary(ms):
    return {"ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms),
            "spread": max(ms) / min(ms)}


def useful_pairs(shape, window, stride, dilation, causal):
    pairs = 1
    for a, n in enumerate(shape):
        pairs *= sum(len(_keys_1d(i, n, window[a], stride[a], dilation[a], causal[a]))
                     for i in range(n))
    return pairs


def backward_of(fn, inputs, generator):
    """A callable running only the backward of fn(*inputs), recorded once."""
    out = fn(*inputs)
    grad = torch.randn(out.shape, generator=generator, dtype=out.dtype)
    return lambda: torch.autograd.grad(out, inputs, grad, retain_graph=True)


def run_case(case, args):
    name, shape, heads, kv_heads, window, stride, dilation, causal, dim, gemm_target = case
    rank, n = len(shape), math.prod(shape)
    gen = torch.Generator().manual_seed(0)

    def leaf(*size):
        return torch.randn(*size, generator=gen).requires_grad_()

    # gna: heads-last [B, *spatial, H, D]; dense peers: [B, H, N, D].
    q = leaf(1, *shape, heads, dim)
    k, v = leaf(1, *shape, kv_heads, dim), leaf(1, *shape, kv_heads, dim)
    dq, dk, dv = (t.detach().reshape(1, n, t.shape[-2], dim).transpose(1, 2).contiguous()
                  .requires_grad_() for t in (q, k, v))
    na = {1: gna.na1d, 2: gna.na2d, 3: gna.na3d}[rank]
    window_args = dict(kernel_size=window, stride=stride, dilation=dilation, is_causal=causal)

    def gna_fn(backend):
        return lambda q, k, v: na(q, k, v, backend=backend, **window_args)

    def sdpa(q, k, v):
        dense_causal = rank == 1 and causal[0]
        return F.scaled_dot_product_attention(q, k, v, is_causal=dense_causal,
                                              enable_gqa=heads != kv_heads)

    pairs = useful_pairs(shape, window, stride, dilation, causal)
    row = {"case": name, "shape": list(shape), "heads": heads, "kv_heads": kv_heads,
           "window": list(window), "stride": list(stride), "dilation": list(dilation),
           "causal": list(causal), "head_dim": dim, "gemm_target": gemm_target,
           "window_fraction": math.prod(window) / n,
           "forward_flop": 2.0 * pairs * heads * 2 * dim,
           "backward_flop": 2.0 * pairs * heads * 5 * dim}

    # Forward timings run inference-style on detached inputs (no graph to
    # record; FlexAttention refuses inputs that require grad on the CPU).
    a, b = torch.randn(1024, 1024, generator=gen), torch.randn(1024, 1024, generator=gen)
    q0, k0, v0, dq0, dk0, dv0 = (t.detach() for t in (q, k, v, dq, dk, dv))
    fwd = {"gemm": lambda: torch.matmul(a, b),
           "gna": lambda: gna_fn("cpu")(q0, k0, v0),
           "sdpa": lambda: sdpa(dq0, dk0, dv0)}
    bwd = {"gna": backward_of(gna_fn("cpu"), (q, k, v), gen),
           "sdpa": backward_of(sdpa, (dq, dk, dv), gen)}
    if not args.no_flex:
        try:
            from torch.nn.attention.flex_attention import create_block_mask, flex_attention
            mask = create_block_mask(neighborhood_mask_mod(shape, window, stride, dilation,
                                                           causal),
                                     None, None, n, n, device="cpu")
            flex = torch.compile(flex_attention)

            def flex_fn(q, k, v):
                return flex(q, k, v, block_mask=mask, enable_gqa=heads != kv_heads)

            flex_fn(dq0, dk0, dv0)  # compile here, outside the timed rounds
            fwd["flex"] = lambda: flex_fn(dq0, dk0, dv0)
            ours = gna_fn("cpu")(q0, k0, v0).reshape(1, n, heads, dim).transpose(1, 2)
            row["max_abs_diff_vs_flex"] = (ours - flex_fn(dq0, dk0, dv0)).abs().max().item()
        except Exception as e:  # FlexAttention may not run on this CPU: say why
            row["flex_error"] = f"{type(e).__name__}: {str(e)[:300]}"
        if "flex" in fwd:
            try:
                step = backward_of(flex_fn, (dq, dk, dv), gen)
                step()
                bwd["flex"] = step
            except Exception as e:
                row["flex_backward_error"] = f"{type(e).__name__}: {str(e)[:300]}"

    for fn in list(fwd.values()) + list(bwd.values()):
        fn()  # warm-up
    forward_samples = interleaved(fwd, args.rounds, args.sample_ms, args.settle_ms / 1e3)
    backward_samples = interleaved(bwd, args.rounds, args.sample_ms, args.settle_ms / 1e3)
    gemm = summary(forward_samples.pop("gemm"))
    row["gemm_gflops"] = 2 * 1024 ** 3 / gemm["ms"] / 1e6
    row["gemm"] = gemm
    for pass_name, samples in (("forward", forward_samples), ("backward", backward_samples)):
        for who, ms in samples.items():
            row[f"{who}_{pass_name}"] = summary(ms)
        flop = row[f"{pass_name}_flop"]
        ours = row[f"gna_{pass_name}"]["ms"]
        row[f"gna_{pass_name}_gflops"] = flop / ours / 1e6
        row[f"gna_{pass_name}_of_gemm"] = row[f"gna_{pass_name}_gflops"] / row["gemm_gflops"]
        for peer in ("sdpa", "flex"):
            if f"{peer}_{pass_name}" in row:
                row[f"{peer}_{pass_name}_over_gna"] = row[f"{peer}_{pass_name}"]["ms"] / ours

    if not args.no_reference:  # the median of three single calls: seconds each
        ref_fn = gna_fn("reference")
        expected = ref_fn(q0, k0, v0)
        step = backward_of(ref_fn, (q, k, v), torch.Generator().manual_seed(1))
        for pass_name, fn in (("forward", lambda: ref_fn(q0, k0, v0)), ("backward", step)):
            ms = [one_sample_ms(fn, 0.0) for _ in range(3)]
            row[f"reference_{pass_name}_ms"] = statistics.median(ms)
        for pass_name in ("forward", "backward"):
            row[f"reference_{pass_name}_over_gna"] = (row[f"reference_{pass_name}_ms"] /
                                                      row[f"gna_{pass_name}"]["ms"])
        row["max_abs_diff_vs_reference"] = (gna_fn("cpu")(q0, k0, v0) - expected).abs().max().item()
    return row


def verdicts(row):
    """The issue's measures for this case: name -> (met, detail)."""
    out = {}
    if row["gemm_target"]:
        for p in ("forward", "backward"):
            share = row[f"gna_{p}_of_gemm"]
            out[f"{p} >= 40% of GEMM"] = (share >= 0.4, f"{100 * share:.0f}%")
    if row["window_fraction"] <= 0.25:
        for p in ("forward", "backward"):
            x = row.get(f"sdpa_{p}_over_gna")
            if x is not None:
                out[f"{p} faster than dense SDPA"] = (x > 1, f"{x:.2f}x")
    for p in ("forward", "backward"):
        x = row.get(f"flex_{p}_over_gna")
        if x is not None:
            out[f"{p} faster than FlexAttention"] = (x > 1, f"{x:.2f}x")
        x = row.get(f"reference_{p}_over_gna")
        if x is not None:
            out[f"{p} >= 20x reference"] = (x >= 20, f"{x:.0f}x")
    return out


def print_table(rows):
    def ms(r, key):
        v = r.get(key)
        return f"{v['ms']:9.2f}" if isinstance(v, dict) else f"{'-':>9}"

    def x(r, key):
        v = r.get(key)
        return f"{v:7.2f}" if v is not None else f"{'-':>7}"

    for p in ("forward", "backward"):
        print(f"\n{p}, fp32, {torch.get_num_threads()} threads; ms are medians; "
              "x = peer time / gna time")
        print(f"{'case':26} {'win/tok':>7} {'gna ms':>9} {'GFLOP/s':>8} {'%GEMM':>6} "
              f"{'SDPA ms':>9} {'x SDPA':>7} {'Flex ms':>9} {'x Flex':>7} {'ref ms':>9} "
              f"{'x ref':>7} {'noise':>6}")
        for r in rows:
            if "error" in r:
                print(f"{r['case']:26} ERROR {r['error']}")
                continue
            ref = r.get(f"reference_{p}_ms")
            ref_s = f"{ref:9.1f}" if ref is not None else f"{'-':>9}"
            print(f"{r['case']:26} {r['window_fraction']:7.3f} {ms(r, f'gna_{p}')} "
                  f"{r[f'gna_{p}_gflops']:8.1f} {100 * r[f'gna_{p}_of_gemm']:6.0f} "
                  f"{ms(r, f'sdpa_{p}')} {x(r, f'sdpa_{p}_over_gna')} {ms(r, f'flex_{p}')} "
                  f"{x(r, f'flex_{p}_over_gna')} {ref_s} {x(r, f'reference_{p}_over_gna')} "
                  f"{r[f'gna_{p}']['spread']:6.2f}")
    gemm = [r["gemm_gflops"] for r in rows if "gemm_gflops" in r]
    if gemm:
        print(f"\nGEMM (torch.matmul 1024^3 fp32) during the cases: median {statistics.median(gemm):.1f}"
              f" GFLOP/s, min {min(gemm):.1f}, max {max(gemm):.1f}")
    failed = [(r["case"], k, d) for r in rows for k, (ok, d) in verdicts(r).items() if not ok]
    print("every measure met" if not failed else "not met:")
    for case, measure, detail in failed:
        print(f"  {case}: {measure} ({detail})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", choices=["all", "target", "extra"], default="all")
    ap.add_argument("--only", default="", help="comma-separated case names")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved samples per contender")
    ap.add_argument("--sample-ms", type=float, default=60.0, help="minimum length of a sample")
    ap.add_argument("--settle-ms", type=float, default=30.0, help="idle time before a sample")
    ap.add_argument("--no-flex", action="store_true", help="skip FlexAttention")
    ap.add_argument("--no-reference", action="store_true", help="skip the reference backend")
    ap.add_argument("--threads", type=int, default=0, help="torch (and so gna) threads")
    ap.add_argument("--json", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "results", "cpu_peers.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cases = {"all": TARGET_CASES + EXTRA_CASES, "target": TARGET_CASES,
             "extra": EXTRA_CASES}[args.cases]
    if args.only:
        keep = set(args.only.split(","))
        cases = [c for c in cases if c[0] in keep]
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "threads": torch.get_num_threads(), "torch": torch.__version__,
               "gna": gna.__version__, "load_average": os.getloadavg()}
    print(json.dumps(machine))
    rows = []
    for case in cases:
        try:
            row = run_case(case, args)
        except Exception as e:  # every case is reported
            row = {"case": case[0], "error": f"{type(e).__name__}: {e}"}
        row["verdicts"] = {k: {"met": ok, "value": d} for k, (ok, d) in
                           verdicts(row).items()} if "error" not in row else {}
        rows.append(row)
        print(json.dumps(row), flush=True)
    machine["load_average_after"] = os.getloadavg()
    print_table(rows)
    if args.json:
        os.makedirs(os.path.dirname(args.json), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "command": " ".join(sys.argv), "results": rows}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
