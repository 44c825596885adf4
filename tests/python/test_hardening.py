"""Issue 13's reproducers, one test each: every one a clean error naming the
argument, or the right answer (checked against the float64 dense oracle)."""
import numpy as np
import pytest
import torch

import gna
from gna import _C
from mask_attention import attention as dense_attention


def small(seed=0, shape=(1, 8, 2, 4), dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen, dtype=dtype) for _ in range(3)]


def test_negative_bit_views_are_read_with_their_sign():
    q, k, v = small()
    kn = torch.complex(torch.zeros_like(k), -k).conj().imag  # == k, lazily negated twice
    assert kn.is_neg() and torch.equal(kn, k)
    torch.testing.assert_close(gna.na1d(q, kn, v, 3), gna.na1d(q, k, v, 3), atol=0, rtol=0)


def test_negative_bit_gradients_flow_to_the_leaf():
    q, k, v = small(dtype=torch.float64)
    leaf = k.clone().requires_grad_()
    kn = torch.complex(torch.zeros_like(leaf), -leaf).conj().imag
    gna.na1d(q, kn, v, 3).sum().backward()
    want = k.clone().requires_grad_()
    gna.na1d(q, want, v, 3).sum().backward()
    torch.testing.assert_close(leaf.grad, want.grad)


def test_weights_sum_to_one_at_huge_scores():
    x = torch.full((1, 16, 1, 4), 1e9, dtype=torch.float64)
    out = gna.na1d(x, x, torch.ones_like(x), 5)
    torch.testing.assert_close(out, torch.ones_like(out), atol=0, rtol=0)


def test_float64_gradients_do_not_depend_on_the_float32_lse():
    # Logits near 1e5 (a float32 lse there is off by ~4e-3) that differ by
    # O(1). The oracle gets keys shifted by -158: the same softmax and
    # gradients (a per-query constant leaves softmax alone), but scores near
    # 0, so that its own float64 rounding does not swamp the comparison.
    gen = torch.Generator().manual_seed(3)
    base = torch.full((1, 12, 2, 4), 158.0, dtype=torch.float64)
    q, k, v = (base + 0.01 * torch.randn(base.shape, generator=gen, dtype=torch.float64)
               for _ in range(3))
    window = dict(kernel_size=(5,), stride=(1,), dilation=(1,), is_causal=(False,))
    got = [t.clone().requires_grad_() for t in (q, k, v)]
    want = [t.clone().requires_grad_() for t in (q, k, v)]
    grad = torch.randn((1, 12, 2, 4), generator=gen, dtype=torch.float64)
    out, lse = gna.na1d(*got, 5, scale=1.0, return_lse=True)
    (out * grad).sum().backward()
    ref, _ = dense_attention(want[0], want[1] - 158.0, want[2], **window, scale=1.0)
    (ref * grad).sum().backward()
    torch.testing.assert_close(out, ref, atol=1e-8, rtol=1e-10)
    for g, w in zip(got, want):
        scale = w.grad.abs().max().item()
        torch.testing.assert_close(g.grad, w.grad, atol=1e-6 * scale, rtol=0)


@pytest.mark.parametrize("scale", [1e308, -1e300, 2.0**64 * 2, 10**400, -(10**400)],
                         ids=["1e308", "-1e300", "2^65", "10^400", "-10^400"])
def test_overflowing_scales_are_a_value_error_naming_scale(scale):
    q, k, v = small()
    with pytest.raises(ValueError, match="scale"):
        gna.na1d(q, k, v, 3, scale=scale)


def test_the_largest_scale_allowed_stays_finite():
    q, k, v = small()
    assert torch.isfinite(gna.na1d(q, k, v, 3, scale=2.0**64)).all()


@pytest.mark.parametrize("name", ["query", "key", "value"])
def test_missing_tensors_are_a_type_error_naming_them(name):
    q, k, v = small()
    call = dict(query=q, key=k, value=v)
    call[name] = None
    with pytest.raises(TypeError, match=name):
        gna.na1d(**call, kernel_size=3)


@pytest.mark.parametrize("dtype", [object, str, "V8", "datetime64[s]", np.float128])
def test_numpy_arrays_gna_cannot_read_name_the_argument(dtype):
    q, k, v = (t.numpy() for t in small())
    odd = np.zeros(q.shape, dtype=dtype)
    with pytest.raises(TypeError, match=r"query\.dtype"):
        gna.na1d(odd, k, v, 3)


@pytest.mark.parametrize("backend", ["\ud800", "cpu\n", "CPU", " cpu", "cpu\x00", "é"])
def test_odd_backend_strings_name_the_backend(backend):
    q, k, v = small()
    with pytest.raises((ValueError, NotImplementedError), match="backend"):
        gna.na1d(q, k, v, 3, backend=backend)


@pytest.mark.parametrize("layout", [">f4", ">f8", "fortran", "fortran_big_endian"])
def test_big_endian_and_fortran_numpy_inputs_give_native_outputs(layout):
    q, k, v = (t.double().numpy() for t in small())
    def convert(a):
        if layout.startswith("fortran"):
            a = np.asfortranarray(a)
        if layout.endswith("big_endian"):
            a = a.astype(">f8")
        return a.astype(layout) if layout.startswith(">") else a
    dtype = np.dtype(layout[1:]) if layout.startswith(">") else np.dtype(np.float64)
    out = gna.na1d(convert(q), convert(k), convert(v), 3)
    assert out.dtype == dtype and out.dtype.isnative
    want = gna.na1d(q.astype(dtype), k.astype(dtype), v.astype(dtype), 3)
    np.testing.assert_array_equal(out, want)


def test_window_rules_come_before_a_huge_output_is_allocated():
    # 2^40 query rows of stride-0 memory: the output could never be allocated.
    for big in (torch.randn(1, 1, 1, 4).expand(2**20, 2**20, 1, 4),
                np.broadcast_to(np.ones((1, 1, 1, 4), np.float32), (2**20, 2**20, 1, 4))):
        with pytest.raises(ValueError, match="kernel_size"):
            gna.na1d(big, big, big, 2**21)
        with pytest.raises((ValueError, NotImplementedError), match="backend"):
            gna.na1d(big, big, big, 3, backend="turbo")


def test_check_forward_runs_nothing_and_names_the_backend():
    q, k, v = small()
    window = _C.Window([3], [1], [1], [False], None)
    assert _C.check_forward(q, k, v, None, None, window, "reference") == "reference"


# --- merge_attentions validates what it merges ---

def parts():
    q, k, v = small(dtype=torch.float64)
    out, lse = gna.na1d(q, k, v, 3, return_lse=True)
    return out, lse


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_merge_refuses_non_finite_lses(bad):
    out, lse = parts()
    with pytest.raises(ValueError, match=r"lse_tensors\[1\]"):
        gna.merge_attentions([out, out], [lse, torch.full_like(lse, bad)])


def test_merge_keeps_minus_infinity_as_an_empty_part():
    out, lse = parts()
    merged, merged_lse = gna.merge_attentions([out, out], [lse, torch.full_like(lse, -torch.inf)])
    torch.testing.assert_close(merged, out)
    torch.testing.assert_close(merged_lse, lse.double())


@pytest.mark.parametrize("dtype", [torch.int32, torch.complex64, torch.bool])
@pytest.mark.parametrize("which", ["outputs", "lse_tensors"])
def test_merge_refuses_non_float_parts(dtype, which):
    out, lse = parts()
    outputs, lses = [out, out], [lse, lse]
    (outputs if which == "outputs" else lses)[1] = torch.ones(
        (out if which == "outputs" else lse).shape, dtype=dtype)
    with pytest.raises(TypeError, match=rf"{which}\[1\]\.dtype"):
        gna.merge_attentions(outputs, lses)


def test_merge_refuses_zero_dimensional_outputs():
    with pytest.raises(ValueError, match=r"outputs\[0\]\.ndim"):
        gna.merge_attentions([torch.tensor(1.0)], [torch.tensor(0.0)])


def test_meta_tensors_give_shapes_forward_and_backward():
    m = torch.randn(1, 8, 2, 4).to("meta").requires_grad_()
    out = gna.na1d(m, m, m, 3)
    assert out.shape == (1, 8, 2, 4) and out.device.type == "meta"
    out.sum().backward()
    assert m.grad.shape == m.shape and m.grad.device.type == "meta"
