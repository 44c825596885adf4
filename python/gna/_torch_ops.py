"""The torch.library custom ops gna::na_forward and gna::na_backward.

Both are functional (they allocate what they return), so torch.compile
treats them as opaque graph nodes: the fake implementations give it shapes,
register_autograd ties the backward op to the forward one. Only APIs present
since torch 2.4 are used.
"""
import contextlib
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from . import _C
from ._outputs import allocate_outputs


def _runtime(t: Tensor):
    """Device context and stream handle for a call of the C++ core on t's device."""
    if t.device.type == "cuda":
        # DLPack export of a CUDA tensor requires its device to be current.
        return torch.cuda.device(t.device), torch.cuda.current_stream(t.device).cuda_stream
    return contextlib.nullcontext(), 0


def _readable(t: Optional[Tensor]) -> Optional[Tensor]:
    # DLPack refuses tensors that require grad; detach() shares the memory.
    if t is None:
        return None
    t = t.detach()
    # DLPack has no negative or conjugate bit: a lazy view (x.conj().imag,
    # torch._neg_view) would be read without its sign. Materialize it.
    if t.is_neg():
        t = t.resolve_neg()
    if t.is_conj():
        t = t.resolve_conj()
    return t


def forward_eager(query, key, value, additional_keys, additional_values, kernel_size,
                  stride, dilation, is_causal, scale, backend, deterministic=False):
    """The forward op's body. Called directly (skipping the op dispatcher's
    per-call cost) when no autograd graph is recorded and nothing compiles.
    `deterministic` only travels to the backward: every forward is."""
    query, key, value = _readable(query), _readable(key), _readable(value)
    additional_keys, additional_values = _readable(additional_keys), _readable(additional_values)
    window = _C.Window(kernel_size, stride, dilation, is_causal, scale)
    shape = (*query.shape[:-1], value.shape[-1])
    output, lse = allocate_outputs(
        lambda: (query.new_empty(shape), query.new_empty(query.shape[:-1], dtype=torch.float32)),
        shape, query, key, value, additional_keys, additional_values, window, backend)
    device, stream = _runtime(query)
    with device:
        _C.forward(query, key, value, output, lse, additional_keys, additional_values, window,
                   backend, stream)
    return output, lse


@torch.library.custom_op("gna::na_forward", mutates_args=())
def na_forward(query: Tensor, key: Tensor, value: Tensor,
               additional_keys: Optional[Tensor], additional_values: Optional[Tensor],
               kernel_size: List[int], stride: List[int], dilation: List[int],
               is_causal: List[bool], scale: Optional[float],
               backend: str, deterministic: bool) -> Tuple[Tensor, Tensor]:
    return forward_eager(query, key, value, additional_keys, additional_values, kernel_size,
                         stride, dilation, is_causal, scale, backend)


_is_compiling = getattr(torch.compiler, "is_compiling", None) or torch._dynamo.is_compiling


def forward_for(*tensors):
    """The forward to call: the custom op while torch.compile traces, the
    light autograd.Function when eager autograd records the call (the custom
    op's dispatch costs ~0.2 ms of host time per call, which a training step
    of a small problem would wait for), the op's body otherwise."""
    # Meta tensors (shapes without memory) have no DLPack export: the op's
    # fake implementation answers them, as it does for torch.compile.
    if _is_compiling() or any(t is not None and t.device.type == "meta" for t in tensors):
        return torch.ops.gna.na_forward
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return _EagerAutograd.apply
    return forward_eager


@na_forward.register_fake
def _(query, key, value, additional_keys, additional_values, kernel_size, stride,
      dilation, is_causal, scale, backend, deterministic):
    output = query.new_empty((*query.shape[:-1], value.shape[-1]))
    lse = query.new_empty(query.shape[:-1], dtype=torch.float32)
    return output, lse


def _no_tensor(like: Tensor) -> Tensor:
    # Ops cannot return None: "no additional KV" has an empty gradient.
    return like.new_empty((0,))


def backward_eager(grad_output, grad_lse, query, key, value, output, lse, additional_keys,
                   additional_values, kernel_size, stride, dilation, is_causal, scale, backend,
                   deterministic):
    """The backward op's body; grad_lse may be None (no gradient flows into
    the LSE). Returns dq, dk, dv and the additional-KV gradients (None
    without additional KV)."""
    grad_query = query.new_empty(query.shape)
    grad_key = key.new_empty(key.shape)
    grad_value = value.new_empty(value.shape)
    has_extra = additional_keys is not None
    grad_xk = additional_keys.new_empty(additional_keys.shape) if has_extra else None
    grad_xv = additional_values.new_empty(additional_values.shape) if has_extra else None
    window = _C.Window(kernel_size, stride, dilation, is_causal, scale)
    device, stream = _runtime(query)
    with device:
        _C.backward(_readable(query), _readable(key), _readable(value), _readable(output),
                    _readable(lse), _readable(grad_output), _readable(grad_lse),
                    _readable(additional_keys), _readable(additional_values),
                    grad_query, grad_key, grad_value, grad_xk, grad_xv, window, backend, stream,
                    deterministic)
    return grad_query, grad_key, grad_value, grad_xk, grad_xv


@torch.library.custom_op("gna::na_backward", mutates_args=())
def na_backward(grad_output: Tensor, grad_lse: Tensor, query: Tensor, key: Tensor,
                value: Tensor, output: Tensor, lse: Tensor,
                additional_keys: Optional[Tensor], additional_values: Optional[Tensor],
                kernel_size: List[int], stride: List[int], dilation: List[int],
                is_causal: List[bool], scale: Optional[float],
                backend: str, deterministic: bool) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    dq, dk, dv, dxk, dxv = backward_eager(
        grad_output, grad_lse, query, key, value, output, lse, additional_keys,
        additional_values, kernel_size, stride, dilation, is_causal, scale, backend,
        deterministic)
    if additional_keys is None:
        dxk, dxv = _no_tensor(query), _no_tensor(query)
    return dq, dk, dv, dxk, dxv


@na_backward.register_fake
def _(grad_output, grad_lse, query, key, value, output, lse, additional_keys,
      additional_values, kernel_size, stride, dilation, is_causal, scale, backend,
      deterministic):
    has_extra = additional_keys is not None
    return (query.new_empty(query.shape), key.new_empty(key.shape),
            value.new_empty(value.shape),
            additional_keys.new_empty(additional_keys.shape) if has_extra else _no_tensor(query),
            additional_values.new_empty(additional_values.shape) if has_extra
            else _no_tensor(query))


def _remember(ctx, tensors, out, lse, window, deterministic):
    """What both autograd paths (the custom op, _EagerAutograd) keep."""
    query, key, value, additional_keys, additional_values = tensors
    ctx.save_for_backward(query, key, value, out, lse, additional_keys, additional_values)
    ctx.window = tuple(window)  # kernel_size, stride, dilation, is_causal, scale, backend
    ctx.deterministic = deterministic


def _gradients(ctx, grad_output, grad_lse, run):
    """Both autograd paths' backward through `run` (backward_eager's
    arguments): unused outputs may come without a gradient, and
    torch.use_deterministic_algorithms(True) asks for determinism too."""
    query, key, value, out, lse, additional_keys, additional_values = ctx.saved_tensors
    if grad_output is None:
        grad_output = torch.zeros_like(out)
    deterministic = ctx.deterministic or torch.are_deterministic_algorithms_enabled()
    return run(grad_output, grad_lse, query, key, value, out, lse, additional_keys,
               additional_values, *ctx.window, deterministic)


def _through_op(grad_output, grad_lse, query, key, value, out, lse, additional_keys, *rest):
    # The op's schema takes tensors: an unused LSE gets a zero gradient, and
    # "no additional KV" comes back as empty tensors.
    if grad_lse is None:
        grad_lse = torch.zeros_like(lse)
    dq, dk, dv, dxk, dxv = torch.ops.gna.na_backward(grad_output, grad_lse, query, key, value,
                                                     out, lse, additional_keys, *rest)
    if additional_keys is None:
        dxk = dxv = None
    return dq, dk, dv, dxk, dxv


def _setup_context(ctx, inputs, output):
    _remember(ctx, inputs[:5], *output, inputs[5:11], inputs[11])


def _backward(ctx, grad_output, grad_lse):
    return _gradients(ctx, grad_output, grad_lse, _through_op) + (None,) * 7


na_forward.register_autograd(_backward, setup_context=_setup_context)


class _EagerAutograd(torch.autograd.Function):
    """Eager autograd of the same forward and backward bodies as the custom
    ops, without the op dispatcher; torch.compile uses the ops."""

    @staticmethod
    def forward(ctx, query, key, value, additional_keys, additional_values, kernel_size, stride,
                dilation, is_causal, scale, backend, deterministic):
        out, lse = forward_eager(query, key, value, additional_keys, additional_values,
                                 kernel_size, stride, dilation, is_causal, scale, backend)
        _remember(ctx, (query, key, value, additional_keys, additional_values), out, lse,
                  (kernel_size, stride, dilation, is_causal, scale, backend), deterministic)
        # An unused LSE then has no gradient (None), rather than zeros to read.
        ctx.set_materialize_grads(False)
        return out, lse

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output, grad_lse):
        return _gradients(ctx, grad_output, grad_lse, backward_eager) + (None,) * 7
