"""gna.attention on packed variable-length CUDA batches whose offsets live on
the GPU (cuda-generic's packed kernels): outputs, LSE and gradients against
softmax attention written out per sequence in float64, no host sync on the
way (torch's sync debug mode, CUDA graph capture), bad offsets reported
through gna.check_varlen_errors and NaN outputs."""
import math
import random

import pytest

torch = pytest.importorskip("torch")
import gna  # noqa: E402

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or "cuda-generic" not in gna.backend_names(),
    reason="needs a CUDA device and a gna build with its CUDA backends")

TOLERANCE = {torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 5e-2}


def expected(q, k, v, lq, lk, causal, scale, dout, dlse):
    """(out, lse, dq, dk, dv) of each sequence's softmax attention, float64 on the CPU."""
    q, k, v = (t.detach().double().cpu().requires_grad_() for t in (q, k, v))
    group = q.shape[2] // k.shape[2]
    outs, lses = [], []
    q0 = k0 = 0
    for nq, nk in zip(lq, lk):
        qs, ks, vs = q[0, q0:q0 + nq], k[0, k0:k0 + nk], v[0, k0:k0 + nk]
        ks, vs = ks.repeat_interleave(group, dim=1), vs.repeat_interleave(group, dim=1)
        s = torch.einsum("qhd,khd->hqk", qs, ks) * scale
        if causal:
            mask = torch.ones(nq, nk, dtype=torch.bool).tril()
            s = s.masked_fill(~mask, -math.inf)
        outs.append(torch.einsum("hqk,khd->qhd", s.softmax(-1), vs))
        lses.append(s.logsumexp(-1).transpose(0, 1))
        q0, k0 = q0 + nq, k0 + nk
    out, lse = torch.cat(outs)[None], torch.cat(lses)[None]
    ((out * dout.double().cpu()).sum() + (lse * dlse.double().cpu()).sum()).backward()
    return out, lse, q.grad, k.grad, v.grad


def assert_close(got, want, dtype, what, lse=False):
    got = got.detach().double().cpu()
    scale = 1.0 if lse else max(1.0, want.abs().max().item() if want.numel() else 0.0)
    tolerance = (1e-3 if lse else TOLERANCE[dtype]) * scale
    error = (got - want).abs().max().item() if want.numel() else 0.0
    assert got.isfinite().all() and error <= tolerance, f"{what}: error {error} > {tolerance}"


def packed(lq, lk, heads, kv_heads, dim, dim_v, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    cuda = dict(device="cuda", dtype=dtype)
    q = torch.randn(1, sum(lq), heads, dim, generator=g).to(**cuda).requires_grad_()
    k = torch.randn(1, sum(lk), kv_heads, dim, generator=g).to(**cuda).requires_grad_()
    v = torch.randn(1, sum(lk), kv_heads, dim_v, generator=g).to(**cuda).requires_grad_()
    offsets = [torch.tensor([0, *torch.tensor(n).cumsum(0).tolist()], dtype=torch.int32,
                            device="cuda") for n in (lq, lk)]
    return q, k, v, offsets


def random_lengths(rng, causal):
    lq, lk = [], []
    for _ in range(rng.choice([1, 2, 4, 7])):
        nq = rng.choice([0, 1, 2, 9, 33])
        nk = nq if causal else rng.choice([0, 1, 5, 20, 41])
        lq.append(nq)
        lk.append(max(nk, 1) if nq > 0 else nk)
    return lq, lk


CASES = [(seed, dtype, causal) for seed, (dtype, causal) in enumerate(
    [(d, c) for d in (torch.float16, torch.bfloat16, torch.float32) for c in (False, True)] * 3)]


@pytest.mark.parametrize("seed,dtype,causal", CASES)
def test_packed_on_device_matches_softmax_attention(seed, dtype, causal):
    rng = random.Random(seed)
    lq, lk = random_lengths(rng, causal)
    kv_heads = rng.choice([1, 2])
    heads = kv_heads * rng.choice([1, 3])
    dim = rng.choice([16, 64, 80])
    dim_v = rng.choice([dim, 32, 136])
    q, k, v, (cq, ck) = packed(lq, lk, heads, kv_heads, dim, dim_v, dtype, seed)
    scale = dim ** -0.5
    out, lse = gna.attention(q, k, v, is_causal=causal, cumulative_seqlen_Q=cq,
                             cumulative_seqlen_KV=ck, max_seqlen_Q=max(lq), max_seqlen_KV=max(lk),
                             return_lse=True)
    dout, dlse = torch.randn_like(out), torch.randn_like(lse)
    (out * dout).sum().add((lse * dlse).sum()).backward()
    want = expected(q, k, v, lq, lk, causal, scale, dout, dlse)
    for got, ref, name in zip((out, lse, q.grad, k.grad, v.grad), want,
                              ("output", "lse", "grad_query", "grad_key", "grad_value")):
        assert_close(got, ref, dtype, f"{name} lq {lq} lk {lk}", lse=name == "lse")
    gna.check_varlen_errors()  # nothing recorded


def test_seqlens_form_runs_on_device():
    lq, lk = [3, 0, 7], [5, 2, 2]
    q, k, v, _ = packed(lq, lk, 2, 1, 32, 32, torch.float32, 1)
    out = gna.attention(q, k, v, seqlens_Q=torch.tensor(lq, device="cuda"),
                        seqlens_KV=torch.tensor(lk, device="cuda"))
    want = expected(q, k, v, lq, lk, False, 32 ** -0.5, torch.zeros_like(out),
                    torch.zeros(out.shape[:-1], device="cuda"))
    assert_close(out, want[0], torch.float32, "output")


def test_no_host_sync_forward_and_backward():
    lq, lk = [4, 0, 9, 1], [6, 3, 2, 1]
    q, k, v, (cq, ck) = packed(lq, lk, 4, 2, 64, 48, torch.float16, 2)
    gna.attention(q, k, v, cumulative_seqlen_Q=cq, cumulative_seqlen_KV=ck, max_seqlen_Q=9,
                  max_seqlen_KV=6)  # first call: creates the status record
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out, lse = gna.attention(q, k, v, cumulative_seqlen_Q=cq, cumulative_seqlen_KV=ck,
                                 max_seqlen_Q=9, max_seqlen_KV=6, return_lse=True)
        (out.float().sum() + lse.sum()).backward()
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    assert q.grad is not None and k.grad is not None and v.grad is not None


def test_captures_into_a_cuda_graph():
    lq, lk = [5, 2], [3, 8]
    q, k, v, (cq, ck) = packed(lq, lk, 2, 2, 32, 32, torch.float32, 3)
    q, k, v = q.detach(), k.detach(), v.detach()

    def call():
        return gna.attention(q, k, v, cumulative_seqlen_Q=cq, cumulative_seqlen_KV=ck,
                             max_seqlen_Q=5, max_seqlen_KV=8)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        call()  # warm-up outside the capture, as torch asks
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = call()
    graph.replay()
    torch.cuda.synchronize()
    want = expected(q, k, v, lq, lk, False, 32 ** -0.5, torch.zeros_like(out),
                    torch.zeros(out.shape[:-1], device="cuda"))
    assert_close(out, want[0], torch.float32, "output")


@pytest.mark.parametrize("offsets_q,offsets_kv,causal,pattern", [
    ([1, 3, 8], [0, 4, 8], False, r"cumulative_seqlen_Q\[0\] = 1: must be 0"),
    ([0, 9, 8], [0, 4, 8], False, r"cumulative_seqlen_Q\[2\] = 8: must be >="),
    ([0, 3, 8], [0, 4, 100], False, r"cumulative_seqlen_KV\[2\] = 100: must equal the 8"),
    ([0, 3, 8], [0, 8, 8], False, r"sequence 1: 0 key tokens for 5 queries"),
    ([0, 3, 8], [0, 4, 8], True, r"is_causal = True with sequence 0: 3 queries and 4 keys"),
])
def test_bad_offsets_give_nan_and_are_reported(offsets_q, offsets_kv, causal, pattern):
    gna.check_varlen_errors()
    q = torch.randn(1, 8, 2, 16, device="cuda", requires_grad=True)
    k = torch.randn(1, 8, 2, 16, device="cuda", requires_grad=True)
    cq = torch.tensor(offsets_q, dtype=torch.int32, device="cuda")
    ck = torch.tensor(offsets_kv, dtype=torch.int32, device="cuda")
    out = gna.attention(q, k, k, is_causal=causal, cumulative_seqlen_Q=cq,
                        cumulative_seqlen_KV=ck, max_seqlen_Q=8, max_seqlen_KV=8)
    out.sum().backward()
    assert out.isnan().all() and q.grad.isnan().all() and k.grad.isnan().all()
    with pytest.raises(ValueError, match=pattern):
        gna.check_varlen_errors()
    gna.check_varlen_errors()  # reading clears the record


def test_small_max_seqlen_is_reported_and_the_result_stays_right():
    gna.check_varlen_errors()
    lq, lk = [2, 6], [5, 3]
    q, k, v, (cq, ck) = packed(lq, lk, 2, 1, 16, 16, torch.float32, 4)
    out = gna.attention(q, k, v, cumulative_seqlen_Q=cq, cumulative_seqlen_KV=ck,
                        max_seqlen_Q=4, max_seqlen_KV=5)
    want = expected(q, k, v, lq, lk, False, 16 ** -0.5, torch.zeros_like(out),
                    torch.zeros(out.shape[:-1], device="cuda"))
    assert_close(out, want[0], torch.float32, "output")
    with pytest.raises(ValueError, match=r"max_seqlen_Q = 4: sequence 1: 6 query tokens"):
        gna.check_varlen_errors()

