#!/usr/bin/env python3
"""Bound (and measured) speedup over dense attention against window size.

Plots, for the 2-D 256x256 and 3-D 30x48x80 benchmark problems (fp16, head
dim 128, 24 heads, batch 1, non-causal, stride 1), with the window scaled from
the benchmark window (80x80, 18x24x24) down to a few tokens and up to the
whole extent:

* flop bound:  dense work / useful work (what a perfect kernel could reach),
* tile bound:  dense work / work of the sm90 chooser's tiles (`gna sim`),
* predicted:   the chooser's cost-model speedup over dense under the same model,
* measured:    points from a JSON file written on the H200 (optional).

Every simulated figure comes from `gna sim --json` (build/bin/gna by default).

Measured JSON (for bench/peers.py to write; extra fields are ignored):

    {"cases": [
      {"shape": [256, 256], "window": [80, 80], "stride": [1, 1],
       "label": "gna", "speedup": 7.4},
      ...
    ]}

    shape, window: lists, one entry per axis; stride: optional, default 1s;
    label: the series ("gna", "flex", "natten", ...); speedup: cuDNN dense
    forward time / that implementation's forward time.

Usage:
    python3 bench/plot_sim.py [--gna build/bin/gna] [--measured peers.json]
                              [--out bench/sim_bound.png]

Needs matplotlib==3.10.7 (pip install matplotlib==3.10.7).
"""
import argparse
import json
import math
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")  # files only; no display on the H200 host
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

PROBLEMS = [
    {"name": "2-D 256x256", "shape": [256, 256], "window": [80, 80], "heads": 24},
    {"name": "3-D 30x48x80", "shape": [30, 48, 80], "window": [18, 24, 24], "heads": 24},
]
# Scale factors of the benchmark window, from a quarter of it to the whole
# shape; 1.0 is the benchmark case itself.
SCALES = [0.25 * 1.15 ** i for i in range(30)]


def xs(values):
    return "x".join(str(v) for v in values)


def scaled_windows(problem):
    """Distinct windows t * benchmark window, clamped to [1, extent]."""
    seen, out = set(), []
    for t in SCALES + [1.0]:
        w = tuple(min(n, max(1, round(t * k))) for n, k in zip(problem["shape"], problem["window"]))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return sorted(out, key=math.prod)


def simulate(gna, problem, window):
    cmd = [gna, "sim", "--shape", xs(problem["shape"]), "--window", xs(window),
           "--heads", str(problem["heads"]), "--dim", "128", "--top", "1", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def measured_points(path, problem):
    """(window tokens, speedup, label) of the measured cases of this problem."""
    if not path:
        return []
    with open(path) as f:
        cases = json.load(f)["cases"]
    points = []
    for c in cases:
        if list(c["shape"]) != problem["shape"]:
            continue
        stride = c.get("stride") or [1] * len(c["shape"])
        label = c.get("label", "measured")
        if any(s != 1 for s in stride):
            label += f" (stride {xs(stride)})"
        points.append((math.prod(c["window"]), float(c["speedup"]), label))
    return points


def plot_problem(ax, gna, problem, measured_path):
    windows = scaled_windows(problem)
    sims = [simulate(gna, problem, w) for w in windows]
    x = [math.prod(w) for w in windows]
    ax.plot(x, [s["flop_bound"] for s in sims], "-", color="black", label="flop bound")
    ax.plot(x, [s["tile_bound"] for s in sims], "-o", ms=3, color="tab:blue",
            label="tile bound (chooser's tiles)")
    ax.plot(x, [s["predicted_speedup"] for s in sims], "--", color="tab:green",
            label="predicted (cost model)")
    bench = math.prod(problem["window"])
    ax.axvline(bench, color="gray", lw=0.8, ls=":")
    ax.annotate(f"benchmark window {xs(problem['window'])}", (bench, 0.98),
                xycoords=("data", "axes fraction"), rotation=90, fontsize=8, color="gray",
                va="top", ha="right")
    markers = iter("sD^vP*X")
    by_label = {}
    for wx, speedup, label in measured_points(measured_path, problem):
        by_label.setdefault(label, []).append((wx, speedup))
    for label, pts in sorted(by_label.items()):
        ax.plot([p[0] for p in pts], [p[1] for p in pts], next(markers, "o"), ms=7,
                ls="none", label=f"measured: {label}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    # Measured points may fall below 1x (slower than dense): keep them in view.
    lowest = min([0.9] + [p[1] * 0.8 for pts in by_label.values() for p in pts])
    ax.set_ylim(bottom=lowest)
    ax.set_xlabel("window tokens (window = t x benchmark window, clamped to the shape)")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.set_ylabel("speedup over dense attention")
    ax.set_title(f"{problem['name']}, {problem['heads']} heads, fp16, D=128, stride 1")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gna", default="build/bin/gna", help="the gna command line")
    parser.add_argument("--measured", help="JSON of measured speedups (format above)")
    parser.add_argument("--out", default="bench/sim_bound.png", help="PNG to write")
    args = parser.parse_args()
    fig, axes = plt.subplots(1, len(PROBLEMS), figsize=(13, 5.2))
    for ax, problem in zip(axes, PROBLEMS):
        plot_problem(ax, args.gna, problem, args.measured)
    fig.tight_layout()
    fig.savefig(args.out, dpi=130)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
