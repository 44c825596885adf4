"""Host cost of one gna call: how long Python and the C++ host path take to
issue a forward, a forward + backward, against the device time of the same
work. A call is host-bound when the issue time exceeds the device time:
back-to-back calls then leave the GPU idle between kernels.

    python bench/host_cost.py [--shape 32768 --window 2048 --heads 1 --dim 128]

On CPU tensors (`--device cpu`, e.g. `--shape 64 --window 3 --dim 8`) every
call is synchronous, so a tiny problem measures the host path itself;
`--stub` replaces the C++ entry points by functions that return at once,
leaving the Python side alone.
"""
import argparse
import json
import time

import torch

import gna


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def issue_and_device_us(fn, calls, device="cuda", repeats=1):
    """(host issue time per call, wall time per call once the queue drained),
    in microseconds, the best of `repeats` rounds. Few enough calls that the
    launch queue never fills, so the issue loop measures the host alone."""
    for _ in range(3):
        fn()
    _sync(device)
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        issued = time.perf_counter()
        _sync(device)
        done = time.perf_counter()
        row = ((issued - t0) / calls * 1e6, (done - t0) / calls * 1e6)
        best = row if best is None or row[0] < best[0] else best
    return best


def stub_core():
    """The C++ entry points of a call return at once (their Python callers
    and argument conversion stay): what is left is the Python side."""
    from gna import _C

    def answer(*args, **kwargs):
        return "stub"

    for name in ("forward", "backward", "check_forward"):
        setattr(_C, name, answer)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="32768")
    ap.add_argument("--window", default="2048")
    ap.add_argument("--stride", default="1")
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=1,
                    help="rounds of --calls calls; the fastest round is reported")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--backend", default=None, help="gna backend (default: auto)")
    ap.add_argument("--stub", action="store_true",
                    help="C++ entry points return at once: the Python side alone")
    ap.add_argument("--breakdown", action="store_true",
                    help="also print where the host time of forward + backward goes")
    args = ap.parse_args()
    if args.stub:
        stub_core()
    shape = tuple(int(v) for v in args.shape.split("x"))
    window = tuple(int(v) for v in args.window.split("x"))
    stride = tuple(int(v) for v in args.stride.split("x"))
    na = {1: gna.na1d, 2: gna.na2d, 3: gna.na3d}[len(shape)]
    dtype = torch.float16 if args.device == "cuda" else torch.float32
    q, k, v = (torch.randn(1, *shape, args.heads, args.dim, device=args.device, dtype=dtype,
                           requires_grad=True) for _ in range(3))
    g = torch.randn_like(q)
    backend = args.backend

    def forward():
        with torch.no_grad():
            na(q, k, v, window, stride=stride, backend=backend)

    def train():
        out = na(q, k, v, window, stride=stride, backend=backend)
        torch.autograd.grad(out, (q, k, v), g)

    rows = {}
    for name, fn in (("forward", forward), ("forward+backward", train)):
        issue, wall = issue_and_device_us(fn, args.calls, args.device, args.repeats)
        rows[name] = {"host_issue_us": round(issue, 1), "wall_us": round(wall, 1)}
    print(json.dumps({"shape": shape, "window": window, "stride": stride, "heads": args.heads,
                      "dim": args.dim,
                      "device": args.device, "stub": args.stub, **rows}))
    if args.breakdown:
        breakdown(train, args, q, k, v, g, window, stride)


def breakdown(train, args, q, k, v, g, window, stride):
    """Where the host time of forward + backward goes: the C++ core called
    directly (no autograd, outputs preallocated), torch's autograd engine
    around a trivial op, torch operators by self CPU time, and on CUDA every
    kernel a call runs with its device time."""
    from torch.profiler import ProfilerActivity, profile
    from gna import _C, _torch_ops as ops
    calls, device = args.calls, args.device
    backend = args.backend or ("sm90" if device == "cuda" else "cpu")
    rank = len(window)
    w = _C.Window(list(window), list(stride), [1] * rank, [False] * rank, None)
    stream = torch.cuda.current_stream().cuda_stream if device == "cuda" else 0
    out, lse = torch.empty_like(q), torch.empty(q.shape[:-1], device=q.device)
    dq, dk, dv = (torch.empty_like(t) for t in (q, k, v))
    x = ops._export
    core_fwd = lambda: _C.forward(x(q), x(k), x(v), x(out), x(lse), None, None, w, backend,
                                  stream)  # noqa: E731
    core_fwd()
    core_bwd = lambda: _C.backward(x(q), x(k), x(v), x(out), x(lse), x(g), None, None, None,
                                   x(dq), x(dk), x(dv), None, None, w, backend, stream,
                                   False)  # noqa: E731
    leaf = torch.randn(8, device=device, requires_grad=True)
    engine = lambda: torch.autograd.grad((leaf * 2).sum(), (leaf,))  # noqa: E731
    for name, fn in (("C++ forward", core_fwd), ("C++ backward", core_bwd),
                     ("autograd engine, trivial op", engine)):
        issue, wall = issue_and_device_us(fn, calls, device, args.repeats)
        print(json.dumps({"part": name, "host_issue_us": round(issue, 1),
                          "wall_us": round(wall, 1)}))
    activities = [ProfilerActivity.CPU]
    if device == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as p:
        for _ in range(calls):
            train()
        _sync(device)
    events = p.key_averages()
    print(events.table(sort_by="self_cpu_time_total", row_limit=20))
    if device == "cuda":
        # Every kernel and copy a call runs, not only gna's: a kernel nobody
        # expected is a gap between the named kernels' sum and the wall time.
        per_call = {e.key: e.self_device_time_total / calls for e in events
                    if getattr(e, "self_device_time_total", 0) > 0}
        for key, us in sorted(per_call.items(), key=lambda kv: -kv[1]):
            print(json.dumps({"device_work": key[:90], "us_per_call": round(us, 1)}))
        print(json.dumps({"device_us_per_call": round(sum(per_call.values()), 1)}))


if __name__ == "__main__":
    main()
