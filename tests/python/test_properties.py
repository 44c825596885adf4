"""Property-based tests of the Python API (Hypothesis).

Random valid problems in random memory layouts must match the float64 dense
oracle (mask_attention.py), forward and backward; random invalid calls must
raise ValueError, TypeError or NotImplementedError whose message names the
argument at fault. Examples are derandomized (the same ones every run, so
CI is deterministic) and few enough to keep the file under two minutes on
two cores. For a local hunt, GNA_PROPERTY_EXAMPLES=<n> asks for n examples
per test and GNA_PROPERTY_RANDOM=1 for fresh random ones each run.
"""
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gna
from mask_attention import attention as dense_attention

_EXAMPLES = int(os.environ.get("GNA_PROPERTY_EXAMPLES", "0"))
_RANDOM = os.environ.get("GNA_PROPERTY_RANDOM") == "1"


def bounded(examples):
    """Deterministic, no example database on disk, no per-example deadline."""
    return settings(max_examples=_EXAMPLES or examples, derandomize=not _RANDOM, database=None,
                    deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


TENSORS = ("query", "key", "value", "additional_keys", "additional_values")
MAX_EXTENT = {1: 12, 2: 6, 3: 4}
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4}


@st.composite
def problems(draw, allow_empty=True):
    """A valid problem: window per axis, GQA heads, Dv != D, additional KV,
    scale, and now and then a zero-size batch, axis or head count."""
    rank = draw(st.integers(1, 3))
    spatial, kernel, stride, dilation, causal = [], [], [], [], []
    for _ in range(rank):
        n = draw(st.integers(1, MAX_EXTENT[rank]))
        k = draw(st.integers(1, n))
        d = draw(st.integers(1, n // k))
        s = draw(st.sampled_from([1, k, draw(st.integers(1, k))]))
        spatial.append(n)
        kernel.append(k)
        stride.append(s)
        dilation.append(d)
        causal.append(draw(st.booleans()))
    kv_heads = draw(st.integers(1, 2))
    p = dict(spatial=spatial, kernel_size=tuple(kernel), stride=tuple(stride),
             dilation=tuple(dilation), is_causal=tuple(causal),
             batch=draw(st.integers(1, 2)), kv_heads=kv_heads,
             heads=kv_heads * draw(st.integers(1, 3)),
             dim=draw(st.sampled_from([1, 3, 4, 8])), dim_v=draw(st.sampled_from([1, 2, 5, 8])),
             extra=draw(st.sampled_from([0, 0, 1, 3])),
             scale=draw(st.one_of(st.none(), st.floats(0.05, 2.0), st.floats(-1.0, -0.05))))
    if allow_empty:
        empty = draw(st.sampled_from([None] * 6 + ["batch", "axis", "heads"]))
        if empty == "batch":
            p["batch"] = 0
        elif empty == "axis":
            p["spatial"][draw(st.integers(0, rank - 1))] = 0
        elif empty == "heads":
            p["heads"] = 0
    p["spatial"] = tuple(p["spatial"])
    return p


def shapes(p):
    b, sp, kvh = p["batch"], p["spatial"], p["kv_heads"]
    out = {"query": (b, *sp, p["heads"], p["dim"]), "key": (b, *sp, kvh, p["dim"]),
           "value": (b, *sp, kvh, p["dim_v"])}
    if p["extra"]:
        out["additional_keys"] = (b, p["extra"], kvh, p["dim"])
        out["additional_values"] = (b, p["extra"], kvh, p["dim_v"])
    return out


def window(p):
    return {k: p[k] for k in ("kernel_size", "stride", "dilation", "is_causal", "scale")}


# --- torch layouts: a view of `base` (a leaf) with the layout's strides ---

TORCH_LAYOUTS = ("contiguous", "transposed", "sliced", "expanded", "negative_bit")


def torch_view(base, layout):
    """(leaf, view): the view holds the leaf's values in the given layout."""
    if layout == "transposed":  # heads-first memory, viewed heads-last
        leaf = base.detach().movedim(-2, 1).contiguous().requires_grad_()
        return leaf, leaf.movedim(1, -2)
    if layout == "sliced":  # every other token of a longer grid, part of a wider dim
        wide = torch.zeros(base.shape[0], 2 * base.shape[1], *base.shape[2:-1],
                           base.shape[-1] + 2, dtype=base.dtype)
        wide[:, ::2, ..., 1:-1] = base.detach()
        leaf = wide.requires_grad_()
        return leaf, leaf[:, ::2, ..., 1:-1]
    if layout == "expanded":  # batch entry 0 broadcast over the batch: stride 0
        leaf = base.detach()[:1].clone().requires_grad_()
        return leaf, leaf.expand(base.shape)
    if layout == "negative_bit":  # a lazy negation DLPack cannot carry
        leaf = base.detach().clone().requires_grad_()
        view = torch.complex(torch.zeros_like(leaf), -leaf).conj().imag
        assert view.is_neg()
        return leaf, view
    leaf = base.detach().clone().requires_grad_()
    return leaf, leaf


@given(p=problems(), dtype=st.sampled_from([torch.float64, torch.float32]),
       layouts=st.fixed_dictionaries({n: st.sampled_from(TORCH_LAYOUTS) for n in TENSORS}),
       seed=st.integers(0, 2**16))
@bounded(150)
def test_torch_layouts_match_the_dense_oracle(p, dtype, layouts, seed):
    gen = torch.Generator().manual_seed(seed)
    leaves, views, bases = {}, {}, {}
    for name, shape in shapes(p).items():
        bases[name] = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
        if layouts[name] == "expanded":
            bases[name] = bases[name][:1].expand(shape).clone()  # every batch entry alike
        leaves[name], views[name] = torch_view(bases[name], layouts[name])
    out, lse = gna.neighborhood_attention(
        views["query"], views["key"], views["value"], **window(p), return_lse=True,
        additional_keys=views.get("additional_keys"),
        additional_values=views.get("additional_values"))
    want_in = {n: b.double().requires_grad_() for n, b in bases.items()}
    want, want_lse = dense_attention(
        want_in["query"], want_in["key"], want_in["value"], p["kernel_size"], p["stride"],
        p["dilation"], p["is_causal"], p["scale"], want_in.get("additional_keys"),
        want_in.get("additional_values"))
    tol = TOLERANCE[dtype]
    assert out.shape == want.shape and out.dtype == dtype
    torch.testing.assert_close(out.double(), want, atol=tol, rtol=tol)
    if out.numel() == 0:
        return
    torch.testing.assert_close(lse.double(), want_lse, atol=1e-4, rtol=1e-5)
    grad = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    # The LSE's gradient too, with weights exact in float32 (its dtype).
    grad_lse = torch.randn(lse.shape, generator=gen).double()
    ((out.double() * grad).sum() + (lse.double() * grad_lse).sum()).backward()
    ((want * grad).sum() + (want_lse * grad_lse).sum()).backward()
    for name, leaf in leaves.items():
        # Each leaf's gradient gathers its view's: compare per view element.
        expected = _gradient_of_leaf(want_in[name].grad, layouts[name], leaf)
        scale = max(1.0, expected.abs().max().item())
        torch.testing.assert_close(leaf.grad.double(), expected, atol=tol * scale * 10,
                                   rtol=tol * 10, msg=f"{name} ({layouts[name]})")


def _gradient_of_leaf(view_grad, layout, leaf):
    """The gradient `leaf` gets when its view has gradient `view_grad`."""
    if layout == "transposed":
        return view_grad.movedim(-2, 1)
    if layout == "sliced":
        g = torch.zeros(leaf.shape, dtype=torch.float64)
        g[:, ::2, ..., 1:-1] = view_grad
        return g
    if layout == "expanded":
        return view_grad.sum(0, keepdim=True)
    return view_grad


# --- numpy layouts: the same values in every memory order numpy offers ---

NUMPY_LAYOUTS = ("c_order", "fortran", "negative_strides", "big_endian", "broadcast",
                 "transposed")


def numpy_view(values, layout):
    """An array equal to `values` (native, C order) in the given layout."""
    if layout == "fortran":
        return np.asfortranarray(values)
    if layout == "negative_strides":  # read backwards along axis 1 and the last axis
        flipped = np.ascontiguousarray(values[:, ::-1, ..., ::-1])
        return flipped[:, ::-1, ..., ::-1]
    if layout == "big_endian":
        return values.astype(values.dtype.newbyteorder(">"))
    if layout == "broadcast":  # stride 0 along the batch
        return np.broadcast_to(values[:1], values.shape)
    if layout == "transposed":  # heads-first memory, viewed heads-last
        return np.moveaxis(np.ascontiguousarray(np.moveaxis(values, -2, 1)), 1, -2)
    return np.ascontiguousarray(values)


@given(p=problems(), dtype=st.sampled_from([np.float64, np.float32]),
       layouts=st.fixed_dictionaries({n: st.sampled_from(NUMPY_LAYOUTS) for n in TENSORS}),
       seed=st.integers(0, 2**16))
@bounded(150)
def test_numpy_layouts_match_the_dense_oracle(p, dtype, layouts, seed):
    rng = np.random.default_rng(seed)
    arrays, natives = {}, {}
    for name, shape in shapes(p).items():
        values = rng.standard_normal(shape).astype(dtype)
        if layouts[name] == "broadcast":
            values = np.ascontiguousarray(np.broadcast_to(values[:1], shape))
        natives[name] = values
        arrays[name] = numpy_view(values, layouts[name])
        assert np.array_equal(arrays[name], values)
    out = gna.neighborhood_attention(arrays["query"], arrays["key"], arrays["value"],
                                     **window(p), additional_keys=arrays.get("additional_keys"),
                                     additional_values=arrays.get("additional_values"))
    t = {n: torch.from_numpy(v.astype(np.float64)) for n, v in natives.items()}
    want, _ = dense_attention(t["query"], t["key"], t["value"], p["kernel_size"], p["stride"],
                              p["dilation"], p["is_causal"], p["scale"],
                              t.get("additional_keys"), t.get("additional_values"))
    assert isinstance(out, np.ndarray) and out.dtype == dtype and out.dtype.isnative
    assert out.shape == tuple(want.shape)
    tol = TOLERANCE[torch.float64 if dtype == np.float64 else torch.float32]
    np.testing.assert_allclose(out.astype(np.float64), want.numpy(), atol=tol, rtol=tol)


# --- invalid calls: one broken argument, named in the message ---

def _valid_call(framework):
    make = (lambda *s: torch.randn(*s)) if framework == "torch" else \
        (lambda *s: np.random.default_rng(0).standard_normal(s).astype(np.float32))
    return dict(query=make(1, 8, 4, 16), key=make(1, 8, 2, 16), value=make(1, 8, 2, 8),
                kernel_size=3)


def _like(call, name, dtype):
    t = call["query"]
    if isinstance(t, torch.Tensor):
        return torch.ones(call[name].shape, dtype=dtype)
    return np.ones(call[name].shape, dtype=dtype)


def _heads(t, heads):
    """t with `heads` heads (4 query heads are no multiple of 3)."""
    if isinstance(t, torch.Tensor):
        return t[:, :, :1].repeat(1, 1, heads, 1)
    return np.repeat(t[:, :, :1], heads, axis=2)


# (argument named in the message, how to break it); each entry breaks one rule.
BREAKS = [
    ("query", lambda c: c.update(query=None)),
    ("key", lambda c: c.update(key=None)),
    ("value", lambda c: c.update(value=None)),
    ("query", lambda c: c.update(query=[[1.0]])),
    ("key", lambda c: c.update(key="key")),
    ("value", lambda c: c.update(value=3.0)),
    ("query", lambda c: c.update(query=np.empty(c["query"].shape, dtype=object))),
    ("key", lambda c: c.update(key=np.full(c["key"].shape, "a"))),
    ("query", lambda c: c.update(query=_like(c, "query", torch.int32)
                                 if isinstance(c["query"], torch.Tensor)
                                 else _like(c, "query", np.int32))),
    ("key", lambda c: c.update(key=_like(c, "key", torch.complex64)
                               if isinstance(c["key"], torch.Tensor)
                               else _like(c, "key", np.complex64))),
    ("value", lambda c: c.update(value=_like(c, "value", torch.bool)
                                 if isinstance(c["value"], torch.Tensor)
                                 else _like(c, "value", np.bool_))),
    ("query", lambda c: c.update(query=c["query"][0])),
    ("key", lambda c: c.update(key=c["key"][0])),
    ("key", lambda c: c.update(key=_heads(c["key"], 3), value=_heads(c["value"], 3))),
    ("key", lambda c: c.update(key=c["key"][..., :5])),
    ("value", lambda c: c.update(value=c["value"][:, :7])),
    ("key", lambda c: c.update(key=c["key"].astype(np.float64)
                               if isinstance(c["key"], np.ndarray) else c["key"].double())),
    ("kernel_size", lambda c: c.update(kernel_size=0)),
    ("kernel_size", lambda c: c.update(kernel_size=-3)),
    ("kernel_size", lambda c: c.update(kernel_size=9)),
    ("kernel_size", lambda c: c.update(kernel_size=10**30)),
    ("kernel_size", lambda c: c.update(kernel_size=3.0)),
    ("kernel_size", lambda c: c.update(kernel_size=True)),
    ("kernel_size", lambda c: c.update(kernel_size="3")),
    ("kernel_size", lambda c: c.update(kernel_size=(3, 3))),
    ("kernel_size", lambda c: c.update(kernel_size=None)),
    ("stride", lambda c: c.update(stride=0)),
    ("stride", lambda c: c.update(stride=4)),
    ("stride", lambda c: c.update(stride=-(10**30))),
    ("stride", lambda c: c.update(stride=(1, 1))),
    ("dilation", lambda c: c.update(dilation=0)),
    ("dilation", lambda c: c.update(dilation=3)),
    ("dilation", lambda c: c.update(dilation=1.5)),
    ("is_causal", lambda c: c.update(is_causal=2)),
    ("is_causal", lambda c: c.update(is_causal="yes")),
    ("is_causal", lambda c: c.update(is_causal=(True, False))),
    ("scale", lambda c: c.update(scale=float("nan"))),
    ("scale", lambda c: c.update(scale=float("inf"))),
    ("scale", lambda c: c.update(scale=1e308)),
    ("scale", lambda c: c.update(scale=-1e300)),
    ("scale", lambda c: c.update(scale=10**400)),
    ("scale", lambda c: c.update(scale="0.5")),
    ("scale", lambda c: c.update(scale=True)),
    ("backend", lambda c: c.update(backend="turbo")),
    ("backend", lambda c: c.update(backend="\ud800")),
    ("backend", lambda c: c.update(backend="cpu\n")),
    ("backend", lambda c: c.update(backend=3)),
    ("return_lse", lambda c: c.update(return_lse="yes")),
    ("deterministic", lambda c: c.update(deterministic=1)),
    ("additional_values", lambda c: c.update(additional_keys=c["key"][:, :2])),
    ("additional_keys", lambda c: c.update(additional_keys=c["key"][:, :2, :1],
                                           additional_values=c["value"][:, :2])),
    ("additional_keys", lambda c: c.update(additional_keys=c["key"][None],
                                           additional_values=c["value"])),
]


@pytest.mark.parametrize("framework", ["torch", "numpy"])
@pytest.mark.parametrize("which", range(len(BREAKS)))
def test_each_break_raises_an_error_naming_the_argument(framework, which):
    name, breaks = BREAKS[which]
    call = _valid_call(framework)
    breaks(call)
    for entry_point in (gna.na1d, gna.neighborhood_attention):
        with pytest.raises((ValueError, TypeError, NotImplementedError)) as error:
            entry_point(**call)
        assert name in str(error.value), f"{name}: {type(error.value).__name__}: {error.value}"


GARBAGE = [None, "x", b"x", 1j, [1.0], {}, object(), float("nan")]
WINDOW_ARGUMENTS = ("kernel_size", "stride", "dilation")


@st.composite
def invalid_calls(draw):
    """(call, argument the error must name): a random valid problem with one
    rule broken at random, on a random axis, by a random amount."""
    p = draw(problems(allow_empty=False))
    framework = draw(st.sampled_from(["torch", "numpy"]))
    rank = len(p["spatial"])
    a = draw(st.integers(0, rank - 1))
    n = p["spatial"][a]
    axes = {name: list(p[name]) for name in WINDOW_ARGUMENTS + ("is_causal",)}
    k, d = axes["kernel_size"][a], axes["dilation"][a]
    kind = draw(st.sampled_from(["kernel_past_axis", "dilation_past_axis", "stride_past_kernel",
                                 "not_positive", "past_int64", "tuple_length", "scale",
                                 "garbage"]))
    scale = p["scale"]
    extra = {}
    if kind == "kernel_past_axis":
        name = "kernel_size"
        axes[name][a] = n // d + draw(st.integers(1, 10**6))
    elif kind == "dilation_past_axis":
        name = "dilation"
        axes[name][a] = n // k + draw(st.integers(1, 10**6))
    elif kind == "stride_past_kernel":
        name = "stride"
        axes[name][a] = k + draw(st.integers(1, 10**6))
    elif kind == "not_positive":
        name = draw(st.sampled_from(WINDOW_ARGUMENTS))
        axes[name][a] = draw(st.integers(-(2**63), 0))
    elif kind == "past_int64":
        name = draw(st.sampled_from(WINDOW_ARGUMENTS))
        axes[name][a] = draw(st.sampled_from([1, -1])) * draw(st.integers(2**63, 2**200))
    elif kind == "tuple_length":
        name = draw(st.sampled_from(WINDOW_ARGUMENTS + ("is_causal",)))
        length = draw(st.sampled_from([m for m in range(0, 5) if m != rank]))
        axes[name] = [axes[name][0]] * length
    elif kind == "scale":
        name = "scale"
        scale = draw(st.one_of(st.sampled_from([float("nan"), float("inf"), -float("inf")]),
                               st.floats(2.0**64 * 1.001, 1e308),
                               st.floats(-1e308, -(2.0**64) * 1.001),
                               st.integers(2**1024, 2**1100)))
    else:
        name = draw(st.sampled_from(["query", "key", "value", "kernel_size", "stride",
                                     "dilation", "is_causal", "scale", "backend", "return_lse",
                                     "additional_keys"]))
        value = draw(st.sampled_from(GARBAGE))
        if name == "scale" and value is None:
            value = "x"  # None is the default scale
        if name == "backend" and value is None:
            value = 7  # None is auto
        if name == "additional_keys" and value is None:
            value = [0.0]
        extra[name] = value
    call = {}
    for tensor, shape in shapes(p).items():
        values = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        call[tensor] = torch.from_numpy(values) if framework == "torch" else values
    call.update({arg: tuple(axes[arg]) for arg in axes}, scale=scale)
    call.update(extra)
    return call, name


@given(case=invalid_calls())
@bounded(400)
def test_random_invalid_calls_raise_errors_naming_the_argument(case):
    call, name = case
    with pytest.raises((ValueError, TypeError, NotImplementedError)) as error:
        gna.neighborhood_attention(**call)
    assert name in str(error.value), f"{name}: {type(error.value).__name__}: {error.value}"


def test_every_break_breaks_a_valid_call():
    """The valid call itself runs, so each break above is what fails."""
    for framework in ("torch", "numpy"):
        assert gna.na1d(**_valid_call(framework)).shape == (1, 8, 4, 8)
