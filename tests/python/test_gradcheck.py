"""torch.autograd.gradcheck of the custom ops in float64 on CPU."""
import pytest
import torch

import gna


def inputs(shape_q, kv_heads, dim_v, extra=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    batch, *spatial, heads, dim = shape_q

    def leaf(*shape):
        return torch.randn(shape, generator=g, dtype=torch.float64).requires_grad_()

    tensors = [leaf(*shape_q), leaf(batch, *spatial, kv_heads, dim),
               leaf(batch, *spatial, kv_heads, dim_v)]
    if extra:
        tensors += [leaf(batch, extra, kv_heads, dim), leaf(batch, extra, kv_heads, dim_v)]
    return tuple(tensors)


CASES = {
    "1d_additional_kv": ((1, 6, 2, 3), 1, 2, 2, dict(kernel_size=3, is_causal=False)),
    "2d_stride_dilation_causal_gqa": ((1, 4, 5, 2, 3), 1, 4, 0,
                                      dict(kernel_size=(2, 2), stride=(1, 2),
                                           dilation=(2, 1), is_causal=(False, True))),
    "3d": ((1, 3, 3, 4, 1, 2), 1, 2, 1, dict(kernel_size=(1, 3, 2), is_causal=(True, False,
                                                                              False))),
}


@pytest.mark.parametrize("name", CASES)
def test_gradcheck_output(name):
    shape_q, kv_heads, dim_v, extra, window = CASES[name]

    def f(q, k, v, *extra_kv):
        xk, xv = extra_kv if extra_kv else (None, None)
        return gna.neighborhood_attention(q, k, v, **window, scale=0.7, additional_keys=xk,
                                          additional_values=xv)

    assert torch.autograd.gradcheck(f, inputs(shape_q, kv_heads, dim_v, extra))


@pytest.mark.parametrize("name", ["1d_additional_kv", "2d_stride_dilation_causal_gqa"])
def test_gradcheck_through_lse(name):
    shape_q, kv_heads, dim_v, extra, window = CASES[name]

    def f(q, k, v, *extra_kv):
        xk, xv = extra_kv if extra_kv else (None, None)
        return gna.neighborhood_attention(q, k, v, **window, additional_keys=xk,
                                          additional_values=xv, return_lse=True)

    # The LSE is float32 even for float64 inputs (the core's contract), so
    # finite differences need a larger step and tolerance to see through its
    # rounding; the analytic gradient itself is exact (test_against_oracle).
    assert torch.autograd.gradcheck(f, inputs(shape_q, kv_heads, dim_v, extra), eps=1e-3,
                                    atol=1e-3)


def test_gradcheck_merge_attentions():
    g = torch.Generator().manual_seed(0)
    outs = [torch.randn(1, 3, 2, 4, generator=g, dtype=torch.float64).requires_grad_()
            for _ in range(3)]
    lses = [torch.randn(1, 3, 2, generator=g, dtype=torch.float64).requires_grad_()
            for _ in range(3)]
    assert torch.autograd.gradcheck(
        lambda *t: gna.merge_attentions(list(t[:3]), list(t[3:])), (*outs, *lses))
