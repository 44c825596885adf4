"""Neighborhood attention layers taking [batch, *spatial, embed_dim] (NATTEN's
module interface): qkv projection, attention, output projection, dropout."""
import torch
from torch import nn

from . import _arguments as args
from .functional import neighborhood_attention


class _NeighborhoodAttention(nn.Module):
    rank = 0  # set by the rank-specific subclasses

    def __init__(self, embed_dim, num_heads, kernel_size, stride=1, dilation=1,
                 is_causal=False, qkv_bias=True, qk_scale=None, proj_drop=0.0):
        super().__init__()
        for name, value in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if not args._is_int(value):
                raise TypeError(f"{name} = {value!r}: expected int")
            if value < 1:
                raise ValueError(f"{name} = {value}: must be >= 1")
        if embed_dim % num_heads != 0:
            raise ValueError(f"num_heads = {num_heads}: must divide embed_dim = {embed_dim}")
        # NATTEN's public attributes, same names and values.
        self.na_dim = self.rank
        self.expected_input_tensor_rank = self.rank + 2  # batch, *spatial, embed_dim
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.kernel_size = tuple(args.per_axis(kernel_size, self.rank, "kernel_size"))
        self.stride = tuple(args.per_axis(stride, self.rank, "stride"))
        self.dilation = tuple(args.per_axis(dilation, self.rank, "dilation"))
        self.is_causal = tuple(args.per_axis(is_causal, self.rank, "is_causal", is_flag=True))
        # qk_scale None or 0: the default, as in the functions (docs/natten.md).
        self.scale = args.optional_scale(qk_scale) or self.head_dim ** -0.5
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim, bias=qkv_bias)
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != self.expected_input_tensor_rank:
            raise ValueError(f"x.ndim = {x.dim()}: expected {self.expected_input_tensor_rank} "
                             "dimensions "
                             f"[batch, {self.rank} spatial, embed_dim]")
        if x.shape[-1] != self.embed_dim:
            raise ValueError(f"x.shape[-1] = {x.shape[-1]}: expected embed_dim = "
                             f"{self.embed_dim}")
        tokens = x.shape[:-1]
        qkv = self.qkv(x).reshape(*tokens, 3, self.num_heads, self.head_dim)
        # Strided views into qkv: the core reads them without a copy.
        query, key, value = qkv.unbind(-3)
        out = neighborhood_attention(query, key, value, self.kernel_size, self.stride,
                                     self.dilation, self.is_causal, self.scale)
        return self.proj_drop(self.proj(out.reshape(*tokens, self.embed_dim)))

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"dilation={self.dilation}, is_causal={self.is_causal}, scale={self.scale}")


class NeighborhoodAttention1D(_NeighborhoodAttention):
    """1-D neighborhood attention over [batch, X0, embed_dim]."""
    rank = 1


class NeighborhoodAttention2D(_NeighborhoodAttention):
    """2-D neighborhood attention over [batch, X0, X1, embed_dim]."""
    rank = 2


class NeighborhoodAttention3D(_NeighborhoodAttention):
    """3-D neighborhood attention over [batch, X0, X1, X2, embed_dim]."""
    rank = 3
