"""The torch.library custom ops gna::na_forward and gna::na_backward.

Both are functional (they allocate what they return), so torch.compile
treats them as opaque graph nodes: the fake implementations give it shapes,
register_autograd ties the backward op to the forward one. Only APIs present
since torch 2.4 are used.
"""
import contextlib
import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from . import _C
from . import _arguments as args
from ._outputs import CHECK_FIRST_ELEMENTS


# The raw C calls behind torch.cuda.current_stream(i).cuda_stream and
# torch.cuda.current_device(): no Stream object, no Python wrapper. Absent
# from CPU-only torch builds, which have no CUDA tensors to ask about.
_current_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)
_current_device = getattr(torch._C, "_cuda_getDevice", None)


def _stream(index: int) -> int:
    if _current_raw_stream is not None:
        return _current_raw_stream(index)
    return torch.cuda.current_stream(index).cuda_stream


def _runtime(t: Tensor):
    """Device context and stream handle for a call of the C++ core on t's
    device: no device switch when t's device is current."""
    if not t.is_cuda:
        return contextlib.nullcontext(), 0
    index = t.get_device()
    switch = index != _current_device()
    return (torch.cuda.device(index) if switch else contextlib.nullcontext()), _stream(index)


_to_dlpack = torch._C._to_dlpack


def _export(t: Optional[Tensor]):
    """A DLPack capsule of t for the C++ core, or None. The capsule keeps
    the tensor's memory alive. Torch's C exporter skips Tensor.__dlpack__'s
    Python checks (microseconds per tensor, and a backward passes 14); what
    they guard is settled here: the negative bit is resolved (a capsule
    cannot carry it, so the data would be read without it), requires_grad
    does not matter to a reader, and the conjugate bit only exists on
    complex tensors, which the core refuses by their dtype either way.
    Tensors gna allocated itself have no bit to resolve and go to
    _to_dlpack directly."""
    if t is None:
        return None
    if t.is_neg():
        t = t.resolve_neg()
    return _to_dlpack(t)


class Plan:
    """What a call of the C++ core takes besides tensors: the window, the
    backend's name, determinism (of the backward) and the sm90 tiles forced
    for the forward and for the backward (lists or None). The window is the
    tuple (kernel_size, stride, dilation, is_causal, scale) that _C takes in
    place of a _C.Window: autograd graphs keep their Plan, and a _C object
    in a graph alive at exit would read as leaked to nanobind. Never
    changed once made, so calls with the same arguments share one
    (plan_for)."""
    __slots__ = ("window", "backend", "deterministic", "q_tile", "kv_tile", "backward_q_tile",
                 "backward_kv_tile")

    def __init__(self, window, backend, deterministic, q_tile=None, kv_tile=None,
                 backward_q_tile=None, backward_kv_tile=None):
        self.window, self.backend, self.deterministic = window, backend, deterministic
        self.q_tile, self.kv_tile = q_tile, kv_tile
        self.backward_q_tile, self.backward_kv_tile = backward_q_tile, backward_kv_tile


_PLANS = {}
_MAX_PLANS = 256  # distinct windows of a process; past that the cache starts over


def plan_for(rank, kernel_size, stride, dilation, is_causal, scale, backend, deterministic):
    """The shared Plan of a call whose window arguments, scale and backend
    all have their common exact types (args.exact_per_axis; a float or None
    scale; a str or None backend), or None: the caller then takes the
    checked path, which raises what the arguments break. The values
    themselves (window sizes against the input, the backend's rules) are
    the core's to check, on every call."""
    kernel_size = args.exact_per_axis(kernel_size, rank)
    stride = args.exact_per_axis(stride, rank, 1)
    dilation = args.exact_per_axis(dilation, rank, 1)
    is_causal = args.exact_per_axis(is_causal, rank, False)
    if kernel_size is None or stride is None or dilation is None or is_causal is None:
        return None
    if scale is not None:
        if type(scale) is not float:
            return None
        scale = scale or None  # 0 means the default (args.optional_scale)
    if backend is not None and type(backend) is not str:
        return None
    backend = args.NEIGHBORHOOD_BACKENDS.get(backend)
    if backend is None:
        return None
    key = (kernel_size, stride, dilation, is_causal, scale, backend, deterministic)
    plan = _PLANS.get(key)
    if plan is None:
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        plan = _PLANS[key] = Plan((kernel_size, stride, dilation, is_causal, scale), backend,
                                  deterministic)
    return plan


_empty_like = torch.empty_like
_contiguous = torch.contiguous_format
_float32 = torch.float32


def _run_forward(query, key, value, additional_keys, additional_values, plan, with_lse=True):
    """The forward's body: (output, lse) of the C++ core's forward; lse None
    when with_lse is False (the core then skips it)."""
    head_dim_v = value.shape[-1]
    same_dims = head_dim_v == query.shape[-1]
    # The output has query's shape but for its last dimension (head_dim_v).
    elements = query.numel() if same_dims else math.prod(query.shape[:-1]) * head_dim_v
    if elements >= CHECK_FIRST_ELEMENTS:
        _C.check_forward(_export(query), _export(key), _export(value), _export(additional_keys),
                         _export(additional_values), plan.window, plan.backend)
    try:
        # Sizes as separate arguments: torch parses them faster than a tuple.
        if same_dims:
            output = _empty_like(query, memory_format=_contiguous)
        else:
            output = query.new_empty(*query.shape[:-1], head_dim_v)
        lse = query.new_empty(*query.shape[:-1], dtype=_float32) if with_lse else None
    except (MemoryError, RuntimeError):  # torch.OutOfMemoryError is a RuntimeError
        # The rule the inputs break, if any, rather than the allocation's failure.
        _C.check_forward(_export(query), _export(key), _export(value), _export(additional_keys),
                         _export(additional_values), plan.window, plan.backend)
        raise
    device, stream = _runtime(query)
    with device:
        _C.forward(_export(query), _export(key), _export(value), _to_dlpack(output),
                   None if lse is None else _to_dlpack(lse), _export(additional_keys),
                   _export(additional_values), plan.window, plan.backend, stream, plan.q_tile,
                   plan.kv_tile)
    return output, lse


def _run_backward(grad_output, grad_lse, query, key, value, output, lse, additional_keys,
                  additional_values, plan, deterministic):
    """The backward's body: the gradients of query, key, value and the
    additional KV (None without it); grad_lse may be None (no gradient
    flows into the LSE)."""
    # Dense, in the inputs' shapes, as Tensor.new_empty(t.shape) would give.
    grad_query = _empty_like(query, memory_format=_contiguous)
    grad_key = _empty_like(key, memory_format=_contiguous)
    grad_value = _empty_like(value, memory_format=_contiguous)
    if additional_keys is None:
        grad_xk = grad_xv = None
    else:
        grad_xk = _empty_like(additional_keys, memory_format=_contiguous)
        grad_xv = _empty_like(additional_values, memory_format=_contiguous)
    device, stream = _runtime(query)
    with device:
        # output and lse as passed: the op gna::na_backward takes them from its caller.
        _C.backward(_export(query), _export(key), _export(value), _export(output),
                    _export(lse), _export(grad_output), _export(grad_lse),
                    _export(additional_keys), _export(additional_values),
                    _to_dlpack(grad_query), _to_dlpack(grad_key), _to_dlpack(grad_value),
                    None if grad_xk is None else _to_dlpack(grad_xk),
                    None if grad_xv is None else _to_dlpack(grad_xv), plan.window, plan.backend,
                    stream, deterministic, plan.backward_q_tile, plan.backward_kv_tile)
    return grad_query, grad_key, grad_value, grad_xk, grad_xv


def forward_eager(query, key, value, additional_keys, additional_values, kernel_size,
                  stride, dilation, is_causal, scale, backend, deterministic=False,
                  q_tile=None, kv_tile=None, backward_q_tile=None, backward_kv_tile=None):
    """The forward op's body, by the op's arguments. `deterministic` and
    the backward tiles only travel to the backward. q_tile/kv_tile force
    the sm90 forward's tiles (NATTEN's tile shapes)."""
    plan = Plan((kernel_size, stride, dilation, is_causal, scale), backend,
                deterministic, q_tile, kv_tile)
    return _run_forward(query, key, value, additional_keys, additional_values, plan)


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
    """The forward to call, by the op's arguments: the custom op while
    torch.compile traces, the light autograd.Function when eager autograd
    records the call (the custom op's dispatch costs ~0.2 ms of host time
    per call, which a training step of a small problem would wait for), the
    op's body otherwise."""
    # Meta tensors (shapes without memory) have no DLPack export: the op's
    # fake implementation answers them, as it does for torch.compile.
    if _is_compiling() or any(t is not None and t.device.type == "meta" for t in tensors):
        return torch.ops.gna.na_forward
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return _eager_autograd
    return forward_eager


_float_dtypes = frozenset((torch.float16, torch.bfloat16, torch.float32, torch.float64))
_strided = torch.strided


def attend(rank, query, key, value, kernel_size, stride, dilation, is_causal, scale, backend,
           deterministic, with_lse):
    """na1d/2d/3d's eager call without additional KV or tuning knobs, when
    every argument has its common exact type: (output, lse), lse None
    unless with_lse or autograd records the call. None when some argument
    is not of those types, or while torch.compile traces (whose caller
    checks first): the checked path (args.check_tensors, per_axis, ...)
    then runs, and raises what the arguments break. What is left to check
    here is what args.check_tensors would: plain torch tensors of one float
    dtype, rank + 3 dimensions, dense, on one CPU or CUDA device. The
    core checks the values (shapes, window sizes, backend) on every call."""
    if type(query) is not Tensor or type(key) is not Tensor or type(value) is not Tensor:
        return None
    dtype = query.dtype
    if dtype not in _float_dtypes or key.dtype is not dtype or value.dtype is not dtype:
        return None
    ndim = rank + 3
    if query.ndim != ndim or key.ndim != ndim or value.ndim != ndim:
        return None
    if (query.layout is not _strided or key.layout is not _strided
            or value.layout is not _strided or query.is_nested or key.is_nested
            or value.is_nested):
        return None
    if query.is_cuda:
        index = query.get_device()
        if (not key.is_cuda or not value.is_cuda or key.get_device() != index
                or value.get_device() != index):
            return None
    elif not (query.is_cpu and key.is_cpu and value.is_cpu):
        return None  # meta tensors (the op's fake implementation), other devices
    plan = plan_for(rank, kernel_size, stride, dilation, is_causal, scale, backend,
                    deterministic)
    if plan is None:
        return None
    if torch.is_grad_enabled() and (query.requires_grad or key.requires_grad
                                    or value.requires_grad):
        return _autograd(query, key, value, None, None, plan)
    return _run_forward(query, key, value, None, None, plan, with_lse)


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
    """The backward op's body, by the op's arguments; grad_lse may be None
    (no gradient flows into the LSE). Returns dq, dk, dv and the
    additional-KV gradients (None without additional KV). q_tile/kv_tile
    force the sm90 backward's tiles (NATTEN's backward_q/kv_tile_shape)."""
    plan = Plan((kernel_size, stride, dilation, is_causal, scale), backend,
                deterministic, backward_q_tile=q_tile, backward_kv_tile=kv_tile)
    return _run_backward(grad_output, grad_lse, query, key, value, output, lse, additional_keys,
                         additional_values, plan, deterministic)


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


def _eager_gradients(ctx, grad_output, grad_lse):
    query, key, value, out, lse, additional_keys, additional_values = ctx.saved_tensors
    if grad_output is None:
        grad_output = torch.zeros_like(out)
    plan = ctx.plan
    deterministic = plan.deterministic or torch.are_deterministic_algorithms_enabled()
    return _run_backward(grad_output, grad_lse, query, key, value, out, lse, additional_keys,
                         additional_values, plan, deterministic) + (None,)


class _EagerAutograd(torch.autograd.Function):
    """Eager autograd of the same forward and backward bodies as the custom
    ops, without the op dispatcher; torch.compile uses the ops. The
    arguments are the tensors and a Plan."""

    @staticmethod
    def forward(ctx, query, key, value, additional_keys, additional_values, plan):
        out, lse = _run_forward(query, key, value, additional_keys, additional_values, plan)
        ctx.save_for_backward(query, key, value, out, lse, additional_keys, additional_values)
        ctx.plan = plan
        # An unused LSE then has no gradient (None), rather than zeros to read.
        ctx.set_materialize_grads(False)
        return out, lse

    @staticmethod
    def backward(ctx, grad_output, grad_lse):
        # Grad mode is off in a backward unless it builds a graph of its own
        # (create_graph=True): only then is once_differentiable's guard
        # against a second differentiation needed, and its cost paid.
        if torch.is_grad_enabled():
            return _once_differentiable_gradients(ctx, grad_output, grad_lse)
        return _eager_gradients(ctx, grad_output, grad_lse)


_once_differentiable_gradients = torch.autograd.function.once_differentiable(_eager_gradients)


def _function_apply_of(function):
    """Function.apply's C++ part for `function`: Function.apply adds, in
    Python, default-argument binding for setup_context (gna's Functions
    have none), the functorch dispatch (callers take Function.apply
    whenever a transform is active) and the unwrapping of dead functorch
    wrappers (callers unwrap their tensors)."""
    return super(torch.autograd.Function, function).apply


_function_apply = _function_apply_of(_EagerAutograd)
_functorch_active = torch._C._are_functorch_transforms_active
_unwrap_if_dead = torch._C._functorch.unwrap_if_dead


def _autograd(query, key, value, additional_keys, additional_values, plan):
    if _functorch_active():
        return _EagerAutograd.apply(query, key, value, additional_keys, additional_values, plan)
    if additional_keys is not None:
        additional_keys = _unwrap_if_dead(additional_keys)
    if additional_values is not None:
        additional_values = _unwrap_if_dead(additional_values)
    return _function_apply(_unwrap_if_dead(query), _unwrap_if_dead(key), _unwrap_if_dead(value),
                           additional_keys, additional_values, plan)


def _eager_autograd(query, key, value, additional_keys, additional_values, kernel_size, stride,
                    dilation, is_causal, scale, backend, deterministic, q_tile=None,
                    kv_tile=None, backward_q_tile=None, backward_kv_tile=None):
    """_EagerAutograd by the op's arguments."""
    plan = Plan((kernel_size, stride, dilation, is_causal, scale), backend,
                deterministic, q_tile, kv_tile, backward_q_tile, backward_kv_tile)
    return _autograd(query, key, value, additional_keys, additional_values, plan)


from ._torch_dense_ops import attention  # noqa: E402,F401  (registers gna::attention_*)
