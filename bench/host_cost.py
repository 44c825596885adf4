"""Host cost of one gna call on the GPU: how long Python and the C++ host
path take to issue a forward, a forward + backward, against the device time
of the same work. A call is host-bound when the issue time exceeds the
device time: back-to-back calls then leave the GPU idle between kernels.

    python bench/host_cost.py [--shape 32768 --window 2048 --heads 1 --dim 128]
"""
import argparse
import json
import time

import torch

import gna


def issue_and_device_us(fn, calls):
    """(host issue time per call, wall time per call once the queue drained),
    in microseconds. Few enough calls that the launch queue never fills, so
    the issue loop measures the host alone."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    issued = time.perf_counter()
    torch.cuda.synchronize()
    done = time.perf_counter()
    return (issued - t0) / calls * 1e6, (done - t0) / calls * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="32768")
    ap.add_argument("--window", default="2048")
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--breakdown", action="store_true",
                    help="also print where the host time of forward + backward goes")
    args = ap.parse_args()
    shape = tuple(int(v) for v in args.shape.split("x"))
    window = tuple(int(v) for v in args.window.split("x"))
    na = {1: gna.na1d, 2: gna.na2d, 3: gna.na3d}[len(shape)]
    q, k, v = (torch.randn(1, *shape, args.heads, args.dim, device="cuda", dtype=torch.float16,
                           requires_grad=True) for _ in range(3))
    g = torch.randn_like(q)

    def forward():
        with torch.no_grad():
            na(q, k, v, window)

    def train():
        out = na(q, k, v, window)
        torch.autograd.grad(out, (q, k, v), g)

    rows = {}
    for name, fn in (("forward", forward), ("forward+backward", train)):
        issue, wall = issue_and_device_us(fn, args.calls)
        rows[name] = {"host_issue_us": round(issue, 1), "wall_us": round(wall, 1)}
    print(json.dumps({"shape": shape, "window": window, "heads": args.heads, "dim": args.dim,
                      **rows}))
    if args.breakdown:
        breakdown(train, args.calls, q, k, v, g, window)


def breakdown(train, calls, q, k, v, g, window):
    """Where the host time of forward + backward goes: the C++ core called
    directly (no autograd, outputs preallocated), torch's autograd engine
    around a trivial op, and torch operators by self CPU time."""
    from torch.profiler import ProfilerActivity, profile
    from gna import _C, _torch_ops as ops
    rank = len(window)
    w = _C.Window(list(window), [1] * rank, [1] * rank, [False] * rank, None)
    stream = torch.cuda.current_stream().cuda_stream
    out, lse = torch.empty_like(q), torch.empty(q.shape[:-1], device=q.device)
    dq, dk, dv = (torch.empty_like(t) for t in (q, k, v))
    x = ops._export
    core_fwd = lambda: _C.forward(x(q), x(k), x(v), x(out), x(lse), None, None, w, "sm90",
                                  stream)  # noqa: E731
    core_fwd()
    core_bwd = lambda: _C.backward(x(q), x(k), x(v), x(out), x(lse), x(g), None, None, None,
                                   x(dq), x(dk), x(dv), None, None, w, "sm90", stream,
                                   False)  # noqa: E731
    leaf = torch.randn(8, device="cuda", requires_grad=True)
    engine = lambda: torch.autograd.grad((leaf * 2).sum(), (leaf,))  # noqa: E731
    for name, fn in (("C++ forward", core_fwd), ("C++ backward", core_bwd),
                     ("autograd engine, trivial op", engine)):
        issue, wall = issue_and_device_us(fn, calls)
        print(json.dumps({"part": name, "host_issue_us": round(issue, 1),
                          "wall_us": round(wall, 1)}))
    with profile(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(calls):
            train()
        torch.cuda.synchronize()
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))


if __name__ == "__main__":
    main()
