"""Command line of gna.profile (flags follow `gna bench`)."""
import argparse
import re
import sys

import torch

from . import _impls, _report, _sweep
from ._measure import add_speedups, measure
from ._problem import DTYPES, Problem

# Core argument names -> the flag that sets them, for error messages.
_FLAGS = [("kernel_size", "--window"), ("stride", "--stride"), ("dilation", "--dilation"),
          ("kv_heads", "--kv-heads"), ("heads", "--heads"), ("head_dim_v", "--dim-v"),
          ("head_dim", "--dim"), ("batch", "--batch"), ("additional_keys", "--extra-kv"),
          ("extent", "--shape"), ("shape", "--shape")]


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m gna.profile",
        description="Time gna against dense attention (PyTorch SDPA) and FlexAttention with the "
                    "same mask. Defaults: on a GPU 256x256, window 80x80, 24 heads, dim 128, f16; "
                    "on the CPU 32x32, window 7x7, 4 heads, dim 32, f32.")
    add = p.add_argument
    add("--shape", metavar="X0[xX1[xX2]]", help="spatial extents; their count is the rank")
    add("--window", metavar="K0[xK1..]", help="kernel (window) size per axis")
    add("--stride", metavar="S0[xS1..]", default="1", help="stride per axis (default 1)")
    add("--dilation", metavar="D0[xD1..]", default="1", help="dilation per axis (default 1)")
    add("--causal", metavar="C0[xC1..]", default="0", help="causal flag per axis, 0 or 1")
    add("--heads", type=int, help="query heads")
    add("--kv-heads", type=int, help="key/value heads (GQA/MQA; default: --heads)")
    add("--dim", type=int, help="head dim of Q and K")
    add("--dim-v", type=int, help="head dim of V and O (default: --dim)")
    add("--batch", type=int, default=1, help="batch size (default 1)")
    add("--extra-kv", type=int, default=0, help="additional KV tokens every query attends to")
    add("--dtype", choices=sorted(DTYPES), help="element type")
    add("--backend", default="auto", help="gna's backend: auto (default) or a name of "
                                          "gna.backend_names()")
    add("--device", default="auto", help="auto (a GPU if torch sees one), cpu, cuda or cuda:N")
    add("--backward", action="store_true", help="time forward + backward instead of forward")
    add("--impl", help=f"comma-separated, of {','.join(_impls.ALL)} (default: gna,flex,cudnn,"
                       "flash on a GPU; gna,flex,flash,math on the CPU)")
    add("--no-compile", action="store_true", help="run FlexAttention eagerly (no torch.compile)")
    add("--warmup", type=int, default=1, help="untimed calls per input set first (default 1)")
    add("--iters", type=int, help="calls per timed run (default: enough for a third of "
                                  "--budget-ms); the median of three runs is reported")
    add("--budget-ms", type=float, default=1200.0, help="time per row that sets --iters")
    add("--rotation", type=int, default=2, help="input sets cycled through (default 2)")
    add("--seed", type=int, default=0, help="seed of the random inputs")
    add("--sweep-window", metavar="A:B:STEP", help="time window sizes A, A+STEP, .. <= B (on "
                                                   "every axis, clamped to it) and plot them")
    add("--plot", metavar="PATH", help="PNG of the sweep (default gna_profile_sweep.png)")
    add("--no-progress", action="store_true", help="no progress bar on sweeps")
    add("--json", action="store_true", help="print JSON instead of the table")
    return p


def _per_axis(parser, flag, text, rank, parse=int):
    try:
        values = [parse(v) for v in text.replace(",", "x").split("x")]
    except ValueError:
        parser.error(f"{flag} {text!r}: expected integers separated by x, like 7x7")
    if rank is None:  # --shape itself sets the rank
        return tuple(values)
    if len(values) == 1:
        values *= rank
    if len(values) != rank:
        parser.error(f"{flag} has {len(values)} entries but --shape has {rank}")
    return tuple(values)


def _device(parser, text):
    if text == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        parser.error(f"--device must be auto, cpu, cuda or cuda:N, got {text!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {text}: torch sees no CUDA device")
    return str(device) if device.type == "cpu" or device.index is not None else "cuda:0"


def _problem(parser, a):
    device = _device(parser, a.device)
    gpu = device.startswith("cuda")
    shape = _per_axis(parser, "--shape", a.shape or ("256x256" if gpu else "32x32"), None)
    rank = len(shape)
    if not 1 <= rank <= 3:
        parser.error("--shape needs 1 to 3 extents, like 64x64")
    causal = _per_axis(parser, "--causal", a.causal, rank)
    if any(c not in (0, 1) for c in causal):
        parser.error(f"--causal {a.causal!r}: each entry must be 0 or 1")
    heads = a.heads or (24 if gpu else 4)
    dim = a.dim or (128 if gpu else 32)
    return Problem(shape=shape,
                   window=_per_axis(parser, "--window", a.window or ("80" if gpu else "7"), rank),
                   stride=_per_axis(parser, "--stride", a.stride, rank),
                   dilation=_per_axis(parser, "--dilation", a.dilation, rank),
                   causal=tuple(bool(c) for c in causal), heads=heads,
                   kv_heads=a.kv_heads or heads, dim=dim, dim_v=a.dim_v or dim, batch=a.batch,
                   extra_kv=a.extra_kv, dtype=a.dtype or ("f16" if gpu else "f32"), device=device)


def _check(parser, problem):
    """The core's verdict on the problem, as a flag error."""
    try:
        return problem.figures()
    except (ValueError, TypeError) as e:
        argument = getattr(e, "argument", "")
        flag = next((f for name, f in _FLAGS if argument.startswith(name)), None)
        parser.error(f"{e}" + (f" (option {flag})" if flag else ""))


def _names(parser, a, device):
    if not a.impl:
        return _impls.default_impls(torch.device(device))
    names = [n.strip() for n in a.impl.split(",") if n.strip()]
    unknown = [n for n in names if n not in _impls.ALL]
    if unknown or not names:
        parser.error(f"--impl {a.impl!r}: expected names of {', '.join(_impls.ALL)}")
    return tuple(dict.fromkeys(names))


def main(argv=None):
    parser = _parser()
    a = parser.parse_args(argv)
    iters = 1 if a.iters is None else a.iters
    for flag, value, low in (("--warmup", a.warmup, 0), ("--rotation", a.rotation, 1),
                             ("--iters", iters, 1), ("--budget-ms", a.budget_ms, 1e-9)):
        if value < low:
            parser.error(f"{flag} = {value}: must be >= {low:g}")
    if a.plot and not a.sweep_window:
        parser.error("--plot draws a sweep: give --sweep-window A:B:STEP too")
    problem = _problem(parser, a)
    names = _names(parser, a, problem.device)
    a.compile = not a.no_compile
    if a.sweep_window:
        try:
            sizes = _sweep.parse_windows(a.sweep_window)
        except ValueError as e:
            parser.error(str(e))
        return _run_sweep(parser, a, problem, names, sizes)
    figures = _check(parser, problem)
    rows = measure(problem, names, a, figures)
    baseline = add_speedups(rows)
    if a.json:
        print(_report.as_json(problem, a.backward, figures=figures, baseline=baseline, rows=rows))
    else:
        _report.print_table(problem, figures, rows, baseline, a.backward)
    return 1 if any(r.impl == "gna" and r.error for r in rows) else 0


def _run_sweep(parser, a, problem, names, sizes):
    for size in (sizes[0], sizes[-1]):
        _check(parser, problem.with_window(size))
    points, dense_rows, baseline = _sweep.sweep(problem, names, a, sizes, not a.no_progress)
    path = a.plot or "gna_profile_sweep.png"
    swept = re.sub(r"window \S+", f"window {a.sweep_window}", points[0]["figures"]["problem"])
    title = f"{swept} ({'forward+backward' if a.backward else 'forward'})"
    try:
        _sweep.plot(points, baseline, a.backward, title, path)
    except ImportError:
        if a.plot:
            parser.error("--plot needs matplotlib (pip install matplotlib, or gna[profile])")
        path = None
        print("gna.profile: no plot drawn: matplotlib is not installed (pip install gna[profile])",
              file=sys.stderr)
    if a.json:
        print(_report.as_json(problem, a.backward, baseline=baseline, dense=dense_rows,
                              points=points, plot=path))
    else:
        _report.print_sweep(problem, points, dense_rows, baseline, a.backward)
        if path:
            print(f"plot: {path}")
    failed = any(r.impl == "gna" and r.error for p in points for r in p["rows"])
    return 1 if failed else 0
