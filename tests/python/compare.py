"""Runs gna and the mask oracle on one problem and compares outputs and
gradients (of query, key, value, additional KV, with gradient flowing into
both the output and the LSE)."""
import torch

import gna
import mask_attention
from conftest import make_inputs, tolerance


def assert_close(actual, expected, tol, what):
    torch.testing.assert_close(actual.detach().cpu().double(), expected.detach().double(),
                               atol=tol, rtol=tol, msg=lambda m: f"{what}: {m}")


def check_problem(problem, dtype, device, seed=0, backward=True):
    inputs = make_inputs(problem, dtype, device, seed)
    window = problem.window()
    out, lse = gna.neighborhood_attention(
        inputs["query"], inputs["key"], inputs["value"], **window, scale=problem.scale,
        additional_keys=inputs.get("additional_keys"),
        additional_values=inputs.get("additional_values"), return_lse=True)
    assert out.dtype == dtype and out.device.type == torch.device(device).type
    assert lse.dtype == torch.float32

    oracle_inputs = {n: t.detach().cpu().double().requires_grad_() for n, t in inputs.items()}
    ref_out, ref_lse = mask_attention.attention(
        oracle_inputs["query"], oracle_inputs["key"], oracle_inputs["value"], **window,
        scale=problem.scale, additional_keys=oracle_inputs.get("additional_keys"),
        additional_values=oracle_inputs.get("additional_values"))
    tol = tolerance(dtype, device)
    assert_close(out, ref_out, tol, f"output of {problem}")
    lse_tol = {torch.float64: 1e-5, torch.float32: max(tol, 1e-5)}.get(dtype, 1e-3)
    assert_close(lse, ref_lse, lse_tol, f"lse of {problem}")
    if not backward:
        return

    generator = torch.Generator().manual_seed(seed + 1)
    grad_out = torch.randn(ref_out.shape, generator=generator, dtype=torch.float64)
    grad_lse = torch.randn(ref_lse.shape, generator=generator, dtype=torch.float64)
    loss = (out.double() * grad_out.to(device)).sum() + (lse.double() * grad_lse.to(device)).sum()
    loss.backward()
    ((ref_out * grad_out).sum() + (ref_lse * grad_lse).sum()).backward()
    # The backward recomputes P from the float32 LSE, which bounds float64
    # gradients to about 1e-7 relative accuracy.
    grad_tol = {torch.float64: 1e-6, torch.float32: tol}.get(dtype, 2 * tol)
    for name, t in inputs.items():
        assert_close(t.grad, oracle_inputs[name].grad, grad_tol, f"grad of {name} of {problem}")
