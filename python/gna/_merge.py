"""merge_attentions: outputs over disjoint key sets merged into one softmax."""
try:
    import torch
except ImportError:
    torch = None

from . import _arguments as args

_FLOATS = ("float16", "bfloat16", "float32", "float64")


def _check_part(i, out, lse, first):
    for name, t in ((f"outputs[{i}]", out), (f"lse_tensors[{i}]", lse)):
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
        raise ValueError(f"outputs[{i}].shape = {tuple(out.shape)}, lse_tensors[{i}].shape "
                         f"= {tuple(lse.shape)}: expected outputs of one shape [..., D] "
                         "and lse_tensors of that shape without D")


def _check_values(stacked):
    # A log-sum-exp is finite, or -inf for a part that saw no key: +inf or
    # NaN would turn the merge into inf/NaN without a word. One check of all
    # parts (one device sync); torch.compile traces without it.
    compiling = getattr(torch.compiler, "is_compiling", lambda: False)()
    if compiling or stacked.numel() == 0:
        return
    bad = torch.isnan(stacked) | torch.isposinf(stacked)
    if bool(bad.any()):
        i = int(bad.flatten(1).any(dim=1).nonzero()[0])
        raise ValueError(f"lse_tensors[{i}] holds +inf or NaN: a log-sum-exp must be finite, "
                         "or -inf for a part whose queries saw no key")


def merge_attentions(outputs, lse_tensors, torch_compile=True, use_autograd_fix=True):
    """Merges attention outputs over disjoint key sets into one softmax.

    outputs: sequence of [batch, *spatial, heads, head_dim_v] tensors,
    lse_tensors: the matching [batch, *spatial, heads] log-sum-exps. Returns
    (output, lse): the output in the dtype of outputs[0], the lse in float32
    (float64 for float64 inputs). Plain torch ops, so differentiable with
    respect to both inputs, and fused by torch.compile when the caller
    compiles; NATTEN's torch_compile and use_autograd_fix switches are
    checked and have nothing to switch. gna also merges a single part and
    outputs of any spatial rank (NATTEN: two or more, rank 4).
    """
    if torch is None:
        raise TypeError("merge_attentions needs torch")
    args.int_flag(torch_compile, "torch_compile")
    args.int_flag(use_autograd_fix, "use_autograd_fix")
    for name, parts in (("outputs", outputs), ("lse_tensors", lse_tensors)):
        if not isinstance(parts, (list, tuple)):
            raise TypeError(f"{name} must be a list or tuple of torch.Tensor, "
                            f"got {type(parts).__name__}")
    if len(outputs) != len(lse_tensors) or not outputs:
        raise ValueError(f"outputs has {len(outputs)} entries and lse_tensors "
                         f"{len(lse_tensors)}: expected the same number, at least one")
    for i, (out, lse) in enumerate(zip(outputs, lse_tensors)):
        _check_part(i, out, lse, outputs[0])
    compute = torch.promote_types(outputs[0].dtype, torch.float32)
    stacked = torch.stack([lse.to(compute) for lse in lse_tensors])
    _check_values(stacked)
    lse = torch.logsumexp(stacked, dim=0)
    # A query that saw no key in any part has lse -inf: weight it 0, not NaN.
    finite = torch.where(torch.isinf(lse), torch.zeros_like(lse), lse)
    weights = torch.exp(stacked - finite).unsqueeze(-1)
    merged = sum(w * out.to(compute) for w, out in zip(weights.unbind(0), outputs))
    return merged.to(outputs[0].dtype), lse
