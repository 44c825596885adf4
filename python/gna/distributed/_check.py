"""Argument checks of gna.distributed: first what one rank can see alone,
then, through one all-gather of a small descriptor, that every rank passes
the same parameters and shapes (only the extent along the shard axis may
differ). The result is cached per call signature, so a later call with the
same signature exchanges nothing."""
import dataclasses
import struct
import zlib
from typing import Optional, Tuple

import torch
import torch.distributed as dist

from .. import _C
from .. import _arguments as args
from . import _layout

_CODES = {"float16": 1, "bfloat16": 2, "float32": 3, "float64": 4}
_NAMES = {torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32",
          torch.float64: "float64"}


@dataclasses.dataclass(frozen=True)
class Call:
    """One rank's arguments after the local checks."""
    rank: int                 # spatial rank 1..3
    shard_axis: int
    shape: Tuple[int, ...]    # query.shape
    kv_heads: int
    head_dim_v: int
    extra: int                # additional KV tokens, -1 without
    window: tuple             # kernel_size, stride, dilation, is_causal (lists), scale
    backend: str
    chunks: int
    grad: bool                # an input requires grad (the backward will run)
    dtype: str                # float16, bfloat16, float32 or float64
    device: str               # cpu or cuda
    sizes: Optional[Tuple[int, ...]]  # every rank's slab extent, when the caller gave them

    def axis(self):
        kernel, stride, dilation, causal, _ = self.window
        a = self.shard_axis
        return kernel[a], stride[a], dilation[a], causal[a]


def _fields(call: Call):
    """(argument name, value) pairs every rank must agree on, in a fixed order;
    the shard axis extent comes last (it may differ)."""
    kernel, stride, dilation, causal, scale = call.window
    shape = list(call.shape)
    sharded = shape[1 + call.shard_axis]
    fields = [("spatial rank of query", call.rank), ("shard_axis", call.shard_axis),
              ("query.shape[0] (batch)", shape[0])]
    for a in range(call.rank):
        if a != call.shard_axis:
            fields.append((f"query.shape[{1 + a}] (spatial extent off the shard axis)",
                           shape[1 + a]))
    fields += [("query.shape[-2] (heads)", shape[-2]), ("query.shape[-1] (head_dim)", shape[-1]),
               ("key.shape[-2] (kv_heads)", call.kv_heads),
               ("value.shape[-1] (head_dim_v)", call.head_dim_v),
               ("additional_keys.shape[1] (tokens; -1: none)", call.extra),
               ("query.dtype (1 f16, 2 bf16, 3 f32, 4 f64)", _CODES[call.dtype]),
               ("query.device (0 cpu, 1 cuda)", int(call.device == "cuda"))]
    for name, values in (("kernel_size", kernel), ("stride", stride), ("dilation", dilation),
                         ("is_causal", causal)):
        fields += [(f"{name}[{a}]", int(v)) for a, v in enumerate(values)]
    bits = -1 if scale is None else struct.unpack("<q", struct.pack("<d", scale))[0]
    fields += [("scale (float64 bits; -1: default)", bits),
               ("backend (crc32 of the name)", zlib.crc32(call.backend.encode())),
               ("chunks", call.chunks), ("requires_grad of the inputs", int(call.grad)),
               ("sizes (crc32; -1: not given)",
                -1 if call.sizes is None else zlib.crc32(str(list(call.sizes)).encode()))]
    return fields, sharded


_WIDTH = 40  # int64 entries of the descriptor: 3 + at most 29 fields (3-D)


def descriptor_device(group):
    # A group with a gloo part (backend "cpu:gloo,cuda:nccl") keeps the
    # exchange on the host; a pure NCCL group needs a device tensor.
    if "gloo" not in str(dist.get_backend(group)):
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _gather(group, row):
    world = dist.get_world_size(group)
    local = torch.tensor(row, dtype=torch.int64, device=descriptor_device(group))
    rows = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(rows, local, group=group)
    return [r.tolist() for r in rows]


_CACHED = 1024  # signatures remembered
_checked = {}   # (group, call) -> layout, for calls that pass sizes
_layouts = {}   # (call without the slab extent, sizes) -> layout


def agree(call: Optional[Call], error: Optional[Exception], group) -> _layout.Layout:
    """The layout of the sharded axis, once every rank is known to pass the
    same arguments. A rank whose own checks failed (`error`) raises it; the
    others raise an error naming that rank, so no rank waits forever.

    With call.sizes (every rank's extent, passed by the caller) the call
    alone fixes the layout: the exchange runs on its first occurrence only.
    Without, the extents are exchanged on every call (a few bytes), since
    another rank's slab may change while this one's does not."""
    key = None if call is None or call.sizes is None else (id(group), call)
    if key in _checked:
        return _checked[key]
    fields, sharded = _fields(call) if call is not None else ([], 0)
    # Ranks with a broken call send a short row; all rows have one length.
    row = [1 if call is not None else 0, len(fields), sharded] + [v for _, v in fields]
    rows = _gather(group, row + [0] * (_WIDTH - len(row)))
    if error is not None:
        raise error
    failed = [r for r, other in enumerate(rows) if other[0] != 1]
    if failed:
        raise ValueError(f"gna.distributed: rank(s) {failed} rejected their arguments (see "
                         "the error raised there); every rank must pass valid arguments")
    me = dist.get_rank(group)
    for r, other in enumerate(rows):
        for i, (name, value) in enumerate(fields):
            if other[3 + i] != value:
                raise ValueError(
                    f"gna.distributed: ranks disagree on {name}: rank {me} passes {value}, "
                    f"rank {r} passes {other[3 + i]}; every rank must pass the same "
                    "parameters and shapes (only the extent along shard_axis may differ)")
    sizes = tuple(other[2] for other in rows)
    if call.sizes is not None and sizes != call.sizes:
        raise ValueError(f"sizes = {list(call.sizes)}: the ranks' slabs have {list(sizes)} "
                         "tokens along shard_axis")
    whole = (dataclasses.replace(call, shape=call.shape[:1 + call.shard_axis]
                                 + (-1,) + call.shape[2 + call.shard_axis:]), sizes)
    if whole not in _layouts:
        if len(_layouts) > _CACHED:  # varying shapes: keep the memory bounded
            _layouts.clear()
            _checked.clear()
        _validate_whole(call, sum(sizes))
        _layouts[whole] = _layout.layout(list(sizes), call.axis())
    result = _layouts[whole]
    if key is not None:
        _checked[key] = result
    return result


def _validate_whole(call: Call, length):
    """The whole grid must be a valid problem: every rank sees the same
    verdict, before anything is sent."""
    kernel, stride, dilation, causal, _ = call.window
    spec = _C.ProblemSpec()
    shape = list(call.shape[1:1 + call.rank])
    shape[call.shard_axis] = length
    spec.shape = shape
    spec.axes = list(zip(kernel, stride, dilation, causal))
    spec.batch, spec.heads = call.shape[0], call.shape[-2]
    spec.kv_heads, spec.head_dim, spec.head_dim_v = call.kv_heads, call.shape[-1], call.head_dim_v
    spec.extra_kv = max(call.extra, 0)
    spec.dtype = call.dtype
    try:
        _C.validate(spec)
    except ValueError as e:
        raise ValueError(f"gna.distributed: the whole grid (shard axis {call.shard_axis} "
                         f"of {length} tokens): {e}") from None
    if call.backend != "auto":
        # An unsupported backend must fail here, on every rank, not after sending.
        index = torch.cuda.current_device() if call.device == "cuda" else 0
        reasons = dict(_C.backends(spec, call.grad, call.device, index))
        if call.backend not in reasons:
            raise ValueError(f"backend = {call.backend!r}: not compiled into this build; "
                             f"expected one of {sorted(reasons)}")
        if reasons[call.backend]:
            raise ValueError(f"backend = {call.backend!r}: {reasons[call.backend]}")


def check_local(query, key, value, kernel_size, stride, dilation, is_causal, scale,
                additional_keys, additional_values, return_lse, group, shard_axis, backend,
                chunks, sizes, rank):
    """Everything one rank can check alone; returns (Call, return_lse)."""
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("gna.distributed needs an initialized torch.distributed process "
                           "group (torch.distributed.init_process_group)")
    tensors = {"query": query, "key": key, "value": value, "additional_keys": additional_keys,
               "additional_values": additional_values}
    if args.check_tensors(tensors, rank) != "torch":
        raise TypeError("gna.distributed works on torch tensors, got numpy arrays")
    if (additional_keys is None) != (additional_values is None):
        raise ValueError("additional_keys and additional_values: pass both or neither")
    for name, t in tensors.items():
        if t is not None and t.dtype != query.dtype:
            raise TypeError(f"{name}.dtype = {t.dtype}: expected {query.dtype} (query.dtype)")
    if query.dtype not in _NAMES:
        raise TypeError(f"query.dtype = {query.dtype}: expected float16, bfloat16, float32 "
                        "or float64")
    grid = tuple(query.shape[:-2])
    for name, t, want in (("key", key, grid), ("value", value, grid)):
        if tuple(t.shape[:-2]) != want:
            raise ValueError(f"{name}.shape = {tuple(t.shape)}: batch and spatial extents "
                             f"must be those of query {grid}")
    if value.shape[-2] != key.shape[-2]:
        raise ValueError(f"value.shape[-2] = {value.shape[-2]}: expected key's kv_heads "
                         f"{key.shape[-2]}")
    if additional_keys is not None:
        for name, t, dim in (("additional_keys", additional_keys, key.shape[-1]),
                             ("additional_values", additional_values, value.shape[-1])):
            want = (query.shape[0], additional_keys.shape[1], key.shape[-2], dim)
            if tuple(t.shape) != want:
                raise ValueError(f"{name}.shape = {tuple(t.shape)}: expected {want} "
                                 "[batch, tokens, kv_heads, head_dim(_v)]")
    if not args._is_int(shard_axis) or not 0 <= shard_axis < rank:
        raise ValueError(f"shard_axis = {shard_axis!r}: expected an int in [0, {rank})")
    if group is not None and not isinstance(group, dist.ProcessGroup):
        raise TypeError(f"group = {group!r}: expected a torch.distributed.ProcessGroup or None")
    kv_heads = int(key.shape[-2])
    if chunks is None:
        chunks = min(kv_heads, 4)
    if not args._is_int(chunks) or not 1 <= chunks <= max(kv_heads, 1):
        raise ValueError(f"chunks = {chunks!r}: expected an int in [1, kv_heads = {kv_heads}]")
    window = (args.per_axis(kernel_size, rank, "kernel_size"),
              args.per_axis(stride, rank, "stride"),
              args.per_axis(dilation, rank, "dilation"),
              args.per_axis(is_causal, rank, "is_causal", is_flag=True),
              args.optional_scale(scale))
    window = tuple(tuple(w) if isinstance(w, list) else w for w in window)
    grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                           for t in tensors.values())
    shape = tuple(int(n) for n in query.shape)
    call = Call(rank, int(shard_axis), shape, kv_heads, int(value.shape[-1]),
                -1 if additional_keys is None else int(additional_keys.shape[1]), window,
                args.backend_name(backend), int(chunks), grad, _NAMES[query.dtype],
                query.device.type, _sizes(sizes, group, shape[1 + shard_axis]))
    return call, args.flag(return_lse, "return_lse")


def _sizes(sizes, group, mine):
    if sizes is None:
        return None
    world = dist.get_world_size(group)
    if (not isinstance(sizes, (list, tuple)) or len(sizes) != world
            or not all(args._is_int(n) and n >= 0 for n in sizes)):
        raise ValueError(f"sizes = {sizes!r}: expected {world} ints >= 0, the slab extent "
                         "of every rank along shard_axis, or None")
    me = dist.get_rank(group)
    if sizes[me] != mine:
        raise ValueError(f"sizes = {list(sizes)}: sizes[{me}] = {sizes[me]} but this rank's "
                         f"query has {mine} tokens along shard_axis")
    return tuple(int(n) for n in sizes)
