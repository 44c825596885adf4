"""Per-call time of back-to-back calls, as a model layer issues them.

On a GPU the calls run between two CUDA events, so host overhead counts
whenever it outlasts the kernel (the GPU then waits); on the CPU every call
is synchronous and the wall clock times them.
"""
import statistics
import time

import torch


def _elapsed_ms(fn, inputs, calls, device):
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for i in range(calls):
            fn(*inputs[i % len(inputs)])
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    begin = time.perf_counter()
    for i in range(calls):
        fn(*inputs[i % len(inputs)])
    return (time.perf_counter() - begin) * 1e3


def time_ms(fn, inputs, device="cuda", budget_ms=1200.0, warmup=1, iters=None):
    """Median over three runs of the per-call time of fn(*inputs[i]).

    inputs: argument tuples cycled through, so no call finds the previous
    one's data in cache only. warmup: untimed calls first (at least one per
    input set: compilation, caches, handles). iters: calls per run; by
    default as many as fill a third of budget_ms, 3 to 200.
    """
    device = torch.device(device)
    for i in range(max(warmup, len(inputs))):
        fn(*inputs[i % len(inputs)])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    if iters is None:
        one = _elapsed_ms(fn, inputs, 1, device)
        iters = max(3, min(200, int(budget_ms / 3 / max(one, 1e-3))))
    return statistics.median(_elapsed_ms(fn, inputs, iters, device) / iters for _ in range(3))
