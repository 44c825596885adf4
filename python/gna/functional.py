"""Functional API, heads-last layout [batch, *spatial, heads, head_dim].

Argument names and meanings follow NATTEN. Torch tensors go through the
custom ops of _torch_ops (autograd, torch.compile); numpy arrays through a
direct call of the C++ core.
"""
from . import _arguments as args
from . import _numpy_ops

try:
    import torch
except ImportError:
    torch = None


def _forward_op(framework, tensors):
    if framework == "numpy":
        return _numpy_ops.na_forward
    from . import _torch_ops
    return _torch_ops.forward_for(*tensors)


def neighborhood_attention(query, key, value, kernel_size, stride=1, dilation=1,
                           is_causal=False, scale=None, additional_keys=None,
                           additional_values=None, return_lse=False, backend=None,
                           deterministic=False):
    """Generalized neighborhood attention of any spatial rank (from query.ndim - 3).

    Returns the output [batch, *spatial, heads, head_dim_v] in the input's type,
    dtype and device, and with return_lse=True also the log-sum-exp of the scaled
    scores [batch, *spatial, heads] in float32.
    """
    args.framework_of(query, "query")
    rank = query.ndim - 3
    if not 1 <= rank <= 3:
        raise TypeError(f"query.ndim = {query.ndim}: expected 4, 5 or 6 dimensions "
                        "[batch, X0, (X1, (X2)), heads, head_dim]")
    return _attend(rank, query, key, value, kernel_size, stride, dilation, is_causal, scale,
                   additional_keys, additional_values, return_lse, backend, deterministic)


def _attend(rank, query, key, value, kernel_size, stride, dilation, is_causal,
            scale, additional_keys, additional_values, return_lse, backend, deterministic=False):
    framework = args.check_tensors(
        {"query": query, "key": key, "value": value, "additional_keys": additional_keys,
         "additional_values": additional_values}, rank)
    window = (args.per_axis(kernel_size, rank, "kernel_size"),
              args.per_axis(stride, rank, "stride"),
              args.per_axis(dilation, rank, "dilation"),
              args.per_axis(is_causal, rank, "is_causal", is_flag=True),
              args.optional_scale(scale))
    return_lse = args.flag(return_lse, "return_lse")
    deterministic = args.flag(deterministic, "deterministic")
    tensors = (query, key, value, additional_keys, additional_values)
    output, lse = _forward_op(framework, tensors)(*tensors, *window, args.backend_name(backend),
                                                  deterministic)
    return (output, lse) if return_lse else output


def na1d(query, key, value, kernel_size, stride=1, dilation=1, is_causal=False, scale=None,
         additional_keys=None, additional_values=None, return_lse=False, backend=None,
         deterministic=False):
    """1-D neighborhood attention over [batch, X0, heads, head_dim].

    key [batch, X0, kv_heads, head_dim] and value [batch, X0, kv_heads, head_dim_v]
    with heads % kv_heads == 0. kernel_size, stride, dilation: int (or 1-tuple);
    is_causal: bool. scale defaults to head_dim ** -0.5. additional_keys/values
    [batch, tokens, kv_heads, head_dim(_v)] are attended by every query. backend:
    None (auto) or a name from gna.backend_names(). deterministic=True (or
    torch.use_deterministic_algorithms(True)) makes the backward bitwise
    reproducible; the sm90 backward then orders its dQ sums. Returns the output
    [batch, X0, heads, head_dim_v], and the float32 LSE [batch, X0, heads] too
    when return_lse=True.
    """
    return _attend(1, query, key, value, kernel_size, stride, dilation, is_causal, scale,
                   additional_keys, additional_values, return_lse, backend, deterministic)


def na2d(query, key, value, kernel_size, stride=1, dilation=1, is_causal=False, scale=None,
         additional_keys=None, additional_values=None, return_lse=False, backend=None,
         deterministic=False):
    """2-D neighborhood attention over [batch, X0, X1, heads, head_dim].

    Per-axis arguments (kernel_size, stride, dilation, is_causal) take one value
    for both axes or a 2-tuple; everything else as in na1d.
    """
    return _attend(2, query, key, value, kernel_size, stride, dilation, is_causal, scale,
                   additional_keys, additional_values, return_lse, backend, deterministic)


def na3d(query, key, value, kernel_size, stride=1, dilation=1, is_causal=False, scale=None,
         additional_keys=None, additional_values=None, return_lse=False, backend=None,
         deterministic=False):
    """3-D neighborhood attention over [batch, X0, X1, X2, heads, head_dim].

    Per-axis arguments take one value for all axes or a 3-tuple, e.g.
    kernel_size=(1, 7, 7) is per-frame 2-D attention in a video; everything
    else as in na1d.
    """
    return _attend(3, query, key, value, kernel_size, stride, dilation, is_causal, scale,
                   additional_keys, additional_values, return_lse, backend, deterministic)


def attention(query, key, value, is_causal=False, scale=None, return_lse=False,
              backend=None, deterministic=False):
    """Dense self attention over token sequences [batch, tokens, heads, head_dim].

    A 1-D neighborhood as large as the sequence is exactly self attention (and
    causal attention with is_causal=True), so one kernel serves both.
    """
    args.framework_of(query, "query")
    if query.ndim != 4:
        raise TypeError(f"query.ndim = {query.ndim}: expected 4 dimensions "
                        "[batch, tokens, heads, head_dim]")
    # An empty sequence runs nothing; its window only needs to be valid.
    tokens = max(int(query.shape[1]), 1)
    return _attend(1, query, key, value, tokens, 1, 1, is_causal, scale, None, None,
                   return_lse, backend, deterministic)


_FLOATS = ("float16", "bfloat16", "float32", "float64")


def _check_merge_part(i, out, lse, first):
    for name, t in ((f"outputs[{i}]", out), (f"lses[{i}]", lse)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if str(t.dtype).replace("torch.", "") not in _FLOATS:
            raise TypeError(f"{name}.dtype = {t.dtype}: expected float16, bfloat16, float32 "
                            "or float64")
        if t.device != first.device:
            raise TypeError(f"{name}.device = {t.device}: all tensors must be on "
                            f"{first.device} (the device of outputs[0])")
    if out.ndim < 2:
        raise ValueError(f"outputs[{i}].ndim = {out.ndim}: expected at least 2 dimensions "
                         "[..., heads, head_dim_v]")
    if out.shape != first.shape or lse.shape != out.shape[:-1]:
        raise ValueError(f"outputs[{i}].shape = {tuple(out.shape)}, lses[{i}].shape = "
                         f"{tuple(lse.shape)}: expected outputs of one shape [..., D] "
                         "and lses of that shape without D")


def _check_merge_values(stacked):
    # A log-sum-exp is finite, or -inf for a part that saw no key: +inf or
    # NaN would turn the merge into inf/NaN without a word. One check of all
    # parts (one device sync); torch.compile traces without it.
    compiling = getattr(torch.compiler, "is_compiling", lambda: False)()
    if compiling or stacked.numel() == 0:
        return
    bad = torch.isnan(stacked) | torch.isposinf(stacked)
    if bool(bad.any()):
        i = int(bad.flatten(1).any(dim=1).nonzero()[0])
        raise ValueError(f"lses[{i}] holds +inf or NaN: a log-sum-exp must be finite, or "
                         "-inf for a part whose queries saw no key")


def merge_attentions(outputs, lses):
    """Merges attention outputs over disjoint key sets into one softmax.

    outputs: sequence of [batch, *spatial, heads, head_dim_v] tensors, lses: the
    matching [batch, *spatial, heads] log-sum-exps. Returns (output, lse): the
    output in the dtype of outputs[0], the lse in float32 (float64 for float64
    inputs). Plain torch ops, so differentiable with respect to both inputs.
    """
    if torch is None:
        raise TypeError("merge_attentions needs torch")
    for name, parts in (("outputs", outputs), ("lses", lses)):
        if not isinstance(parts, (list, tuple)):
            raise TypeError(f"{name} must be a list or tuple of torch.Tensor, "
                            f"got {type(parts).__name__}")
    if len(outputs) != len(lses) or not outputs:
        raise ValueError(f"outputs has {len(outputs)} entries and lses {len(lses)}: "
                         "expected the same number, at least one")
    for i, (out, lse) in enumerate(zip(outputs, lses)):
        _check_merge_part(i, out, lse, outputs[0])
    compute = torch.promote_types(outputs[0].dtype, torch.float32)
    stacked = torch.stack([lse.to(compute) for lse in lses])
    _check_merge_values(stacked)
    lse = torch.logsumexp(stacked, dim=0)
    # A query that saw no key in any part has lse -inf: weight it 0, not NaN.
    finite = torch.where(torch.isinf(lse), torch.zeros_like(lse), lse)
    weights = torch.exp(stacked - finite).unsqueeze(-1)
    merged = sum(w * out.to(compute) for w, out in zip(weights.unbind(0), outputs))
    return merged.to(outputs[0].dtype), lse
