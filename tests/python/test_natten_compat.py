"""gna against NATTEN 0.21.7 itself (pinned in python/requirements-dev.txt,
installed by scripts/deps.sh without its compiled library): the public
names, signatures, exception classes, module state_dicts and, on random
problems over every parameter, outputs, LSE and gradients.

NATTEN's CPU path is FlexAttention without compilation: forward only,
float32/16, head_dim == head_dim_v a power of two >= 8, no causal dense
attention, no variable length. Its gradients come from NATTEN's own
neighborhood mask (the flex mask_mod) in a differentiable float64 masked
softmax; cases NATTEN cannot run on the CPU are compared with gna's
reference backend instead. docs/natten.md lists the differences tested here.
"""
import inspect
import math
import pathlib
import random

import pytest
import torch

import gna

natten = pytest.importorskip("natten", reason="NATTEN is not installed (scripts/deps.sh "
                             "python installs the pinned version)")
from natten.backends.flex import get_na_flex_mask  # noqa: E402
from torch.nn.attention.flex_attention import create_mask  # noqa: E402

# NATTEN's CPU path is FlexAttention without torch.compile, which warns so.
pytestmark = [pytest.mark.filterwarnings("ignore:.*flex_attention:UserWarning"),
              pytest.mark.filterwarnings("ignore:return_lse is deprecated:FutureWarning")]
TOL = dict(atol=2e-5, rtol=2e-5)

# gna's extras in the signatures (docs/natten.md, "Signatures").
GNA_EXTRA_PARAMETERS = {"deterministic"}


def _parameters(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()
            if p.name not in GNA_EXTRA_PARAMETERS]


def test_every_public_name_of_natten_exists():
    missing = [name for name in natten.__all__ if not hasattr(gna, name)]
    assert not missing


@pytest.mark.parametrize("name", [n for n in natten.__all__ if callable(getattr(natten, n))])
def test_signatures_match(name):
    # Functions, modules (their __init__), context switches, config queries.
    assert _parameters(getattr(gna, name)) == _parameters(getattr(natten, name))


def test_extras_come_last():
    # gna's own keyword after all of NATTEN's: positional calls stay NATTEN's.
    for fn in (gna.na1d, gna.na2d, gna.na3d, gna.attention):
        assert list(inspect.signature(fn).parameters)[-1] == "deterministic"


# ---- random problems --------------------------------------------------------

def _random_window(rng, shape, causal_allowed=True):
    kernel, stride, dilation, causal = [], [], [], []
    for n in shape:
        d = rng.randint(1, max(1, n // 2))
        k = rng.randint(2, n // d)
        kernel.append(k)
        dilation.append(d)
        stride.append(rng.randint(1, k))
        causal.append(causal_allowed and rng.random() < 0.4)
    return tuple(kernel), tuple(stride), tuple(dilation), tuple(causal)


def _random_problem(seed, rank):
    rng = random.Random(seed)
    shape = tuple(rng.randint(3, 9) for _ in range(rank))
    window = _random_window(rng, shape)
    kv_heads = rng.choice([1, 2])
    heads = kv_heads * rng.choice([1, 2])
    dim = rng.choice([8, 16])
    extra = rng.choice([0, 0, 3])
    gen = torch.Generator().manual_seed(seed)
    batch = rng.randint(1, 2)

    def make(*s):
        return torch.randn(s, generator=gen, dtype=torch.float64)

    q = make(batch, *shape, heads, dim)
    k, v = make(batch, *shape, kv_heads, dim), make(batch, *shape, kv_heads, dim)
    xk = make(batch, extra, kv_heads, dim) if extra else None
    xv = make(batch, extra, kv_heads, dim) if extra else None
    return q, k, v, xk, xv, window


def _natten_mask(shape, kernel, stride, dilation, causal, extra):
    """NATTEN's own neighborhood (its FlexAttention mask_mod) as a dense
    [tokens, tokens + extra] boolean mask; additional KV is seen by all."""
    block = get_na_flex_mask("cpu", len(shape), tuple(shape), kernel, stride, dilation, causal)
    tokens = math.prod(shape)
    mask = create_mask(block.mask_mod, 1, 1, tokens, tokens, device="cpu")[0, 0]
    return torch.cat([mask, torch.ones(tokens, extra, dtype=torch.bool)], dim=1)


def _masked_attention(q, k, v, xk, xv, mask, scale):
    """Plain differentiable softmax attention over NATTEN's mask, float64."""
    batch, *shape, heads, dim = q.shape
    flat = lambda t: t.reshape(batch, -1, *t.shape[-2:])  # noqa: E731
    keys, values = flat(k), flat(v)
    if xk is not None:
        keys, values = torch.cat([keys, xk], 1), torch.cat([values, xv], 1)
    group = heads // keys.shape[-2]
    keys, values = keys.repeat_interleave(group, -2), values.repeat_interleave(group, -2)
    scores = torch.einsum("bihd,bjhd->bhij", flat(q), keys) * scale
    scores = scores.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(scores, -1)
    out = torch.einsum("bhij,bjhd->bihd", torch.softmax(scores, -1), values)
    return out.reshape(*q.shape[:-1], v.shape[-1]), lse.transpose(1, 2).reshape(q.shape[:-1])


def _na(rank):
    return {1: "na1d", 2: "na2d", 3: "na3d"}[rank]


@pytest.mark.parametrize("seed", range(36))
def test_forward_and_lse_match_natten(seed):
    rank = seed % 3 + 1
    q, k, v, xk, xv, (kernel, stride, dilation, causal) = _random_problem(seed, rank)
    f32 = [None if t is None else t.float() for t in (q, k, v, xk, xv)]
    kwargs = dict(kernel_size=kernel, stride=stride, dilation=dilation, is_causal=causal,
                  return_lse=True)
    try:
        expected = getattr(natten, _na(rank))(*f32[:3], additional_keys=f32[3],
                                                additional_values=f32[4], **kwargs)
    except NotImplementedError:  # e.g. NATTEN's dense fast path, causal, on the CPU
        expected = gna.neighborhood_attention(q, k, v, **kwargs, additional_keys=xk,
                                              additional_values=xv, backend="reference")
    actual = getattr(gna, _na(rank))(*f32[:3], additional_keys=f32[3], additional_values=f32[4],
                                     **kwargs)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e.to(a.dtype), **TOL)


@pytest.mark.parametrize("seed", range(100, 112))
def test_gradients_match_natten_mask(seed):
    rank = seed % 3 + 1
    q, k, v, xk, xv, (kernel, stride, dilation, causal) = _random_problem(seed, rank)
    leaves = [t.requires_grad_() for t in (q, k, v, xk, xv) if t is not None]
    extra = 0 if xk is None else xk.shape[1]
    mask = _natten_mask(q.shape[1:-2], kernel, stride, dilation, causal, extra)
    scale = q.shape[-1] ** -0.5
    expected = _masked_attention(q, k, v, xk, xv, mask, scale)
    gen = torch.Generator().manual_seed(seed)
    weights = [torch.randn(t.shape, generator=gen, dtype=t.dtype) for t in expected]
    grads_expected = torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, expected)),
                                         leaves)
    for backend, dtype, tol in (("reference", torch.float64, 1e-6), ("cpu", torch.float32, 1e-4)):
        if backend not in gna.backend_names():
            continue
        inputs = [t.detach().to(dtype).requires_grad_() for t in leaves]
        it = iter(inputs)
        q2, k2, v2 = next(it), next(it), next(it)
        xk2, xv2 = (next(it), next(it)) if xk is not None else (None, None)
        actual = getattr(gna, _na(rank))(q2, k2, v2, kernel, stride, dilation, causal,
                                         additional_keys=xk2, additional_values=xv2,
                                         return_lse=True, backend=backend)
        grads = torch.autograd.grad(
            sum((w.to(dtype) * t).sum() for w, t in zip(weights, actual)), inputs)
        for a, e in zip((*actual, *grads), (*expected, *grads_expected)):
            torch.testing.assert_close(a.double(), e.detach(), atol=tol, rtol=tol)


# ---- attention: cross-attention and variable length -------------------------

def _dense_inputs(seed, lq, lk, heads=2, kv_heads=1, dim=16, batch=2):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, lq, heads, dim, generator=gen),
            torch.randn(batch, lk, kv_heads, dim, generator=gen),
            torch.randn(batch, lk, kv_heads, dim, generator=gen))


@pytest.mark.parametrize("lq,lk", [(9, 9), (5, 17), (17, 5), (1, 7), (12, 3)])
def test_cross_attention_matches_natten(lq, lk):
    q, k, v = _dense_inputs(lq * 31 + lk, lq, lk)
    expected = natten.attention(q, k, v, return_lse=True)
    actual = gna.attention(q, k, v, return_lse=True)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, **TOL)


def test_variable_length_matches_natten_per_sequence():
    seqlens_q, seqlens_kv = [4, 11, 1, 6], [9, 3, 5, 6]
    q, k, v = _dense_inputs(7, sum(seqlens_q), sum(seqlens_kv), batch=1)
    expected, lses = [], []
    starts_q, starts_kv = [0], [0]
    for nq, nk in zip(seqlens_q, seqlens_kv):
        out, lse = natten.attention(q[:, starts_q[-1]:starts_q[-1] + nq],
                                    k[:, starts_kv[-1]:starts_kv[-1] + nk],
                                    v[:, starts_kv[-1]:starts_kv[-1] + nk], return_lse=True)
        expected.append(out)
        lses.append(lse)
        starts_q.append(starts_q[-1] + nq)
        starts_kv.append(starts_kv[-1] + nk)
    cumulative = [torch.tensor(s, dtype=torch.int32) for s in (starts_q, starts_kv)]
    by_lengths = gna.attention(q, k, v, seqlens_Q=torch.tensor(seqlens_q),
                               seqlens_KV=torch.tensor(seqlens_kv), return_lse=True)
    by_offsets = gna.attention(q, k, v, cumulative_seqlen_Q=cumulative[0],
                               cumulative_seqlen_KV=cumulative[1], max_seqlen_Q=max(seqlens_q),
                               max_seqlen_KV=max(seqlens_kv), return_lse=True)
    for actual in (by_lengths, by_offsets):
        torch.testing.assert_close(actual[0], torch.cat(expected, 1), **TOL)
        torch.testing.assert_close(actual[1], torch.cat(lses, 1), **TOL)


def test_variable_length_gradients_match_per_sequence_reference():
    # NATTEN has no CPU backward: gna's reference per sequence is the oracle.
    seqlens_q, seqlens_kv = [3, 0, 8, 5], [6, 2, 3, 5]
    q, k, v = (t.double().requires_grad_() for t in
               _dense_inputs(8, sum(seqlens_q), sum(seqlens_kv), batch=1))
    out, lse = gna.attention(q, k, v, seqlens_Q=torch.tensor(seqlens_q),
                             seqlens_KV=torch.tensor(seqlens_kv), return_lse=True,
                             is_causal=False)
    grads = torch.autograd.grad(out.sum() + lse.sum(), (q, k, v))
    parts, pos_q, pos_kv = [], 0, 0
    for nq, nk in zip(seqlens_q, seqlens_kv):
        parts.append(gna.attention(q[:, pos_q:pos_q + nq], k[:, pos_kv:pos_kv + nk],
                                   v[:, pos_kv:pos_kv + nk], return_lse=True,
                                   backend="reference"))
        pos_q, pos_kv = pos_q + nq, pos_kv + nk
    total = sum(o.sum() + s.sum() for o, s in parts)
    expected = torch.autograd.grad(total, (q, k, v))
    for a, e in zip(grads, expected):
        torch.testing.assert_close(a, e)


# ---- exceptions -------------------------------------------------------------

def _base(**changes):
    args = dict(query=torch.randn(1, 8, 4, 16), key=torch.randn(1, 8, 2, 16),
                value=torch.randn(1, 8, 2, 16), kernel_size=3)
    args.update(changes)
    return args


def _extra(tokens=2, heads=2, dim=16, batch=1, dtype=torch.float32):
    return dict(additional_keys=torch.randn(batch, tokens, heads, dim, dtype=dtype),
                additional_values=torch.randn(batch, tokens, heads, dim))


BAD_NA1D_INPUTS = {
    "query_rank": _base(query=torch.randn(1, 8, 8, 4, 16)),
    "rank_7": _base(**{n: torch.randn(1, 1, 1, 1, 8, 2, 16) for n in ("query", "key", "value")}),
    "dtype_mix": _base(key=torch.randn(1, 8, 2, 16).half()),
    "sparse": _base(query=torch.randn(1, 8, 4, 16).to_sparse()),
    "int_dtype": _base(**{n: torch.ones(1, 8, 2, 16, dtype=torch.int32)
                          for n in ("query", "key", "value")}),
    "batch": _base(key=torch.randn(2, 8, 2, 16)),
    "tokens": _base(value=torch.randn(1, 7, 2, 16)),
    "head_dim": _base(key=torch.randn(1, 8, 2, 8)),
    "kv_heads": _base(value=torch.randn(1, 8, 1, 16)),
    "heads_not_multiple": _base(key=torch.randn(1, 8, 3, 16), value=torch.randn(1, 8, 3, 16)),
    "kernel_0": _base(kernel_size=0),
    "kernel_too_large": _base(kernel_size=9),
    "kernel_times_dilation": _base(kernel_size=3, dilation=3),
    "stride_0": _base(stride=0),
    "stride_above_kernel": _base(stride=4),
    "dilation_0": _base(dilation=0),
    "kernel_float": _base(kernel_size=3.0),
    "kernel_bool": _base(kernel_size=True),
    "kernel_none": _base(kernel_size=None),
    "kernel_tuple_length": _base(kernel_size=(3, 3)),
    "kernel_str_entry": _base(kernel_size=("3",)),
    "stride_tuple_length": _base(stride=(1, 1)),
    "dilation_str": _base(dilation="2"),
    "causal_int": _base(is_causal=1),
    "causal_tuple_length": _base(is_causal=(True, False)),
    "backend_int": _base(backend=3),
    "backend_unknown": _base(backend="fast"),
    "backend_of_attention": _base(backend="cutlass-fmha"),
    "kernel_schedule": _base(kernel_schedule="bad"),
    "additional_keys_alone": _base(additional_keys=torch.randn(1, 2, 2, 16)),
    "additional_batch": _base(**_extra(batch=2)),
    "additional_heads": _base(**_extra(heads=1)),
    "additional_dim": _base(**_extra(dim=8)),
    "additional_tokens": _base(**{**_extra(), "additional_values": torch.randn(1, 3, 2, 16)}),
    "additional_dtype": _base(**_extra(dtype=torch.float64)),
}


@pytest.mark.parametrize("case", BAD_NA1D_INPUTS)
def test_na1d_rejects_with_natten_exception_class(case):
    with pytest.raises(Exception) as theirs:
        natten.na1d(**BAD_NA1D_INPUTS[case])
    with pytest.raises(Exception) as ours:
        gna.na1d(**BAD_NA1D_INPUTS[case])
    assert type(ours.value) is type(theirs.value), (ours.value, theirs.value)


BAD_ATTENTION_INPUTS = {
    "rank": dict(query=torch.randn(1, 8, 4, 4, 16)),
    "key_value_tokens": dict(value=torch.randn(1, 6, 2, 16)),
    "varlen_partial": dict(cumulative_seqlen_Q=torch.tensor([0, 8], dtype=torch.int32)),
    "varlen_int64": dict(cumulative_seqlen_Q=torch.tensor([0, 8]),
                         cumulative_seqlen_KV=torch.tensor([0, 8]), max_seqlen_Q=8,
                         max_seqlen_KV=8),
    "varlen_batch_2": dict(query=torch.randn(2, 8, 4, 16), key=torch.randn(2, 8, 2, 16),
                           value=torch.randn(2, 8, 2, 16),
                           cumulative_seqlen_Q=torch.tensor([0, 8], dtype=torch.int32),
                           cumulative_seqlen_KV=torch.tensor([0, 8], dtype=torch.int32),
                           max_seqlen_Q=8, max_seqlen_KV=8),
    "varlen_max_above_total": dict(cumulative_seqlen_Q=torch.tensor([0, 8], dtype=torch.int32),
                                   cumulative_seqlen_KV=torch.tensor([0, 8], dtype=torch.int32),
                                   max_seqlen_Q=9, max_seqlen_KV=8),
    "seqlens_only_q": dict(seqlens_Q=torch.tensor([8], dtype=torch.int32)),
    "backend_of_na": dict(backend="cutlass-fna"),
}


@pytest.mark.parametrize("case", BAD_ATTENTION_INPUTS)
def test_attention_rejects_with_natten_exception_class(case):
    args = dict(query=torch.randn(1, 8, 4, 16), key=torch.randn(1, 8, 2, 16),
                value=torch.randn(1, 8, 2, 16))
    args.update(BAD_ATTENTION_INPUTS[case])
    with pytest.raises(Exception) as theirs:
        natten.attention(**args)
    with pytest.raises(Exception) as ours:
        gna.attention(**args)
    assert type(ours.value) is type(theirs.value), (ours.value, theirs.value)


@pytest.mark.parametrize("make", [
    lambda m: m.NeighborhoodAttention2D(8, 2, 3.0),
    lambda m: m.NeighborhoodAttention2D(8, 2, 3, is_causal=1),
    lambda m: m.NeighborhoodAttention2D(8, 3, 3),
    lambda m: m.NeighborhoodAttention2D(8, 2, (3, 3, 3)),
    lambda m: m.NeighborhoodAttention2D(8, 2, 3)(torch.randn(1, 5, 8)),
    lambda m: m.NeighborhoodAttention2D(8, 2, 3)(torch.randn(1, 5, 5, 6)),
    lambda m: m.merge_attentions([torch.randn(1, 4, 2, 8)] * 2, [torch.randn(1, 4, 2)]),
    lambda m: m.set_memory_usage_preference("fast"),
])
def test_other_rejections_match(make):
    with pytest.raises(Exception) as theirs:
        make(natten)
    with pytest.raises(Exception) as ours:
        make(gna)
    assert type(ours.value) is type(theirs.value), (ours.value, theirs.value)


def test_accepts_what_natten_accepts():
    q = torch.randn(1, 8, 2, 16)
    for kwargs in (dict(stride=None, dilation=None, is_causal=None), dict(return_lse=1),
                   dict(backend="flex-fna"), dict(scale=0.0), dict(kernel_schedule="coop"),
                   dict(attention_kwargs={"backend": "flex-fmha"}), dict(torch_compile=False),
                   dict(backward_kv_splits=(2,), backward_use_pt_reduction=True,
                        run_persistent_kernel=False)):
        theirs = natten.na1d(q, q, q, 3, **kwargs)
        ours = gna.na1d(q, q, q, 3, **kwargs)
        for a, e in zip(ours if isinstance(ours, tuple) else (ours,),
                        theirs if isinstance(theirs, tuple) else (theirs,)):
            torch.testing.assert_close(a, e, **TOL)


def test_scale_zero_means_default_in_functions_and_modules():
    q = torch.randn(1, 8, 2, 16)
    torch.testing.assert_close(gna.na1d(q, q, q, 3, scale=0.0), natten.na1d(q, q, q, 3, scale=0.0),
                               **TOL)
    torch.testing.assert_close(gna.na1d(q, q, q, 3, scale=0.0), gna.na1d(q, q, q, 3))
    assert gna.NeighborhoodAttention1D(32, 2, 3, qk_scale=0.0).scale == 16 ** -0.5


# ---- modules ---------------------------------------------------------------

MODULE_CASES = [
    ("NeighborhoodAttention1D", dict(kernel_size=5, dilation=2, is_causal=True), (2, 13)),
    ("NeighborhoodAttention2D", dict(kernel_size=(3, 5), stride=(1, 2), dilation=(2, 1)),
     (1, 8, 9)),
    ("NeighborhoodAttention2D", dict(kernel_size=3, is_causal=(False, True)), (2, 5, 6)),
    ("NeighborhoodAttention3D", dict(kernel_size=(2, 3, 3), stride=(1, 1, 2),
                                     is_causal=(True, False, False)), (1, 3, 6, 7)),
]


@pytest.mark.parametrize("name,kwargs,shape", MODULE_CASES)
def test_modules_load_natten_state_dict_and_agree(name, kwargs, shape):
    torch.manual_seed(0)
    theirs = getattr(natten, name)(32, 2, **kwargs, qkv_bias=True).eval()
    ours = getattr(gna, name)(32, 2, **kwargs, qkv_bias=True).eval()
    ours.load_state_dict(theirs.state_dict())
    for attribute in ("na_dim", "expected_input_tensor_rank", "embed_dim", "num_heads",
                      "head_dim", "scale", "kernel_size", "stride", "dilation", "is_causal"):
        assert getattr(ours, attribute) == getattr(theirs, attribute), attribute
    x = torch.randn(*shape, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), **TOL)


def test_context_switches_behave_like_natten():
    for m in (natten, gna):
        m.use_deterministic_algorithms(True)
        assert m.are_deterministic_algorithms_enabled()
        with pytest.raises(RuntimeError):
            m.use_kv_parallelism_in_fused_na(True)
        m.use_deterministic_algorithms(False)
        m.use_kv_parallelism_in_fused_na(False)
        assert not m.is_kv_parallelism_in_fused_na_enabled()
        m.use_kv_parallelism_in_fused_na(True)
        m.set_memory_usage_preference("strict")
        assert m.is_memory_usage_strict() and not m.is_memory_usage_default()
        m.set_memory_usage_preference("default")
        assert m.is_memory_usage_default()
        assert m.get_configs_for_cutlass_fna(*(torch.randn(1, 8, 2, 16),) * 3) == []


def test_deterministic_switch_reaches_the_backward(monkeypatch):
    seen = []
    from gna import _C
    real = _C.backward
    monkeypatch.setattr(_C, "backward",
                        lambda *a: seen.append(a[17]) or real(*a))  # deterministic
    q = torch.randn(1, 8, 2, 16, requires_grad=True)
    gna.use_deterministic_algorithms(True)
    try:
        gna.na1d(q, q, q, 3).sum().backward()
    finally:
        gna.use_deterministic_algorithms(False)
    gna.na1d(q, q, q, 3).sum().backward()
    assert seen == [True, False]


# ---- a NATTEN script, unchanged but for its import ----------------------------

def test_nat_model_script_runs_with_import_gna_as_natten():
    source = (pathlib.Path(__file__).parent / "nat_model_script.py").read_text()
    assert source.count("\nimport natten\n") == 1 and "gna" not in source.replace(
        "import gna as natten", "").split('"""', 2)[2]
    results = []
    for text in (source, source.replace("\nimport natten\n", "\nimport gna as natten\n")):
        namespace = {"__name__": "nat_model_script"}
        exec(compile(text, "nat_model_script.py", "exec"), namespace)
        results.append(namespace["run"]())
    (natten_logits, natten_lse), (gna_logits, gna_lse) = results
    torch.testing.assert_close(gna_logits, natten_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gna_lse, natten_lse, atol=1e-4, rtol=1e-4)
