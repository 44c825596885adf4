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


_current_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)


def _runtime(t: Tensor):
    """Device context and stream handle for a call of the C++ core on t's
    device. Both are on every call's path, so the cheap forms come first:
    no device switch when t's device is current, the raw stream handle
    without a Stream object."""
    if t.device.type != "cuda":
        return contextlib.nullcontext(), 0
    index = t.device.index
    switch = index != torch.cuda.current_device()
    context = torch.cuda.device(index) if switch else contextlib.nullcontext()
    if _current_raw_stream is not None:
        return context, _current_raw_stream(index)
    return context, torch.cuda.current_stream(t.device).cuda_stream


_to_dlpack = torch._C._to_dlpack


def _export(t: Optional[Tensor]):
    """A DLPack capsule of t for the C++ core, or None. The capsule keeps
    the tensor's memory alive. Torch's C exporter skips Tensor.__dlpack__'s
    Python checks (microseconds per tensor, and a backward passes 14); what
    they guard is settled here: the negative and conjugate bits are resolved
    (a capsule cannot carry them, so the data would be read without them),
    and requires_grad does not matter to a reader."""
    if t is None:
        return None
    if t.is_neg() or t.is_conj():
        t = t.resolve_conj().resolve_neg()
    return _to_dlpack(t)


def forward_eager(query, key, value, additional_keys, additional_values, kernel_size,
                  stride, dilation, is_causal, scale, backend, deterministic=False,
                  q_tile=None, kv_tile=None, backward_q_tile=None, backward_kv_tile=None):
    """The forward op's body. Called directly (skipping the op dispatcher's
    per-call cost) when no autograd graph is recorded and nothing compiles.
    `deterministic` and the backward tiles only travel to the backward.
    q_tile/kv_tile force the sm90 forward's tiles (NATTEN's tile shapes)."""
    window = _C.Window(kernel_size, stride, dilation, is_causal, scale)
    shape = (*query.shape[:-1], value.shape[-1])
    output, lse = allocate_outputs(
        lambda: (query.new_empty(shape), query.new_empty(query.shape[:-1], dtype=torch.float32)),
        shape, lambda: _C.check_forward(_export(query), _export(key), _export(value),
                                        _export(additional_keys), _export(additional_values),
                                        window, backend))
    device, stream = _runtime(query)
    with device:
        _C.forward(_export(query), _export(key), _export(value), _export(output), _export(lse),
                   _export(additional_keys), _export(additional_values), window, backend, stream,
                   q_tile, kv_tile)
    return output, lse


@torch.library.custom_op("gna::na_forward", mutates_args=())
def na_forward(query: Tensor, key: Tensor, value: Tensor,
               additional_keys: Optional[Tensor], additional_values: Optional[Tensor],
               kernel_size: List[int], stride: List[int], dilation: List[int],
               is_causal: List[bool], scale: Optional[float],
               backend: str, deterministic: bool, q_tile: Optional[List[int]] = None,
               kv_tile: Optional[List[int]] = None,
               backward_q_tile: Optional[List[int]] = None,
               backward_kv_tile: Optional[List[int]] = None) -> Tuple[Tensor, Tensor]:
    # The backward tiles only travel to the backward (setup_context keeps them).
    return forward_eager(query, key, value, additional_keys, additional_values, kernel_size,
                         stride, dilation, is_causal, scale, backend, deterministic, q_tile,
                         kv_tile)


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
      dilation, is_causal, scale, backend, deterministic, q_tile=None, kv_tile=None,
      backward_q_tile=None, backward_kv_tile=None):
    output = query.new_empty((*query.shape[:-1], value.shape[-1]))
    lse = query.new_empty(query.shape[:-1], dtype=torch.float32)
    return output, lse


def _no_tensor(like: Tensor) -> Tensor:
    # Ops cannot return None: "no additional KV" has an empty gradient.
    return like.new_empty((0,))


def backward_eager(grad_output, grad_lse, query, key, value, output, lse, additional_keys,
                   additional_values, kernel_size, stride, dilation, is_causal, scale, backend,
                   deterministic, q_tile=None, kv_tile=None):
    """The backward op's body; grad_lse may be None (no gradient flows into
    the LSE). Returns dq, dk, dv and the additional-KV gradients (None
    without additional KV). q_tile/kv_tile force the sm90 backward's tiles
    (NATTEN's backward_q/kv_tile_shape)."""
    grad_query = query.new_empty(query.shape)
    grad_key = key.new_empty(key.shape)
    grad_value = value.new_empty(value.shape)
    has_extra = additional_keys is not None
    grad_xk = additional_keys.new_empty(additional_keys.shape) if has_extra else None
    grad_xv = additional_values.new_empty(additional_values.shape) if has_extra else None
    window = _C.Window(kernel_size, stride, dilation, is_causal, scale)
    device, stream = _runtime(query)
    with device:
        _C.backward(_export(query), _export(key), _export(value), _export(output),
                    _export(lse), _export(grad_output), _export(grad_lse),
                    _export(additional_keys), _export(additional_values),
                    _export(grad_query), _export(grad_key), _export(grad_value),
                    _export(grad_xk), _export(grad_xv), window, backend, stream, deterministic,
                    q_tile, kv_tile)
    return grad_query, grad_key, grad_value, grad_xk, grad_xv


@torch.library.custom_op("gna::na_backward", mutates_args=())
def na_backward(grad_output: Tensor, grad_lse: Tensor, query: Tensor, key: Tensor,
                value: Tensor, output: Tensor, lse: Tensor,
                additional_keys: Optional[Tensor], additional_values: Optional[Tensor],
                kernel_size: List[int], stride: List[int], dilation: List[int],
                is_causal: List[bool], scale: Optional[float],
                backend: str, deterministic: bool, q_tile: Optional[List[int]] = None,
                kv_tile: Optional[List[int]] = None
                ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    dq, dk, dv, dxk, dxv = backward_eager(
        grad_output, grad_lse, query, key, value, output, lse, additional_keys,
        additional_values, kernel_size, stride, dilation, is_causal, scale, backend,
        deterministic, q_tile, kv_tile)
    if additional_keys is None:
        dxk, dxv = _no_tensor(query), _no_tensor(query)
    return dq, dk, dv, dxk, dxv


@na_backward.register_fake
def _(grad_output, grad_lse, query, key, value, output, lse, additional_keys,
      additional_values, kernel_size, stride, dilation, is_causal, scale, backend,
      deterministic, q_tile=None, kv_tile=None):
    has_extra = additional_keys is not None
    return (query.new_empty(query.shape), key.new_empty(key.shape),
            value.new_empty(value.shape),
            additional_keys.new_empty(additional_keys.shape) if has_extra else _no_tensor(query),
            additional_values.new_empty(additional_values.shape) if has_extra
            else _no_tensor(query))


def _remember(ctx, tensors, out, lse, window, deterministic, backward_tiles):
    """What both autograd paths (the custom op, _EagerAutograd) keep."""
    query, key, value, additional_keys, additional_values = tensors
    ctx.save_for_backward(query, key, value, out, lse, additional_keys, additional_values)
    ctx.window = tuple(window)  # kernel_size, stride, dilation, is_causal, scale, backend
    ctx.deterministic = deterministic
    ctx.backward_tiles = tuple(backward_tiles)  # q_tile, kv_tile of the sm90 backward


def _gradients(ctx, grad_output, grad_lse, run):
    """Both autograd paths' backward through `run` (backward_eager's
    arguments): unused outputs may come without a gradient, and
    torch.use_deterministic_algorithms(True) asks for determinism too."""
    query, key, value, out, lse, additional_keys, additional_values = ctx.saved_tensors
    if grad_output is None:
        grad_output = torch.zeros_like(out)
    deterministic = ctx.deterministic or torch.are_deterministic_algorithms_enabled()
    return run(grad_output, grad_lse, query, key, value, out, lse, additional_keys,
               additional_values, *ctx.window, deterministic, *ctx.backward_tiles)


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
    _remember(ctx, inputs[:5], *output, inputs[5:11], inputs[11], inputs[14:16])


def _backward(ctx, grad_output, grad_lse):
    return _gradients(ctx, grad_output, grad_lse, _through_op) + (None,) * 11


na_forward.register_autograd(_backward, setup_context=_setup_context)


class _EagerAutograd(torch.autograd.Function):
    """Eager autograd of the same forward and backward bodies as the custom
    ops, without the op dispatcher; torch.compile uses the ops."""

    @staticmethod
    def forward(ctx, query, key, value, additional_keys, additional_values, kernel_size, stride,
                dilation, is_causal, scale, backend, deterministic, q_tile=None, kv_tile=None,
                backward_q_tile=None, backward_kv_tile=None):
        out, lse = forward_eager(query, key, value, additional_keys, additional_values,
                                 kernel_size, stride, dilation, is_causal, scale, backend,
                                 deterministic, q_tile, kv_tile)
        _remember(ctx, (query, key, value, additional_keys, additional_values), out, lse,
                  (kernel_size, stride, dilation, is_causal, scale, backend), deterministic,
                  (backward_q_tile, backward_kv_tile))
        # An unused LSE then has no gradient (None), rather than zeros to read.
        ctx.set_materialize_grads(False)
        return out, lse

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output, grad_lse):
        return _gradients(ctx, grad_output, grad_lse, backward_eager) + (None,) * 11


from ._torch_dense_ops import attention  # noqa: E402,F401  (registers gna::attention_*)
