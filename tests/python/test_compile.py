"""torch.library integration: opcheck of both custom ops, and torch.compile
with fullgraph=True (no graph breaks) of the module and the functional ops,
forward and backward. Compilation is slow on a small CPU: few tests, tiny
problems, and only one of them through Inductor."""
import pytest
import torch

import gna
from conftest import tolerance


_generator = torch.Generator().manual_seed(0)


def _leaf(*shape, device="cpu"):
    return torch.randn(shape, generator=_generator).to(device).requires_grad_()


def forward_args(device, extra):
    """Arguments of gna::na_forward for a small 2-D GQA problem."""
    q = _leaf(1, 4, 5, 2, 4, device=device)
    k = _leaf(1, 4, 5, 1, 4, device=device)
    v = _leaf(1, 4, 5, 1, 3, device=device)
    xk, xv = None, None
    if extra:
        xk, xv = _leaf(1, 2, 1, 4, device=device), _leaf(1, 2, 1, 3, device=device)
    return (q, k, v, xk, xv, [3, 2], [1, 2], [1, 2], [True, False], None, "auto", False)


@pytest.mark.parametrize("extra", [False, True])
def test_opcheck_forward(device, extra):
    torch.library.opcheck(torch.ops.gna.na_forward.default, forward_args(device, extra))


@pytest.mark.parametrize("extra", [False, True])
def test_opcheck_backward(device, extra):
    q, k, v, xk, xv, *window = forward_args(device, extra)
    out, lse = torch.ops.gna.na_forward(q, k, v, xk, xv, *window)
    detach = [t.detach() if t is not None else None for t in (q, k, v, out, lse, xk, xv)]
    grad_out, grad_lse = torch.randn_like(out), torch.randn_like(lse)
    torch.library.opcheck(torch.ops.gna.na_backward.default,
                          (grad_out, grad_lse, *detach, *window))


def _check_compiled(fn, compiled, tensors):
    tol = tolerance(torch.float32, tensors[0].device.type)
    expected = fn(*tensors)
    expected_grads = torch.autograd.grad(sum(o.float().sum() for o in expected), tensors)
    actual = compiled(*tensors)
    actual_grads = torch.autograd.grad(sum(o.float().sum() for o in actual), tensors)
    for a, b in zip((*actual, *actual_grads), (*expected, *expected_grads)):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


def test_compile_module_fullgraph_inductor(device):
    torch._dynamo.reset()
    torch.manual_seed(0)
    module = gna.NeighborhoodAttention2D(16, 2, kernel_size=(3, 3), dilation=(1, 2),
                                         is_causal=(True, False)).to(device)
    compiled = torch.compile(module, fullgraph=True)
    x = _leaf(2, 5, 8, 16, device=device)
    _check_compiled(lambda x: (module(x),), lambda x: (compiled(x),), (x,))


def test_compile_functional_fullgraph(device):
    torch._dynamo.reset()

    def model(q, k, v, xk, xv):
        out, lse = gna.na3d(q, k, v, (1, 3, 2), stride=(1, 2, 1), is_causal=(True, False, False),
                            additional_keys=xk, additional_values=xv, return_lse=True)
        dense = gna.attention(q.flatten(1, 3), k.flatten(1, 3), v.flatten(1, 3), is_causal=True)
        merged, _ = gna.merge_attentions([out, dense.view_as(out)], [lse, lse])
        return merged, lse.exp()

    # aot_eager traces forward and backward like Inductor does, minus codegen.
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    tensors = (_leaf(1, 2, 4, 3, 2, 4, device=device), _leaf(1, 2, 4, 3, 1, 4, device=device),
               _leaf(1, 2, 4, 3, 1, 4, device=device), _leaf(1, 3, 1, 4, device=device),
               _leaf(1, 3, 1, 4, device=device))
    _check_compiled(model, compiled, tensors)


def test_compile_dynamic_shapes_with_symbolic_window(device):
    torch._dynamo.reset()

    def model(q):  # the window follows the (symbolic) sequence length
        return (gna.na1d(q, q, q, kernel_size=q.shape[1], is_causal=True),)

    compiled = torch.compile(model, fullgraph=True, dynamic=True, backend="aot_eager")
    for tokens in (6, 9):
        _check_compiled(model, compiled, (_leaf(1, tokens, 2, 4, device=device),))
