"""Context parallelism: one neighborhood attention layer over a token grid
split into slabs along one spatial axis, one slab per rank of a
torch.distributed process group (NCCL on GPUs, gloo on CPUs).

Each rank passes its slab (consecutive slabs in rank order; extents may
differ) and gets back its slab of the output (and LSE), equal to the same
slab of gna.naNd on the whole grid. Only halo keys and values cross the wire.
See docs/distributed.md.
"""
import torch

from . import _check
from ._attention import Sharded, ShardedFunction
from ._layout import layout as halo_layout
from ._slabs import gather, shard, slab_sizes

__all__ = ["na1d", "na2d", "na3d", "neighborhood_attention", "shard", "gather", "slab_sizes",
           "halo_layout"]


@torch.compiler.disable  # collectives inside: torch.compile breaks the graph here
def _attend(rank, query, key, value, kernel_size, stride, dilation, is_causal, scale,
            additional_keys, additional_values, return_lse, group, shard_axis, backend,
            chunks, sizes):
    try:
        call, return_lse = _check.check_local(
            query, key, value, kernel_size, stride, dilation, is_causal, scale,
            additional_keys, additional_values, return_lse, group, shard_axis, backend,
            chunks, sizes, rank)
        error = None
    except (TypeError, ValueError) as e:
        call, error = None, e
    layout = _check.agree(call, error, group)
    sharded = Sharded(call, layout, group)
    tensors = (query, key, value, additional_keys, additional_values)
    if call.grad:
        out, lse = ShardedFunction.apply(sharded, *tensors)
    else:
        out, lse, _ = sharded.forward(*tensors)
    return (out, lse) if return_lse else out


def neighborhood_attention(query, key, value, kernel_size, stride=1, dilation=1,
                           is_causal=False, scale=None, additional_keys=None,
                           additional_values=None, return_lse=False, group=None, shard_axis=0,
                           backend=None, chunks=None, sizes=None):
    """Sharded neighborhood attention of any spatial rank (from query.ndim - 3)."""
    if not isinstance(query, torch.Tensor):
        raise TypeError(f"query must be a torch.Tensor, got {type(query).__name__}")
    rank = query.ndim - 3
    if not 1 <= rank <= 3:
        raise TypeError(f"query.ndim = {query.ndim}: expected 4, 5 or 6 dimensions "
                        "[batch, X0, (X1, (X2)), heads, head_dim]")
    return _attend(rank, query, key, value, kernel_size, stride, dilation, is_causal, scale,
                   additional_keys, additional_values, return_lse, group, shard_axis, backend,
                   chunks, sizes)


def na1d(query, key, value, kernel_size, stride=1, dilation=1, is_causal=False, scale=None,
         additional_keys=None, additional_values=None, return_lse=False, group=None,
         shard_axis=0, backend=None, chunks=None, sizes=None):
    """gna.na1d over a sequence split across the ranks of `group` (default:
    the world). query [batch, X0_slab, heads, head_dim]: this rank's slab.
    Arguments as in gna.na1d, plus: group, shard_axis (0 in 1-D), chunks (kv
    head chunks whose halo transfer overlaps the previous chunk's compute;
    default min(kv_heads, 4)), sizes (every rank's slab extent along
    shard_axis: given, the extents are exchanged on a signature's first call
    only; None, on every call). Every rank must pass the same arguments; only
    the slab extents may differ. Returns this rank's slab of the output (and
    of the LSE with return_lse=True)."""
    return _attend(1, query, key, value, kernel_size, stride, dilation, is_causal, scale,
                   additional_keys, additional_values, return_lse, group, shard_axis, backend,
                   chunks, sizes)


def na2d(query, key, value, kernel_size, stride=1, dilation=1, is_causal=False, scale=None,
         additional_keys=None, additional_values=None, return_lse=False, group=None,
         shard_axis=0, backend=None, chunks=None, sizes=None):
    """gna.na2d over an image split along spatial axis shard_axis (0 or 1);
    everything else as in gna.distributed.na1d."""
    return _attend(2, query, key, value, kernel_size, stride, dilation, is_causal, scale,
                   additional_keys, additional_values, return_lse, group, shard_axis, backend,
                   chunks, sizes)


def na3d(query, key, value, kernel_size, stride=1, dilation=1, is_causal=False, scale=None,
         additional_keys=None, additional_values=None, return_lse=False, group=None,
         shard_axis=0, backend=None, chunks=None, sizes=None):
    """gna.na3d over a video split along spatial axis shard_axis (0, 1 or 2);
    everything else as in gna.distributed.na1d."""
    return _attend(3, query, key, value, kernel_size, stride, dilation, is_causal, scale,
                   additional_keys, additional_values, return_lse, group, shard_axis, backend,
                   chunks, sizes)
