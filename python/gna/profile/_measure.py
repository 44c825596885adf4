"""Times each implementation on one problem and turns times into rows."""
import dataclasses
import warnings
from typing import Optional

import torch

from . import _impls
from ._problem import make_inputs
from ._timing import time_ms


@dataclasses.dataclass
class Row:
    impl: str
    dense: bool
    note: str = ""
    ms: Optional[float] = None
    tflops: Optional[float] = None   # useful FLOPs per second / 1e12 (dense rows: dense FLOPs)
    speedup: Optional[float] = None  # fastest dense row's ms / this row's ms
    max_abs_diff: Optional[float] = None  # forward output against gna's
    error: Optional[str] = None      # why it did not run


def _short(error, caught=()):
    """One line: the error, and the warning that says why when torch gave one
    (SDPA warns the reason a kernel was refused, then raises a bare error)."""
    text = str(error).strip().splitlines()
    why = [str(w.message).split(" (Triggered")[0] for w in caught
           if "kernel not used because" not in str(w.message)]
    line = f"{type(error).__name__}: {text[0] if text else ''}"
    return (line + (f" ({why[-1]})" if why else ""))[:400]


def _heads_first(output, problem):
    b, n = problem.batch, problem.tokens
    return output.reshape(b, n, problem.heads, output.shape[-1]).transpose(1, 2)


def _flops(figures, dense, backward):
    kind = "dense_" if dense else ""
    total = figures[f"{kind}forward_flops"]
    return total + figures[f"{kind}backward_flops"] if backward else total


def measure(problem, names, options, figures):
    """One row per name, in order. options: backend, backward, compile,
    rotation, budget_ms, warmup, iters, seed."""
    sets = make_inputs(problem, options.rotation, options.backward, options.seed)
    gen = torch.Generator(device=problem.device).manual_seed(options.seed + 1)
    reference = None  # gna's forward output, [B, H, N, Dv]
    rows = []
    for name in names:
        row = Row(name, name in _impls.DENSE)
        layout = _impls.layout(name)
        inputs = [s[layout] for s in sets]
        try:
            forward, row.note = _impls.BUILDERS[name](problem, options)
            with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    output = forward(*inputs[0])
                except Exception as e:
                    raise _impls.Unavailable(_short(e, caught)) from e
            if layout == "gna":
                output = _heads_first(output, problem)
            if name == "gna":
                reference = output
            elif not row.dense and reference is not None:
                row.max_abs_diff = (output.double() - reference.double()).abs().max().item()
            run = forward
            if options.backward:
                grad = torch.randn(inputs[0][0].shape[:-1] + (problem.dim_v,), generator=gen,
                                   device=problem.device, dtype=problem.torch_dtype)
                run = _impls.with_backward(forward, grad)
            row.ms = time_ms(run, inputs, problem.device, options.budget_ms, options.warmup,
                             options.iters)
            row.tflops = _flops(figures, row.dense, options.backward) / row.ms / 1e9
        except Exception as e:  # every implementation gets a row, failed ones with the reason
            row.error = str(e) if isinstance(e, _impls.Unavailable) else _short(e)
        rows.append(row)
        if torch.device(problem.device).type == "cuda":
            torch.cuda.empty_cache()
    return rows


def add_speedups(rows, dense_rows=()):
    """Sets each row's speedup over the fastest timed dense row (of rows and
    dense_rows); returns that row's name, or None without one."""
    timed = [r for r in list(rows) + list(dense_rows) if r.dense and r.ms]
    if not timed:
        return None
    baseline = min(timed, key=lambda r: r.ms)
    for r in list(rows) + list(dense_rows):
        if r.ms:
            r.speedup = baseline.ms / r.ms
    return baseline.impl
