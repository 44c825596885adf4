"""Splitting a whole grid into slabs and gathering slabs back."""
import torch
import torch.distributed as dist

from .. import _arguments as args
from . import _check


def slab_sizes(length, parts):
    """Extents of `parts` consecutive slabs of an axis of `length` tokens, as
    even as can be (the first length % parts slabs get one more)."""
    for name, v, least in (("length", length, 0), ("parts", parts, 1)):
        if not args._is_int(v) or v < least:
            raise ValueError(f"{name} = {v!r}: expected an int >= {least}")
    return [length // parts + (r < length % parts) for r in range(parts)]


def _dim(t, shard_axis, name):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not args._is_int(shard_axis) or not 0 <= shard_axis <= t.ndim - 3:
        raise ValueError(f"shard_axis = {shard_axis!r}: expected an int in [0, {t.ndim - 3}] "
                         f"for a {name} of {t.ndim} dimensions [batch, *spatial, heads, ...]")
    return 1 + shard_axis


def shard(full, shard_axis=0, sizes=None, group=None):
    """This rank's slab (a view) of a whole-grid tensor [batch, *spatial, ...]
    that every rank holds: slab r has sizes[r] tokens along shard_axis
    (default slab_sizes(extent, world size)). Works for query, key, value,
    output and LSE alike."""
    dim = _dim(full, shard_axis, "full")
    world, me = dist.get_world_size(group), dist.get_rank(group)
    sizes = slab_sizes(full.shape[dim], world) if sizes is None else list(sizes)
    if len(sizes) != world or sum(sizes) != full.shape[dim] or min(sizes) < 0:
        raise ValueError(f"sizes = {sizes}: expected {world} extents >= 0 (one per rank) "
                         f"adding up to full.shape[{dim}] = {full.shape[dim]}")
    return full.narrow(dim, sum(sizes[:me]), sizes[me])


def gather(slab, shard_axis=0, group=None):
    """The whole grid on every rank from each rank's slab (extents may
    differ; the other dimensions must agree). Not differentiable."""
    dim = _dim(slab, shard_axis, "slab")
    world = dist.get_world_size(group)
    device = _check.descriptor_device(group)
    shape = torch.tensor(list(slab.shape), dtype=torch.int64, device=device)
    shapes = [torch.empty_like(shape) for _ in range(world)]
    dist.all_gather(shapes, shape, group=group)
    shapes = [s.tolist() for s in shapes]
    for r, s in enumerate(shapes):
        other = [v for i, v in enumerate(s) if i != dim]
        mine = [v for i, v in enumerate(shapes[dist.get_rank(group)]) if i != dim]
        if other != mine:
            raise ValueError(f"slab.shape = {tuple(slab.shape)} here but {tuple(s)} on rank "
                             f"{r}: slabs may differ only along shard_axis")
    widest = max(s[dim] for s in shapes)
    wide = list(slab.shape)
    wide[dim] = widest
    mine = slab.new_zeros(wide)
    mine.narrow(dim, 0, slab.shape[dim]).copy_(slab.detach())
    padded = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(padded, mine, group=group)
    return torch.cat([p.narrow(dim, 0, s[dim]) for p, s in zip(padded, shapes)], dim)
