"""One test per input rule: the exception type, and a message that names the
argument to change. Nothing may crash the interpreter."""
import numpy as np
import pytest
import torch

import gna
from gna import _C


def base(**changes):
    """Valid na1d arguments (GQA 4/2 heads, Dv 8 != D 16) with some replaced."""
    args = dict(query=torch.randn(1, 8, 4, 16), key=torch.randn(1, 8, 2, 16),
                value=torch.randn(1, 8, 2, 8), kernel_size=3)
    args.update(changes)
    return args


def extra(tokens=2, heads=2, dim=16, dim_v=8, batch=1):
    return dict(additional_keys=torch.randn(batch, tokens, heads, dim),
                additional_values=torch.randn(batch, tokens, heads, dim_v))


# rule -> (na1d arguments, exception, regex the message must contain). The
# exception classes are NATTEN's for the same input (test_natten_compat.py
# checks that against NATTEN itself).
RULES = {
    # types of the tensors
    "query_not_a_tensor": (base(query=[[1.0]]), TypeError, "query"),
    "key_not_a_tensor": (base(key=3.0), TypeError, "key"),
    "numpy_mixed_with_torch": (base(value=np.zeros((1, 8, 2, 8), np.float32)), TypeError,
                               "value"),
    "query_rank": (base(query=torch.randn(1, 8, 8, 4, 16)), ValueError, r"query\.ndim"),
    "key_rank": (base(key=torch.randn(8, 2, 16)), ValueError, r"key\.ndim"),
    "value_rank": (base(value=torch.randn(1, 1, 8, 2, 8)), ValueError, r"value\.ndim"),
    "dtype_mix": (base(key=torch.randn(1, 8, 2, 16).half()), ValueError, r"key\.dtype"),
    "unsupported_dtype": (base(query=torch.ones(1, 8, 4, 16, dtype=torch.int32),
                               key=torch.ones(1, 8, 2, 16, dtype=torch.int32),
                               value=torch.ones(1, 8, 2, 8, dtype=torch.int32)),
                          NotImplementedError, r"query\.dtype.*float16, bfloat16, float32"),
    "sparse_layout": (base(query=torch.randn(1, 8, 4, 16).to_sparse()), NotImplementedError,
                      r"query\.layout"),
    # shapes of the tensors
    "batch_mismatch": (base(key=torch.randn(2, 8, 2, 16)), ValueError, r"key\.shape\[0\]"),
    "spatial_mismatch": (base(value=torch.randn(1, 7, 2, 8)), ValueError,
                         r"value\.shape\[1\]"),
    "head_dim_mismatch": (base(key=torch.randn(1, 8, 2, 12)), ValueError,
                          r"key\.shape\[3\].*head_dim"),
    "kv_heads_mismatch": (base(value=torch.randn(1, 8, 1, 8)), ValueError,
                          r"value\.shape\[2\].*kv_heads"),
    "heads_not_multiple_of_kv_heads": (base(key=torch.randn(1, 8, 3, 16),
                                            value=torch.randn(1, 8, 3, 8)),
                                       ValueError, r"key.*multiple"),
    # window parameters
    "kernel_size_below_1": (base(kernel_size=0), ValueError, r"kernel_size\[0\] = 0"),
    "kernel_size_exceeds_axis": (base(kernel_size=9), ValueError, r"kernel_size\[0\] = 9"),
    "kernel_times_dilation_exceeds_axis": (base(kernel_size=3, dilation=3), ValueError,
                                           r"kernel_size\[0\].*dilation"),
    "stride_below_1": (base(stride=0), ValueError, r"stride\[0\] = 0"),
    "stride_exceeds_kernel": (base(stride=4), ValueError, r"stride\[0\] = 4.*kernel_size"),
    "dilation_below_1": (base(dilation=0), ValueError, r"dilation\[0\] = 0"),
    "kernel_size_beyond_int64": (base(kernel_size=2**70), ValueError, r"kernel_size\[0\]"),
    "kernel_size_type": (base(kernel_size=3.0), ValueError, "kernel_size"),
    "kernel_size_bool": (base(kernel_size=True), ValueError, "kernel_size"),
    "kernel_size_tuple_length": (base(kernel_size=(3, 3)), ValueError, "kernel_size"),
    "kernel_size_tuple_entry_type": (base(kernel_size=("3",)), ValueError,
                                     r"kernel_size\[0\]"),
    "stride_tuple_length": (base(stride=(1, 1)), ValueError, "stride"),
    "dilation_type": (base(dilation="2"), ValueError, "dilation"),
    "is_causal_type": (base(is_causal=1), ValueError, "is_causal"),
    "is_causal_tuple_length": (base(is_causal=(True, False)), ValueError, "is_causal"),
    # other arguments
    "scale_type": (base(scale="0.5"), TypeError, "scale"),
    "scale_not_finite": (base(scale=float("nan")), ValueError, "scale"),
    "return_lse_type": (base(return_lse="yes"), TypeError, "return_lse"),
    "backend_type": (base(backend=3), NotImplementedError, "backend"),
    "backend_unknown": (base(backend="fast"), NotImplementedError, r"backend.*known: None, auto"),
    # additional KV
    "additional_keys_alone": (base(additional_keys=torch.randn(1, 2, 2, 16)), ValueError,
                              "additional_values"),
    "additional_keys_not_a_tensor": (base(**{**extra(), "additional_keys": [1.0]}), TypeError,
                                     "additional_keys"),
    "additional_keys_rank": (base(**{**extra(), "additional_keys": torch.randn(1, 2, 16)}),
                             ValueError, r"additional_keys\.ndim"),
    "additional_keys_batch": (base(**extra(batch=2)), ValueError,
                              r"additional_keys\.shape\[0\]"),
    "additional_keys_heads": (base(**extra(heads=1)), ValueError,
                              r"additional_keys\.shape\[2\]"),
    "additional_keys_dim": (base(**extra(dim=4)), ValueError, r"additional_keys\.shape\[3\]"),
    "additional_values_dim": (base(**extra(dim_v=4)), ValueError,
                              r"additional_values\.shape\[3\]"),
    "additional_values_tokens": (base(**{**extra(), "additional_values":
                                         torch.randn(1, 3, 2, 8)}),
                                 ValueError, r"additional_values\.shape\[1\]"),
    "additional_kv_dtype": (base(**{**extra(), "additional_keys":
                                    torch.randn(1, 2, 2, 16).double()}),
                            ValueError, r"additional_keys\.dtype"),
}


@pytest.mark.parametrize("rule", RULES)
def test_input_rule(rule):
    args, error, pattern = RULES[rule]
    with pytest.raises(error, match=pattern):
        gna.na1d(**args)


def test_rank_specific_entry_checks_query_rank():
    with pytest.raises(ValueError, match=r"query\.ndim"):
        gna.na2d(*(torch.randn(1, 8, 4, 16),) * 3, kernel_size=3)
    with pytest.raises(ValueError, match=r"query\.ndim"):
        gna.neighborhood_attention(*(torch.randn(1, 8),) * 3, kernel_size=3)
    with pytest.raises(ValueError, match=r"query\.ndim"):
        gna.attention(*(torch.randn(1, 2, 8, 4, 16),) * 3)


def test_per_axis_rules_name_the_axis():
    q = torch.randn(1, 4, 6, 5, 1, 4)
    with pytest.raises(ValueError, match=r"kernel_size\[2\] = 6"):
        gna.na3d(q, q, q, kernel_size=(3, 3, 6))
    with pytest.raises(ValueError, match=r"stride\[1\] = 3"):
        gna.na3d(q, q, q, kernel_size=(3, 2, 3), stride=(1, 3, 1))


def test_errors_keep_the_core_argument_name():
    with pytest.raises(ValueError) as info:
        gna.na1d(**base(kernel_size=9))
    assert info.value.argument == "kernel_size[0]"


@pytest.mark.parametrize("shapes", [
    ((0, 8, 4, 16), (0, 8, 2, 16), (0, 8, 2, 8)),    # batch 0
    ((1, 0, 4, 16), (1, 0, 2, 16), (1, 0, 2, 8)),    # no tokens (window need not fit)
    ((1, 8, 0, 16), (1, 8, 2, 16), (1, 8, 2, 8)),    # no query heads
])
def test_empty_tensors_give_empty_results(shapes, device):
    q, k, v = (torch.randn(s, device=device, requires_grad=True) for s in shapes)
    out, lse = gna.na1d(q, k, v, kernel_size=5, return_lse=True)
    assert out.shape == (*shapes[0][:-1], shapes[2][-1]) and lse.shape == shapes[0][:-1]
    (out.sum() + lse.sum()).backward()
    assert q.grad.shape == q.shape and k.grad.shape == k.shape and v.grad.shape == v.shape
    # Keys nobody attends to (kv heads without query heads) get zero gradients.
    assert not k.grad.any() and not v.grad.any()


def test_empty_additional_kv():
    args = base()
    out = gna.na1d(**args, **extra(tokens=0))
    torch.testing.assert_close(out, gna.na1d(**args))


def test_backends_not_built_or_wrong_device_say_why(device):
    q = torch.randn(1, 8, 2, 16, device=device)
    if device == "cpu":
        for name in ("sm90", "cuda-generic"):
            if name not in gna.backend_names():
                with pytest.raises(ValueError, match=f"backend = {name}: not built"):
                    gna.na1d(q, q, q, 3, backend=name)
    else:
        with pytest.raises(ValueError, match="backend = reference.*CPU tensors"):
            gna.na1d(q, q, q, 3, backend="reference")


def test_no_backend_for_auto_is_natten_class(cuda):
    # float64 runs on the CPU reference only: on CUDA, auto finds no backend.
    q = torch.randn(1, 8, 2, 16, dtype=torch.float64, device=cuda)
    with pytest.raises(NotImplementedError, match="backend = auto: no backend can run"):
        gna.na1d(q, q, q, 3)
    with pytest.raises(ValueError, match="backend = cuda-generic"):
        gna.na1d(q, q, q, 3, backend="cuda-generic")


def test_tensors_on_different_devices(cuda):
    q = torch.randn(1, 8, 2, 16)
    with pytest.raises(ValueError, match=r"key\.device"):
        gna.na1d(q, q.to(cuda), q, 3)


def test_merge_attentions_rules():
    out, lse = torch.randn(1, 4, 2, 3), torch.randn(1, 4, 2)
    with pytest.raises(ValueError, match="lse_tensors"):
        gna.merge_attentions([out, out], [lse])
    with pytest.raises(ValueError, match=r"lse_tensors\[0\]\.shape"):
        gna.merge_attentions([out], [torch.randn(1, 4)])
    with pytest.raises(TypeError, match=r"outputs\[1\]"):
        gna.merge_attentions([out, 1.0], [lse, lse])
    with pytest.raises(TypeError, match="outputs"):
        gna.merge_attentions(out, lse)


@pytest.mark.parametrize("call", [
    lambda w: _C.forward(None, None, None, None, None, None, None, w),
    lambda w: _C.forward(*(torch.randn(1, 1, 1, 1, 1, 1, 1),) * 4, None, None, None, w),
    lambda w: _C.forward(*(torch.randn(()),) * 4, None, None, None, w),
    lambda w: _C.forward(*(torch.randn(1, 8, 1, 4),) * 4, torch.empty(0), None, None, w),
    lambda w: _C.forward(*(torch.randn(1, 8, 1, 4),) * 3, torch.randn(1, 8, 1, 4)[:, :1]
                         .expand(1, 8, 1, 4), None, None, None, w),
    lambda w: _C.forward(*(torch.randn(1, 8, 1, 4),) * 4, None, None, None,
                         _C.Window([3, 3], [1], [1], [False], None)),
])
def test_extension_rejects_bad_calls_without_crashing(call):
    # Direct calls of the extension, bypassing the Python checks: errors, not crashes.
    with pytest.raises((TypeError, ValueError)):
        call(_C.Window([3], [1], [1], [False], None))
