"""--sweep-window A:B:STEP: the neighborhood implementations at each window
size, dense attention once (its time does not depend on the window), and a
PNG of speedup against window size beside the simulator's bounds."""
from . import _impls
from ._measure import add_speedups, measure
from ._progress import progress


def parse_windows(text):
    """'A:B:STEP' -> [A, A + STEP, ..., <= B]; ValueError naming the flag."""
    parts = text.split(":")
    try:
        start, stop, step = (int(p) for p in parts) if len(parts) == 3 else (None,) * 3
    except ValueError:
        start = None
    if start is None or start < 1 or stop < start or step < 1:
        raise ValueError(f"--sweep-window {text!r}: expected A:B:STEP with 1 <= A <= B and "
                         "STEP >= 1, like 8:64:8")
    return list(range(start, stop + 1, step))


def sweep(problem, names, options, sizes, show_progress=True):
    """(points, dense_rows, baseline). Each point: window, stride, figures,
    flop_bound and rows (with speedups). Windows that clamp to the same one
    are measured once."""
    dense_names = [n for n in names if n in _impls.DENSE]
    local_names = [n for n in names if n not in _impls.DENSE]
    problems = []
    for size in sizes:
        p = problem.with_window(size)
        if p not in problems:
            problems.append(p)
    bar = progress(len(problems) + bool(dense_names), "gna.profile sweep", show_progress)
    dense_rows = []
    if dense_names:
        bar.set_postfix_str("dense")
        dense_rows = measure(problems[0], dense_names, options, problems[0].figures())
        bar.update()
    points = []
    for p in problems:
        bar.set_postfix_str("window " + "x".join(map(str, p.window)))
        figures = p.figures()
        rows = measure(p, local_names, options, figures)
        flop_bound = figures["dense_forward_flops"] / max(figures["forward_flops"], 1.0)
        points.append({"window": list(p.window), "stride": list(p.stride), "figures": figures,
                       "flop_bound": flop_bound, "rows": rows})
        bar.update()
    bar.close()
    baseline = None
    for point in points:
        baseline = add_speedups(point["rows"], dense_rows)
    return points, dense_rows, baseline


def plot(points, baseline, backward, title, path):
    """Writes the PNG; ImportError when matplotlib is missing."""
    import matplotlib
    matplotlib.use("Agg")  # a file, no display
    import matplotlib.pyplot as plt

    x = [max(p["window"]) for p in points]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ax.plot(x, [p["flop_bound"] for p in points], "k-", label="flop bound (dense / useful FLOPs)")
    if not backward:  # the cost model is of the sm90 forward kernel
        sm90 = [(xi, p["figures"]["sm90"]) for xi, p in zip(x, points) if p["figures"].get("sm90")]
        if sm90:
            ax.plot([a for a, _ in sm90], [s["tile_bound"] for _, s in sm90], "k--",
                    label="sm90 tile bound (simulator)")
            ax.plot([a for a, _ in sm90], [s["predicted_speedup"] for _, s in sm90], "k:",
                    label="sm90 cost model (H200)")
    for name, marker in (("gna", "o"), ("flex", "s")):
        measured = [(xi, r.speedup) for xi, p in zip(x, points) for r in p["rows"]
                    if r.impl == name and r.speedup]
        if measured:
            ax.plot([a for a, _ in measured], [s for _, s in measured], marker,
                    label=f"{name}, measured")
    ax.set_yscale("log")
    ax.set_xlabel("window size (largest axis)")
    ax.set_ylabel(f"speedup over dense ({baseline or 'no dense run'})")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
