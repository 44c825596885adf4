"""The eager call's short path (_torch_ops.attend): it takes the common
calls, gives what the checked path gives, and leaves every other call,
good or bad, to the checked path, whatever ran before."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import gna
from gna import _arguments, _torch_ops


def small(seed=0, shape=(1, 12, 2, 8), dtype=torch.float32, grad=False, device="cpu"):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen, dtype=dtype).to(device).requires_grad_(grad)
            for _ in range(3)]


def on(device, seed, grad=False):
    # On CUDA, a problem the sm90 kernels take (float16, head dim 64).
    if device == "cuda":
        return small(seed, (1, 256, 2, 64), torch.float16, grad, device)
    return small(seed, grad=grad)


@pytest.fixture
def no_checked_path(monkeypatch):
    """The checked path fails if it runs."""
    def refuse(*args, **kwargs):
        raise AssertionError("the checked path ran")
    monkeypatch.setattr(_arguments, "check_tensors", refuse)


@pytest.mark.parametrize("grad", [False, True])
def test_common_calls_skip_the_checked_path(no_checked_path, grad):
    q, k, v = small(grad=grad)
    out = gna.na1d(q, k, v, 5, stride=2, dilation=1, is_causal=True, scale=0.3)
    out2, lse = gna.na2d(*small(shape=(1, 6, 5, 2, 8), grad=grad), (3, 5), return_lse=True)
    assert out.shape == q.shape and lse.shape == (1, 6, 5, 2)
    if grad:
        (out.sum() + out2.sum() + lse.sum()).backward()
        assert q.grad is not None


@pytest.mark.parametrize("grad", [False, True])
def test_short_and_checked_paths_agree(device, grad):
    q, k, v = on(device, seed=1, grad=grad)
    # np.int64 is a valid kernel size the short path leaves to the checked
    # one; deterministic: the CUDA backward's bits repeat only then.
    short = gna.na1d(q, k, v, 5, dilation=2, return_lse=True, deterministic=True)
    checked = gna.na1d(q, k, v, np.int64(5), dilation=2, return_lse=True, deterministic=True)
    for a, b in zip(short, checked):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    if grad:
        g = torch.randn_like(q)
        want = torch.autograd.grad(checked[0], (q, k, v), g)
        got = torch.autograd.grad(short[0], (q, k, v), g)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_the_output_without_lse_is_the_output_with_it(device):
    q, k, v = on(device, seed=2)
    with torch.no_grad():
        alone = gna.na1d(q, k, v, 7)
        out, lse = gna.na1d(q, k, v, 7, return_lse=True)
    torch.testing.assert_close(alone, out, atol=0, rtol=0)
    assert lse.dtype == torch.float32 and torch.isfinite(lse).all()


@pytest.mark.parametrize("bad, equal, error", [
    (dict(kernel_size=3.0), dict(kernel_size=3), ValueError),
    (dict(kernel_size=True), dict(kernel_size=1), ValueError),
    (dict(kernel_size=(3.0,)), dict(kernel_size=(3,)), ValueError),
    (dict(kernel_size=3, stride=True), dict(kernel_size=3, stride=1), ValueError),
    (dict(kernel_size=3, is_causal=1), dict(kernel_size=3, is_causal=True), ValueError),
    (dict(kernel_size=3, is_causal=(0,)), dict(kernel_size=3, is_causal=(False,)), ValueError),
    (dict(kernel_size=3, deterministic=1), dict(kernel_size=3, deterministic=True), TypeError),
    (dict(kernel_size=3, return_lse="yes"), dict(kernel_size=3, return_lse=True), TypeError),
    (dict(kernel_size=3, scale="0.5"), dict(kernel_size=3, scale=0.5), TypeError),
    (dict(kernel_size=3, backend="cpu "), dict(kernel_size=3, backend="cpu"),
     NotImplementedError),
])
def test_equal_values_of_other_types_are_still_refused(bad, equal, error):
    # The valid call first, so that a plan keyed on equal values (3.0 == 3,
    # True == 1) would be there for the bad one to find.
    q, k, v = small()
    gna.na1d(q, k, v, **equal)
    with pytest.raises(error):
        gna.na1d(q, k, v, **bad)


def test_tensors_the_short_path_leaves_alone_still_run():
    q, k, v = small(seed=3)
    want = gna.na1d(q, k, v, 3)
    param = torch.nn.Parameter(q.clone())
    torch.testing.assert_close(gna.na1d(param, k, v, 3), want)
    neg = torch.complex(torch.zeros_like(k), -k).conj().imag  # == k, negative bit
    torch.testing.assert_close(gna.na1d(q, neg, v, 3), want, atol=0, rtol=0)
    with pytest.raises(ValueError, match="dtype"):
        gna.na1d(q, k.double(), v, 3)


def test_plans_are_shared_and_bounded():
    _torch_ops._PLANS.clear()
    a = _torch_ops.plan_for(1, 3, 1, 1, False, None, None, False)
    assert _torch_ops.plan_for(1, (3,), None, [1], (False,), None, "auto", False) is a
    assert _torch_ops.plan_for(1, 3, 1, 1, False, 0.0, None, False) is a  # 0: the default
    assert _torch_ops.plan_for(1, 3, 1, 1, False, None, None, True) is not a
    for n in range(2 * _torch_ops._MAX_PLANS):
        _torch_ops.plan_for(1, 3 + n, 1, 1, False, None, None, False)
    assert len(_torch_ops._PLANS) <= _torch_ops._MAX_PLANS


def test_a_graph_alive_at_exit_leaves_no_leak_report():
    # Autograd graphs keep their call's plan: nanobind reports _C objects
    # alive when the interpreter ends, so plans hold none.
    code = ("import torch, gna\n"
            "q = torch.randn(1, 8, 1, 4, requires_grad=True)\n"
            "out = gna.na1d(q, q, q, 3)\n"
            "out.sum().backward()\n"
            "kept = gna.na1d(q, q, q, 3, q_tile_shape=(4,), kv_tile_shape=(4,))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ), check=True)
    assert "leak" not in result.stderr, result.stderr


@pytest.mark.parametrize("op", ["na1d", "attention"])
def test_create_graph_gives_gradients_and_refuses_a_second_differentiation(op):
    # The backward runs once_differentiable's guard only when it builds a
    # graph: first-order gradients as without create_graph, and a clear
    # error when they are differentiated again.
    q, k, v = small(seed=4, dtype=torch.float64, grad=True)
    run = (lambda: gna.na1d(q, k, v, 5)) if op == "na1d" else (lambda: gna.attention(q, k, v))
    g = torch.randn_like(q).requires_grad_()  # the gradients then require grad
    want = torch.autograd.grad(run(), (q, k, v), g)
    got = torch.autograd.grad(run(), (q, k, v), g, create_graph=True)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert got[0].requires_grad and not want[0].requires_grad
    with pytest.raises(RuntimeError, match="differentiate twice"):
        got[0].sum().backward()
