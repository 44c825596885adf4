"""The cpu backend from Python: what `auto` picks for CPU tensors, its thread
count following torch.get_num_threads() (GNA_NUM_THREADS overriding it), and
the same bits for any thread count."""
import math
import os
import signal
import subprocess
import sys

import pytest
import torch

import gna
from gna import _C

pytestmark = pytest.mark.skipif("cpu" not in gna.backend_names(),
                                reason="gna was built without the cpu backend")


def window(k):
    return _C.Window([k], [1], [1], [False], None)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_auto_picks_the_cpu_backend_except_for_float64(dtype):
    q = torch.randn(1, 20, 2, 8, dtype=dtype)
    out, lse = torch.empty_like(q), torch.empty(1, 20, 2)
    name = _C.forward(q, q, q, out, lse, None, None, window(5))
    assert name == ("reference" if dtype == torch.float64 else "cpu")


def test_float64_on_the_cpu_backend_says_why():
    q = torch.randn(1, 8, 1, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="backend = cpu.*float64"):
        gna.na1d(q, q, q, 3, backend="cpu")


def test_threads_follow_torch():
    before = torch.get_num_threads()
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            assert _C.cpu_threads() == n
    finally:
        torch.set_num_threads(before)


def test_gna_num_threads_overrides_torch():
    code = "import torch, gna; torch.set_num_threads(3); print(gna._C.cpu_threads())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, GNA_NUM_THREADS="2"), check=True)
    assert result.stdout.strip() == "2"


def test_same_bits_for_any_thread_count():
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 24, 20, 4, 32, generator=generator).requires_grad_()
               for _ in range(3))
    results = []
    before = torch.get_num_threads()
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            out = gna.na2d(q, k, v, kernel_size=(7, 5), dilation=(2, 1))
            results.append((out, *torch.autograd.grad(out.sum(), (q, k, v))))
    finally:
        torch.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs os.fork and /proc")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")
def test_a_forked_child_starts_its_own_threads():
    # A child (DataLoader workers fork) has none of the parent's pool
    # threads: it must start its own pool rather than count on those.
    q = torch.randn(1, 64, 2, 16)
    expected = gna.na1d(q, q, q, 9, backend="cpu")  # the parent's pool is running now
    pid = os.fork()
    if pid == 0:
        signal.alarm(30)  # a child stuck waiting on the parent's threads dies
        torch.set_num_threads(2)
        before = len(os.listdir("/proc/self/task"))
        ok = torch.equal(gna.na1d(q, q, q, 9, backend="cpu"), expected)
        started = len(os.listdir("/proc/self/task")) > before
        os._exit(0 if ok and started else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("magnitude", [1e4, 1e19, 1e39])
def test_huge_scores_match_the_float64_answer(dtype, magnitude):
    # Scores of about `magnitude`: fp32 loses their differences' digits
    # (1e4), is far off (1e19) or overflows (1e39, q . k past 3.4e38); the
    # cpu backend must still answer as the reference does.
    gen = torch.Generator().manual_seed(int(math.log10(magnitude)))
    q, k, v = (torch.randn(2, 11, 2, 8, generator=gen, dtype=torch.float64) for _ in range(3))
    q, k = q * math.sqrt(magnitude), k * math.sqrt(magnitude)
    low = [t.to(dtype).requires_grad_() for t in (q, k, v)]
    wide = [t.detach().double().requires_grad_() for t in low]
    out, lse = gna.na1d(*low, 5, backend="cpu", return_lse=True)
    ref_out, ref_lse = gna.na1d(*wide, 5, backend="reference", return_lse=True)
    # The output is a weighted mean of values: finite. The float32 LSE is
    # inf where the true one passes float32's range, as the reference's.
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), ref_out, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(lse.double(), ref_lse.double(), atol=0, rtol=1e-5)
    g = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    grads = torch.autograd.grad(out, low, g.to(dtype))
    ref_grads = torch.autograd.grad(ref_out, wide, g)
    for grad, ref in zip(grads, ref_grads):
        assert torch.isfinite(grad).all()
        torch.testing.assert_close(grad.double(), ref, atol=2e-2, rtol=2e-2)
