"""The custom ops gna::attention_forward / gna::attention_backward: dense,
cross- and variable-length attention through the C++ core's
attention_forward/backward, with autograd and torch.compile like the
neighborhood ops of _torch_ops."""
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from . import _C
from . import _varlen
from ._torch_ops import _export, _function_apply_of, _is_compiling, _runtime, _unwrap_if_dead


def _offsets(cumulative: Optional[Tensor]) -> Optional[List[int]]:
    # The core's host path reads the offsets on the host: free for CPU
    # tensors, one device-to-host copy (a sync) for CUDA ones on backends
    # other than cuda-generic (_varlen.on_device: no copy; docs/natten.md).
    return None if cumulative is None else cumulative.tolist()


def forward_eager(query, key, value, cumulative_q, cumulative_kv, is_causal, scale, backend,
                  deterministic=False, q_tile=None, kv_tile=None, backward_q_tile=None,
                  backward_kv_tile=None, max_seqlen_q=-1, max_seqlen_kv=-1):
    # Sizes as separate arguments: torch parses them faster than a tuple.
    output = query.new_empty(*query.shape[:-1], value.shape[-1])
    lse = query.new_empty(*query.shape[:-1], dtype=torch.float32)
    device, stream = _runtime(query)
    with device:
        if _varlen.on_device(query, cumulative_q, backend):
            _alive, q_at, kv_at, sequences, status = _varlen.packed_addresses(
                cumulative_q, cumulative_kv, query)
            _C.packed_forward(_export(query), _export(key), _export(value), _export(output),
                              _export(lse), is_causal, scale, q_at, kv_at, sequences,
                              max_seqlen_q, max_seqlen_kv, status, backend, stream)
            return output, lse
        _C.attention_forward(_export(query), _export(key), _export(value), _export(output),
                             _export(lse), is_causal, scale, _offsets(cumulative_q),
                             _offsets(cumulative_kv), backend, stream, q_tile, kv_tile)
    return output, lse


def backward_eager(grad_output, grad_lse, query, key, value, output, lse, cumulative_q,
                   cumulative_kv, is_causal, scale, backend, deterministic, q_tile=None,
                   kv_tile=None):
    # Dense, in the inputs' shapes, as Tensor.new_empty(t.shape) would give.
    grad_query = torch.empty_like(query, memory_format=torch.contiguous_format)
    grad_key = torch.empty_like(key, memory_format=torch.contiguous_format)
    grad_value = torch.empty_like(value, memory_format=torch.contiguous_format)
    device, stream = _runtime(query)
    with device:
        if _varlen.on_device(query, cumulative_q, backend):
            _alive, q_at, kv_at, sequences, status = _varlen.packed_addresses(
                cumulative_q, cumulative_kv, query)
            _C.packed_backward(_export(query), _export(key), _export(value), _export(output),
                               _export(lse), _export(grad_output), _export(grad_lse),
                               _export(grad_query), _export(grad_key), _export(grad_value),
                               is_causal, scale, q_at, kv_at, sequences, status, backend, stream)
            return grad_query, grad_key, grad_value
        _C.attention_backward(_export(query), _export(key), _export(value),
                              _export(output), _export(lse), _export(grad_output),
                              _export(grad_lse), _export(grad_query), _export(grad_key),
                              _export(grad_value), is_causal, scale, _offsets(cumulative_q),
                              _offsets(cumulative_kv), backend, stream, deterministic, q_tile,
                              kv_tile)
    return grad_query, grad_key, grad_value


@torch.library.custom_op("gna::attention_forward", mutates_args=())
def attention_forward(query: Tensor, key: Tensor, value: Tensor,
                      cumulative_q: Optional[Tensor], cumulative_kv: Optional[Tensor],
                      is_causal: bool, scale: Optional[float], backend: str,
                      deterministic: bool, q_tile: Optional[List[int]] = None,
                      kv_tile: Optional[List[int]] = None,
                      backward_q_tile: Optional[List[int]] = None,
                      backward_kv_tile: Optional[List[int]] = None, max_seqlen_q: int = -1,
                      max_seqlen_kv: int = -1) -> Tuple[Tensor, Tensor]:
    return forward_eager(query, key, value, cumulative_q, cumulative_kv, is_causal, scale,
                         backend, deterministic, q_tile, kv_tile, max_seqlen_q=max_seqlen_q,
                         max_seqlen_kv=max_seqlen_kv)


@attention_forward.register_fake
def _(query, key, value, cumulative_q, cumulative_kv, is_causal, scale, backend, deterministic,
      q_tile=None, kv_tile=None, backward_q_tile=None, backward_kv_tile=None, max_seqlen_q=-1,
      max_seqlen_kv=-1):
    return (query.new_empty((*query.shape[:-1], value.shape[-1])),
            query.new_empty(query.shape[:-1], dtype=torch.float32))


@torch.library.custom_op("gna::attention_backward", mutates_args=())
def attention_backward(grad_output: Tensor, grad_lse: Tensor, query: Tensor, key: Tensor,
                       value: Tensor, output: Tensor, lse: Tensor,
                       cumulative_q: Optional[Tensor], cumulative_kv: Optional[Tensor],
                       is_causal: bool, scale: Optional[float], backend: str,
                       deterministic: bool, q_tile: Optional[List[int]] = None,
                       kv_tile: Optional[List[int]] = None) -> Tuple[Tensor, Tensor, Tensor]:
    return backward_eager(grad_output, grad_lse, query, key, value, output, lse, cumulative_q,
                          cumulative_kv, is_causal, scale, backend, deterministic, q_tile,
                          kv_tile)


@attention_backward.register_fake
def _(grad_output, grad_lse, query, key, value, output, lse, cumulative_q, cumulative_kv,
      is_causal, scale, backend, deterministic, q_tile=None, kv_tile=None):
    return query.new_empty(query.shape), key.new_empty(key.shape), value.new_empty(value.shape)


def _remember(ctx, query, key, value, cumulative_q, cumulative_kv, out, lse, knobs):
    ctx.save_for_backward(query, key, value, out, lse, cumulative_q, cumulative_kv)
    ctx.knobs = knobs  # is_causal, scale, backend, deterministic, backward tiles (2)


def _gradients(ctx, grad_output, grad_lse, run, needs_lse_gradient):
    query, key, value, out, lse, cumulative_q, cumulative_kv = ctx.saved_tensors
    if grad_output is None:
        grad_output = torch.zeros_like(out)
    if grad_lse is None and needs_lse_gradient:
        grad_lse = torch.zeros_like(lse)
    is_causal, scale, backend, deterministic, q_tile, kv_tile = ctx.knobs
    deterministic = deterministic or torch.are_deterministic_algorithms_enabled()
    return run(grad_output, grad_lse, query, key, value, out, lse, cumulative_q, cumulative_kv,
               is_causal, scale, backend, deterministic, q_tile, kv_tile)


def _setup_context(ctx, inputs, output):
    _remember(ctx, *inputs[:5], *output, (*inputs[5:9], *inputs[11:13]))


def _backward(ctx, grad_output, grad_lse):
    dq, dk, dv = _gradients(ctx, grad_output, grad_lse, torch.ops.gna.attention_backward, True)
    return (dq, dk, dv) + (None,) * 12


attention_forward.register_autograd(_backward, setup_context=_setup_context)


class _EagerAutograd(torch.autograd.Function):
    """Eager autograd without the op dispatcher (as in _torch_ops)."""

    @staticmethod
    def forward(ctx, query, key, value, cumulative_q, cumulative_kv, is_causal, scale, backend,
                deterministic, q_tile, kv_tile, backward_q_tile, backward_kv_tile,
                max_seqlen_q=-1, max_seqlen_kv=-1):
        out, lse = forward_eager(query, key, value, cumulative_q, cumulative_kv, is_causal,
                                 scale, backend, deterministic, q_tile, kv_tile,
                                 max_seqlen_q=max_seqlen_q, max_seqlen_kv=max_seqlen_kv)
        _remember(ctx, query, key, value, cumulative_q, cumulative_kv, out, lse,
                  (is_causal, scale, backend, deterministic, backward_q_tile, backward_kv_tile))
        ctx.set_materialize_grads(False)
        return out, lse

    @staticmethod
    def backward(ctx, grad_output, grad_lse):
        # once_differentiable's guard only under create_graph (_torch_ops).
        if torch.is_grad_enabled():
            return _once_differentiable_gradients(ctx, grad_output, grad_lse)
        return _eager_gradients(ctx, grad_output, grad_lse)


def _eager_gradients(ctx, grad_output, grad_lse):
    return _gradients(ctx, grad_output, grad_lse, backward_eager, False) + (None,) * 12


_once_differentiable_gradients = torch.autograd.function.once_differentiable(_eager_gradients)
_apply = _function_apply_of(_EagerAutograd)


def _eager_autograd(query, key, value, cumulative_q, cumulative_kv, *knobs):
    """_EagerAutograd.apply through Function.apply's C++ part (_torch_ops)."""
    if _functorch_active():
        return _EagerAutograd.apply(query, key, value, cumulative_q, cumulative_kv, *knobs)
    offsets = [None if c is None else _unwrap_if_dead(c) for c in (cumulative_q, cumulative_kv)]
    return _apply(_unwrap_if_dead(query), _unwrap_if_dead(key), _unwrap_if_dead(value), *offsets,
                  *knobs)


_functorch_active = torch._C._are_functorch_transforms_active


def _forward_for(query, key, value):
    if _is_compiling():
        return torch.ops.gna.attention_forward
    if torch.is_grad_enabled() and (query.requires_grad or key.requires_grad
                                    or value.requires_grad):
        return _eager_autograd
    return forward_eager


def _pieces_needed(query, key, value, cumulative_q, cumulative_kv, backend):
    """(needed, host offsets): whether a CUDA call must run as pieces for its
    backward, some sequence having more queries than keys (its key gradients
    add up over query pieces, which the core's host path does on the host
    only). Packed offsets are read to the host once here and handed on, as
    lists; never for the packed kernels, whose backward needs no pieces."""
    if query.device.type != "cuda" or _is_compiling() or not torch.is_grad_enabled():
        return False, None
    if _varlen.on_device(query, cumulative_q, backend):
        return False, None
    if not any(t.requires_grad for t in (query, key, value)):
        return False, None
    if cumulative_q is None:
        return 0 < key.shape[1] < query.shape[1], None
    offsets = (cumulative_q.tolist(), cumulative_kv.tolist())
    cq, ck = offsets
    return any(0 < k1 - k0 < q1 - q0 for q0, q1, k0, k1 in zip(cq, cq[1:], ck, ck[1:])), offsets


def attention_in_pieces(run, query, key, value, offsets, call):
    """attention() as calls of `run` that each have at most as many queries
    as keys, so that autograd adds the pieces' key gradients: one call per
    query piece of at most Lk, and per sequence first when packed (offsets:
    the host lists of cumulative_seqlen_Q/KV, or None)."""
    if offsets is None:
        parts = [run(q, key, value, None, None, *call)
                 for q in query.split(max(key.shape[1], 1), dim=1)]
    else:
        cq, ck = offsets
        parts = []
        for q0, q1, k0, k1 in zip(cq, cq[1:], ck, ck[1:]):
            if q1 > q0:
                parts.append(attention_in_pieces(run, query[:, q0:q1], key[:, k0:k1],
                                                 value[:, k0:k1], None, call))
    return torch.cat([o for o, _ in parts], dim=1), torch.cat([s for _, s in parts], dim=1)


def attention(query, key, value, cumulative_q, cumulative_kv, is_causal, scale, backend,
              deterministic, q_tile, kv_tile, backward_q_tile, backward_kv_tile,
              max_seqlen_q=-1, max_seqlen_kv=-1):
    """The forward for attention(); on CUDA, as pieces where the backward
    needs them (_pieces_needed). max_seqlen_*: checked by the packed kernels
    (-1: not given)."""
    run = _forward_for(query, key, value)
    call = (is_causal, scale, backend, deterministic, q_tile, kv_tile, backward_q_tile,
            backward_kv_tile)
    needed, offsets = _pieces_needed(query, key, value, cumulative_q, cumulative_kv, backend)
    if not needed:
        if _varlen.on_device(query, cumulative_q, backend):
            return run(query, key, value, cumulative_q, cumulative_kv, *call, max_seqlen_q,
                       max_seqlen_kv)
        return run(query, key, value, cumulative_q, cumulative_kv, *call)
    return attention_in_pieces(run, query, key, value, offsets, call)
