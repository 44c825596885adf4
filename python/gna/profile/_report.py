"""The profiler's table and JSON."""
import dataclasses
import json

import torch

from .. import __version__


def _x(values):
    return "x".join(str(int(v)) for v in values)


def _num(value, digits=4):
    if value is None:
        return "-"
    return f"{value:.2e}" if 0 < abs(value) < 0.01 else f"{value:.{digits}g}"


def environment(problem, backward):
    device = torch.device(problem.device)
    name = f"{torch.cuda.get_device_name(device)} ({device})" if device.type == "cuda" else "cpu"
    return {"device": name, "torch": torch.__version__, "gna": __version__,
            "pass": "forward+backward" if backward else "forward"}


def bounds_line(figures, backward):
    flop_bound = figures["dense_forward_flops"] / max(figures["forward_flops"], 1.0)
    text = f"flop bound {flop_bound:.2f}x (dense FLOPs / useful FLOPs)"
    sm90 = figures.get("sm90")
    if sm90 and not backward:
        text += (f"; sm90 tiles {sm90['tiles']}: tile bound {sm90['tile_bound']:.2f}x, "
                 f"cost model {sm90['predicted_speedup']:.2f}x (H200 forward)")
    return text


def print_table(problem, figures, rows, baseline, backward):
    env = environment(problem, backward)
    print(f"gna.profile  {env['pass']} on {env['device']}, torch {env['torch']}, gna {env['gna']}")
    print(f"problem      {figures['problem']}")
    print(f"bounds       {bounds_line(figures, backward)}")
    width = max([len(r.note) for r in rows] + [4])
    print(f"{'impl':6} {'note':{width}} {'ms':>10} {'TFLOP/s':>9} {'speedup':>8} {'max|diff|':>10}")
    for r in rows:
        if r.error:
            print(f"{r.impl:6} n/a: {r.error}")
            continue
        speedup = "-" if r.speedup is None else f"{r.speedup:.2f}x"
        print(f"{r.impl:6} {r.note:{width}} {_num(r.ms):>10} {_num(r.tflops):>9} {speedup:>8} "
              f"{_num(r.max_abs_diff, 2):>10}")
    if baseline:
        print(f"speedup: time of the fastest dense row ({baseline}) / the row's time; TFLOP/s: "
              "useful FLOPs (dense rows: every pair); max|diff|: forward output vs gna's")


def print_sweep(problem, points, dense_rows, baseline, backward):
    env = environment(problem, backward)
    print(f"gna.profile  {env['pass']} sweep on {env['device']}, torch {env['torch']}, "
          f"gna {env['gna']}")
    print(f"problem      {points[0]['figures']['problem']} (window swept, clamped per axis)")
    for r in dense_rows:
        print(f"dense        {r.impl}: " + (f"n/a: {r.error}" if r.error else f"{_num(r.ms)} ms"))
    impls = [r.impl for r in points[0]["rows"]]
    header = f"{'window':>12} {'flop bound':>10} {'tile bound':>10} {'sm90 model':>10}"
    header += "".join(f" {name + ' ms':>10} {name + ' x':>8}" for name in impls)
    print(header)
    for p in points:
        sm90 = p["figures"].get("sm90") or {}
        line = (f"{_x(p['window']):>12} {_num(p['flop_bound']):>10} "
                f"{_num(sm90.get('tile_bound')):>10} {_num(sm90.get('predicted_speedup')):>10}")
        for r in p["rows"]:
            if r.error:
                line += f" {'n/a':>10} {'-':>8}"
            else:
                line += f" {_num(r.ms):>10} {_num(r.speedup, 3):>8}"
        print(line)
    if baseline:
        print(f"x: speedup over the fastest dense row ({baseline})")
    for r in points[-1]["rows"]:
        if r.error:
            print(f"{r.impl}: n/a: {r.error}")


def as_json(problem, backward, **parts):
    """JSON text of the environment, the problem and `parts` (rows as dicts)."""
    def plain(value):
        if dataclasses.is_dataclass(value):
            return dataclasses.asdict(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value
    out = {**environment(problem, backward), "problem": dataclasses.asdict(problem)}
    out.update({k: plain(v) for k, v in parts.items()})
    return json.dumps(out, indent=1)
