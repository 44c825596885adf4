"""gna.attention against PyTorch's SDPA: dense and causal self attention,
cross-attention (another key length) and packed variable-length batches,
forward and gradients, on random problems."""
import random

import numpy as np
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
    # Queries without keys in an empty batch, keys without queries: nothing to do.
    no_batch = torch.empty(0, 5, 2, 8, device=device)
    assert gna.attention(no_batch, no_batch[:, :0], no_batch[:, :0]).shape == (0, 5, 2, 8)
    k = torch.randn(1, 4, 2, 8, device=device, requires_grad=True)
    out = gna.attention(empty, k, k)
    out.sum().backward()
    assert out.shape == (1, 0, 2, 8) and not k.grad.any()


def _cross_problem(seed, device, dtype, lq, lk):
    rng = random.Random(seed)
    kv_heads = rng.choice([1, 2])
    heads, dim, dim_v = kv_heads * rng.choice([1, 2]), rng.choice([4, 8]), rng.choice([3, 8])
    g = torch.Generator().manual_seed(seed)
    shapes = [(2, lq, heads, dim), (2, lk, kv_heads, dim), (2, lk, kv_heads, dim_v)]
    return [torch.randn(s, generator=g).to(device, dtype).requires_grad_() for s in shapes]


def _check_against_sdpa(out, q, k, v, dtype, device, segments=None, is_causal=False):
    """out and the gradients of q, k, v against SDPA of each segment in float64."""
    tol = tolerance(dtype, device)
    q64, k64, v64 = (t.detach().cpu().double().requires_grad_() for t in (q, k, v))
    segments = segments or [((0, q.shape[1]), (0, k.shape[1]))]
    parts = [sdpa(q64[:, a:b], k64[:, c:d], v64[:, c:d], is_causal, None)
             for (a, b), (c, d) in segments]
    expected = torch.cat(parts, 1)
    torch.testing.assert_close(out.detach().cpu().double(), expected.detach(), atol=tol, rtol=tol)
    grad = torch.randn(expected.shape, dtype=torch.float64)
    (out.double() * grad.to(device)).sum().backward()
    (expected * grad).sum().backward()
    for t, t64 in ((q, q64), (k, k64), (v, v64)):
        torch.testing.assert_close(t.grad.cpu().double(), t64.grad, atol=2 * tol, rtol=2 * tol)


@pytest.mark.parametrize("lq,lk", [(6, 19), (19, 6), (13, 4), (1, 9), (9, 1)])
def test_cross_attention_matches_sdpa(device, lq, lk):
    for dtype in float_dtypes(device):
        q, k, v = _cross_problem(lq * 7 + lk, device, dtype, lq, lk)
        _check_against_sdpa(gna.attention(q, k, v), q, k, v, dtype, device)


@pytest.mark.parametrize("seed", range(4))
def test_variable_length_matches_sdpa_per_sequence(device, seed):
    rng = random.Random(seed)
    is_causal = seed % 2 == 1
    lengths_q = [rng.randint(0 if i else 1, 9) for i in range(rng.randint(1, 5))]
    lengths_kv = list(lengths_q) if is_causal else [rng.randint(1, 9) for _ in lengths_q]
    for dtype in float_dtypes(device):
        q, k, v = (t.detach()[:1].requires_grad_() for t in
                   _cross_problem(seed, device, dtype, sum(lengths_q), sum(lengths_kv)))
        cu_q = torch.tensor(np.cumsum([0] + lengths_q), dtype=torch.int32, device=device)
        cu_kv = torch.tensor(np.cumsum([0] + lengths_kv), dtype=torch.int32, device=device)
        out = gna.attention(q, k, v, is_causal=is_causal, cumulative_seqlen_Q=cu_q,
                            cumulative_seqlen_KV=cu_kv, max_seqlen_Q=max(lengths_q),
                            max_seqlen_KV=max(lengths_kv))
        segments = list(zip(zip(cu_q.tolist(), cu_q.tolist()[1:]),
                            zip(cu_kv.tolist(), cu_kv.tolist()[1:])))
        _check_against_sdpa(out, q, k, v, dtype, device, segments, is_causal)


@pytest.mark.parametrize("seed", range(3))
def test_attention_in_pieces_matches_one_call(seed):
    # The path CUDA takes when a sequence has more queries than keys, run
    # here on the CPU against the core's own variable-length walk.
    from gna import _torch_dense_ops as dense
    rng = random.Random(seed)
    lengths_q = [rng.randint(0, 9) for _ in range(rng.randint(1, 4))] + [7]
    lengths_kv = [rng.randint(1, 4) for _ in lengths_q]
    q, k, v = (t.detach()[:1].requires_grad_() for t in
               _cross_problem(seed, "cpu", torch.float64, sum(lengths_q), sum(lengths_kv)))
    cu_q, cu_kv = (torch.tensor(np.cumsum([0] + n), dtype=torch.int32)
                   for n in (lengths_q, lengths_kv))
    call = (False, None, "auto", False, None, None, None, None)
    run = dense._forward_for(q, k, v)
    whole = run(q, k, v, cu_q, cu_kv, *call)
    pieces = dense.attention_in_pieces(run, q, k, v, (cu_q.tolist(), cu_kv.tolist()), call)
    grads = []
    for out, lse in (whole, pieces):
        grads.append(torch.autograd.grad((out.sum() + lse.sum()), (q, k, v)))
        torch.testing.assert_close(out, whole[0], atol=1e-12, rtol=0)
        torch.testing.assert_close(lse, whole[1], atol=1e-12, rtol=0)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


def test_variable_length_on_numpy_and_under_compile():
    q, k, v = (torch.randn(1, n, 2, 8, dtype=torch.float64) for n in (7, 9, 9))
    seqlens = dict(seqlens_Q=torch.tensor([3, 4]), seqlens_KV=torch.tensor([5, 4]))
    expected = gna.attention(q, k, v, **seqlens)
    numpy_out = gna.attention(q.numpy(), k.numpy(), v.numpy(),
                              seqlens_Q=np.array([3, 4]), seqlens_KV=np.array([5, 4]))
    np.testing.assert_allclose(numpy_out, expected.numpy(), atol=1e-12)
    torch._dynamo.reset()
    cu = [torch.tensor(c, dtype=torch.int32) for c in ([0, 3, 7], [0, 5, 9])]
    compiled = torch.compile(lambda q, k, v: gna.attention(
        q, k, v, cumulative_seqlen_Q=cu[0], cumulative_seqlen_KV=cu[1], max_seqlen_Q=4,
        max_seqlen_KV=5), fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(q, k, v), expected)


@pytest.mark.parametrize("call,error,pattern", [
    (lambda q, k: gna.attention(q, k, k, is_causal=True), ValueError, "is_causal"),
    (lambda q, k: gna.attention(q, k[:, :0], k[:, :0]), ValueError, "no keys|0 key tokens"),
    (lambda q, k: gna.attention(q[:1], q[:1], q[:1],
                                cumulative_seqlen_Q=torch.tensor([0, 5], dtype=torch.int32),
                                cumulative_seqlen_KV=torch.tensor([0, 6], dtype=torch.int32),
                                max_seqlen_Q=5, max_seqlen_KV=6), ValueError,
     r"cumulative_seqlen_Q\[1\] = 5.*6 packed tokens"),
    (lambda q, k: gna.attention(q, k, k, q_tile_size=64), ValueError, "kv_tile_size"),
    (lambda q, k: gna.na1d(q, q, q, 3, q_tile_shape=(8,)), ValueError, "kv_tile_shape"),
    (lambda q, k: gna.na1d(q, q, q, 3, q_tile_shape=(8, 8), kv_tile_shape=(8, 8)), ValueError,
     "q_tile_shape"),
    (lambda q, k: gna.na1d(q, q, q, 3, attention_kwargs={"is_causal": True}), TypeError,
     "attention_kwargs"),
])
def test_dense_rules(call, error, pattern):
    q, k = torch.randn(2, 6, 2, 8), torch.randn(2, 4, 2, 8)
    with pytest.raises(error, match=pattern):
        call(q, k)


def test_tile_shapes_reach_the_core_and_other_backends_ignore_them(monkeypatch):
    from gna import _C
    seen = []
    for name in ("forward", "backward", "attention_forward", "attention_backward"):
        real = getattr(_C, name)
        monkeypatch.setattr(_C, name, lambda *a, _real=real, _name=name: (
            seen.append((_name, a[-2:])), _real(*a))[1])
    q = torch.randn(1, 12, 2, 8, requires_grad=True)
    out = gna.na1d(q, q, q, 5, q_tile_shape=(4,), kv_tile_shape=(8,),
                   backward_q_tile_shape=(2,), backward_kv_tile_shape=(16,))
    out.sum().backward()
    torch.testing.assert_close(out, gna.na1d(q, q, q, 5))
    dense = gna.attention(q, q, q, q_tile_size=4, kv_tile_size=8, backward_q_tile_size=2,
                          backward_kv_tile_size=16)
    dense.sum().backward()
    assert seen[:2] == [("forward", ([4], [8])), ("backward", ([2], [16]))]
    assert seen[-2:] == [("attention_forward", ([4], [8])), ("attention_backward", ([2], [16]))]
