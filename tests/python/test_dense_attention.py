"""gna.attention (dense and causal self attention) against PyTorch's SDPA."""
import pytest
import torch
import torch.nn.functional as F

import gna
from conftest import float_dtypes, tolerance


def sdpa(q, k, v, is_causal, scale):
    group = q.shape[2] // k.shape[2]
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    return F.scaled_dot_product_attention(q, k, v, is_causal=is_causal,
                                          scale=scale).transpose(1, 2)


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("heads,kv_heads,dim,dim_v", [(2, 2, 16, 16), (4, 1, 32, 16)])
def test_attention_matches_sdpa(device, is_causal, heads, kv_heads, dim, dim_v):
    g = torch.Generator().manual_seed(1)
    for dtype in float_dtypes(device):
        shapes = [(2, 33, heads, dim), (2, 33, kv_heads, dim), (2, 33, kv_heads, dim_v)]
        q, k, v = (torch.randn(s, generator=g).to(device, dtype).requires_grad_()
                   for s in shapes)
        out = gna.attention(q, k, v, is_causal=is_causal, scale=0.2)
        q64, k64, v64 = (t.detach().cpu().double().requires_grad_() for t in (q, k, v))
        expected = sdpa(q64, k64, v64, is_causal, 0.2)
        tol = tolerance(dtype, device)
        torch.testing.assert_close(out.cpu().double(), expected.detach(), atol=tol, rtol=tol)

        grad = torch.randn(expected.shape, generator=g, dtype=torch.float64)
        (out.double() * grad.to(device)).sum().backward()
        (expected * grad).sum().backward()
        for t, t64 in ((q, q64), (k, k64), (v, v64)):
            torch.testing.assert_close(t.grad.cpu().double(), t64.grad, atol=2 * tol,
                                       rtol=2 * tol)


def test_attention_lse_and_empty_sequence(device):
    q = torch.randn(1, 5, 2, 8, device=device)
    out, lse = gna.attention(q, q, q, return_lse=True)
    scores = torch.einsum("bqhd,bkhd->bhqk", q.double(), q.double()) * 8 ** -0.5
    expected = torch.logsumexp(scores, -1).transpose(1, 2)
    torch.testing.assert_close(lse.double(), expected, atol=1e-4, rtol=1e-4)
    empty = torch.empty(1, 0, 2, 8, device=device)
    assert gna.attention(empty, empty, empty).shape == (1, 0, 2, 8)
