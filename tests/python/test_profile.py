"""python -m gna.profile on the CPU: rows, FLOP and speedup arithmetic,
FlexAttention's mask against gna, errors naming the flag, sweeps and their
plot, the progress bar with and without tqdm, the timer."""
import io
import json
import subprocess
import sys
import time

import pytest

import gna
from gna.profile import _progress, main, time_ms

# Small and quick: one input set, two timed calls per run.
QUICK = ["--device", "cpu", "--no-compile", "--rotation", "1", "--warmup", "0", "--iters", "2"]


def profile_json(capsys, *flags):
    assert main([*QUICK, "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


def rows_by_impl(result):
    return {r["impl"]: r for r in result["rows"]}


@pytest.mark.parametrize("flags", [
    ["--shape", "13x9", "--window", "5x3", "--stride", "2x1", "--dilation", "2x1",
     "--causal", "1x0"],
    ["--shape", "40", "--window", "9", "--stride", "3", "--dilation", "2"],
    ["--shape", "6x5x7", "--window", "3x1x5", "--causal", "0x0x1", "--kv-heads", "1"],
    ["--shape", "12x12", "--window", "4", "--extra-kv", "3", "--dim-v", "8"],
])
def test_flex_with_the_same_mask_matches_gna(capsys, flags):
    result = profile_json(capsys, "--impl", "gna,flex,math", "--heads", "2", "--dim", "16", *flags)
    rows = rows_by_impl(result)
    # The note names the backend that ran: the first CPU backend of the build.
    cpu_backend = "cpu" if "cpu" in gna.backend_names() else "reference"
    assert rows["gna"]["error"] is None and rows["gna"]["note"] == cpu_backend
    assert rows["flex"]["error"] is None, rows["flex"]["error"]
    assert rows["flex"]["max_abs_diff"] < 1e-5
    assert rows["math"]["dense"] and rows["math"]["max_abs_diff"] is None


def test_flops_and_speedups_follow_the_times(capsys):
    result = profile_json(capsys, "--impl", "gna,math,flash", "--shape", "16x16", "--window", "5",
                          "--heads", "2", "--dim", "16")
    figures, rows = result["figures"], rows_by_impl(result)
    assert figures["forward_flops"] == 2 * (16 * 5) ** 2 * 2 * (16 + 16)
    assert figures["dense_forward_flops"] == 2 * 256 ** 2 * 2 * (16 + 16)
    assert rows["gna"]["tflops"] == pytest.approx(
        figures["forward_flops"] / rows["gna"]["ms"] / 1e9)
    assert rows["math"]["tflops"] == pytest.approx(
        figures["dense_forward_flops"] / rows["math"]["ms"] / 1e9)
    dense = [r for r in rows.values() if r["dense"] and r["ms"]]
    fastest = min(dense, key=lambda r: r["ms"])
    assert result["baseline"] == fastest["impl"] and fastest["speedup"] == pytest.approx(1.0)
    assert rows["gna"]["speedup"] == pytest.approx(fastest["ms"] / rows["gna"]["ms"])


def test_backward_counts_both_passes(capsys):
    result = profile_json(capsys, "--backward", "--impl", "gna,math", "--shape", "20",
                          "--window", "7", "--heads", "1", "--dim", "8")
    assert result["pass"] == "forward+backward"
    figures, row = result["figures"], rows_by_impl(result)["gna"]
    useful = figures["forward_flops"] + figures["backward_flops"]
    assert row["tflops"] == pytest.approx(useful / row["ms"] / 1e9)


def test_rows_that_cannot_run_say_why(capsys):
    result = profile_json(capsys, "--impl", "gna,cudnn", "--shape", "8", "--window", "3")
    rows = rows_by_impl(result)
    assert rows["cudnn"]["ms"] is None
    assert "CUDA" in rows["cudnn"]["error"]


def test_a_gna_that_cannot_run_fails_the_run(capsys):
    assert main([*QUICK, "--impl", "gna", "--shape", "8", "--window", "3",
                 "--backend", "no-such-backend"]) == 1
    assert "no-such-backend" in capsys.readouterr().out


@pytest.mark.parametrize("flags, named", [
    (["--shape", "13x9", "--window", "15x3"], "--window"),
    (["--shape", "13", "--window", "5", "--stride", "6"], "--stride"),
    (["--shape", "13", "--window", "5", "--dilation", "3"], "--window"),
    (["--shape", "13x9", "--window", "5x3x3"], "--window"),
    (["--shape", "13", "--window", "5", "--causal", "2"], "--causal"),
    (["--shape", "13", "--window", "5", "--heads", "3", "--kv-heads", "2"], "--kv-heads"),
    (["--shape", "13", "--window", "5", "--impl", "gna,fast"], "--impl"),
    (["--shape", "13", "--window", "5", "--sweep-window", "8:4:1"], "--sweep-window"),
    (["--shape", "13", "--window", "5", "--plot", "x.png"], "--plot"),
    (["--shape", "13", "--window", "5", "--iters", "0"], "--iters"),
    (["--device", "tpu"], "--device"),
])
def test_bad_flags_name_the_flag(capsys, flags, named):
    with pytest.raises(SystemExit) as exit:
        main(["--no-compile", *flags])
    assert exit.value.code == 2
    assert named in capsys.readouterr().err.splitlines()[-1]


def test_sweep_draws_the_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "sweep.png"
    assert main([*QUICK, "--json", "--impl", "gna,flex,math", "--shape", "12x6", "--heads", "1",
                 "--dim", "8", "--stride", "2", "--sweep-window", "1:10:3",
                 "--plot", str(plot)]) == 0
    out = capsys.readouterr()
    assert "sweep" in out.err  # the progress bar
    result = json.loads(out.out)
    # Windows 1, 4, 7, 10 on axes of 12 and 6: clamped to 6 on the second.
    assert [p["window"] for p in result["points"]] == [[1, 1], [4, 4], [7, 6], [10, 6]]
    assert [p["stride"] for p in result["points"]] == [[1, 1], [2, 2], [2, 2], [2, 2]]
    assert [r["impl"] for r in result["dense"]] == ["math"]
    for point in result["points"]:
        rows = rows_by_impl(point)
        assert set(rows) == {"gna", "flex"} and rows["gna"]["speedup"] > 0
        assert rows["flex"]["max_abs_diff"] < 1e-5
        assert point["flop_bound"] == pytest.approx(
            point["figures"]["dense_forward_flops"] / point["figures"]["forward_flops"])
    assert result["plot"] == str(plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_table(capsys, tmp_path):
    assert main([*QUICK, "--impl", "gna", "--shape", "16", "--sweep-window", "3:9:3",
                 "--no-progress", "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr()
    assert "gna ms" in out.out and "flop bound" in out.out and out.err == ""
    assert [line.split()[0] for line in out.out.splitlines() if line.split()[0] in "369"] == \
        ["3", "6", "9"]


def test_progress_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    log = io.StringIO()
    bar = _progress.progress(3, "sweep", file=log)
    for window in ("3", "6", "9"):
        bar.set_postfix_str(f"window {window}")
        bar.update()
    bar.close()
    assert log.getvalue().splitlines() == [
        "sweep [######..............] 1/3 window 3",
        "sweep [#############.......] 2/3 window 6",
        "sweep [####################] 3/3 window 9"]


def test_cpu_timer_is_the_wall_clock():
    calls = []

    def sleep(ms):
        calls.append(ms)
        time.sleep(ms / 1e3)
    ms = time_ms(sleep, [(5,)], "cpu", warmup=1, iters=4)
    assert 5 <= ms < 50
    assert len(calls) == 1 + 3 * 4  # warm-up, then three runs of four calls


def test_the_module_runs_with_its_defaults():
    """`python -m gna.profile` as a user runs it on a CPU: FlexAttention compiled."""
    done = subprocess.run([sys.executable, "-m", "gna.profile", "--device", "cpu", "--shape", "8x8",
                           "--window", "3", "--heads", "1", "--dim", "16", "--iters", "2"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    for impl in ("gna", "flex", "flash", "math"):
        assert impl in lines, done.stdout
    assert "compiled, same mask" in lines["flex"] or "n/a" in lines["flex"], done.stdout
    assert f"gna {gna.__version__}" in done.stdout
