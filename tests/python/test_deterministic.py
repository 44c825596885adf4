"""deterministic=True and torch.use_deterministic_algorithms(True): the
backward gives bitwise-identical gradients across runs, and the same values
(to rounding) as the default mode. On CUDA the problems are large enough
that many KV tiles add into each query tile's dQ, where the sm90 backward's
unordered additions would differ in their last bits."""
import pytest
import torch

import gna
from conftest import tolerance

CASES = {
    "1d_long_window_gqa_extra": dict(spatial=(1024,), heads=4, kv_heads=2, dim=64, extra=130,
                                     window=dict(kernel_size=255)),
    "2d_stride_dilation": dict(spatial=(40, 48), heads=2, kv_heads=2, dim=128, extra=0,
                               window=dict(kernel_size=(13, 17), stride=(2, 1), dilation=(1, 2))),
    "3d_causal": dict(spatial=(6, 12, 16), heads=2, kv_heads=1, dim=32, extra=0,
                      window=dict(kernel_size=(3, 7, 9), is_causal=(True, False, False))),
}


def _inputs(case, device, dtype):
    g = torch.Generator().manual_seed(1)
    rank = len(case["spatial"])

    def leaf(*shape):
        return torch.randn(shape, generator=g).to(device, dtype).requires_grad_()

    q = leaf(1, *case["spatial"], case["heads"], case["dim"])
    k = leaf(1, *case["spatial"], case["kv_heads"], case["dim"])
    v = leaf(1, *case["spatial"], case["kv_heads"], case["dim"])
    extra = ()
    if case["extra"]:
        extra = (leaf(1, case["extra"], case["kv_heads"], case["dim"]),
                 leaf(1, case["extra"], case["kv_heads"], case["dim"]))
    grad = torch.randn(q.shape, generator=g).to(device, dtype)
    assert rank == q.ndim - 3
    return (q, k, v, *extra), grad


def _gradients(case, tensors, grad, **flags):
    q, k, v, *extra = tensors
    xk, xv = extra if extra else (None, None)
    out = gna.neighborhood_attention(q, k, v, **case["window"], additional_keys=xk,
                                     additional_values=xv, **flags)
    return torch.autograd.grad(out, tensors, grad)


def _dtype(device):
    return torch.float16 if device == "cuda" else torch.float32


@pytest.mark.parametrize("name", CASES)
def test_deterministic_runs_are_bitwise_equal(device, name):
    case = CASES[name]
    tensors, grad = _inputs(case, device, _dtype(device))
    first = _gradients(case, tensors, grad, deterministic=True)
    for _ in range(2):
        again = _gradients(case, tensors, grad, deterministic=True)
        for a, b in zip(first, again):
            assert torch.equal(a, b)
    # Same values as the default mode, to rounding.
    default = _gradients(case, tensors, grad)
    tol = tolerance(_dtype(device), device)
    for a, b in zip(first, default):
        scale = max(1.0, b.abs().max().item())
        torch.testing.assert_close(a.float(), b.float(), atol=tol * scale, rtol=tol)


def test_torch_deterministic_algorithms_are_honored(device):
    case = CASES["1d_long_window_gqa_extra"]
    tensors, grad = _inputs(case, device, _dtype(device))
    explicit = _gradients(case, tensors, grad, deterministic=True)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        implied = _gradients(case, tensors, grad)
    finally:
        torch.use_deterministic_algorithms(previous)
    for a, b in zip(explicit, implied):
        assert torch.equal(a, b)


def test_deterministic_must_be_a_bool():
    q = torch.randn(1, 8, 1, 4)
    with pytest.raises(TypeError, match="deterministic"):
        gna.na1d(q, q, q, 3, deterministic="yes")
