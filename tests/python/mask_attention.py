"""The test oracle: dense attention under an explicit boolean mask, built
straight from docs/semantics.md with plain loops, independent of the C++ code.

Everything runs in float64 on the CPU with autograd, so gradients of the
oracle come from torch, not from a hand-written backward.
"""
import math

import torch


def axis_mask(n, kernel_size, stride, dilation, is_causal):
    """visible[i][j]: does query i see key j along one axis of length n."""
    k, s, d = kernel_size, stride, dilation
    left = k // 2
    right = k - 1 - left
    visible = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        group, p = i % d, i // d
        m = -(-(n - group) // d)  # tokens in this dilation group
        if is_causal:
            leader = min((p // s) * s + s - 1, m - 1)
            lo, hi = max(leader - k + 1, 0), p
        else:
            leader = min((p // s) * s + s // 2, m - 1)
            center = min(max(leader, left), m - 1 - right)
            lo, hi = center - left, center + right
        for j in range(n):
            visible[i, j] = j % d == group and lo <= j // d <= hi
    return visible


def neighborhood_mask(shape, kernel_size, stride, dilation, is_causal):
    """[T, T] mask over row-major tokens: the AND of the per-axis masks."""
    mask = torch.ones(1, 1, dtype=torch.bool)
    for a, n in enumerate(shape):
        m = axis_mask(n, kernel_size[a], stride[a], dilation[a], is_causal[a])
        mask = (mask[:, None, :, None] & m[None, :, None, :]).reshape(
            mask.shape[0] * n, mask.shape[1] * n)
    return mask


def attention(query, key, value, kernel_size, stride, dilation, is_causal, scale=None,
              additional_keys=None, additional_values=None):
    """Returns (output, lse) in float64 for heads-last inputs of any dtype.

    Per-axis parameters are tuples of length rank = query.ndim - 3.
    """
    batch, *spatial, heads, dim = query.shape
    kv_heads, dim_v = value.shape[-2], value.shape[-1]
    tokens = math.prod(spatial)
    group = heads // kv_heads
    scale = dim ** -0.5 if scale is None else scale

    def heads_first(t, n):  # [B, *, H, D] -> [B, H, n, D] in float64
        return t.double().reshape(batch, n, t.shape[-2], t.shape[-1]).transpose(1, 2)

    q = heads_first(query, tokens)
    k = heads_first(key, tokens).repeat_interleave(group, dim=1)
    v = heads_first(value, tokens).repeat_interleave(group, dim=1)
    mask = neighborhood_mask(spatial, kernel_size, stride, dilation, is_causal)
    if additional_keys is not None:
        extra = additional_keys.shape[1]
        k = torch.cat([k, heads_first(additional_keys, extra).repeat_interleave(group, 1)], 2)
        v = torch.cat([v, heads_first(additional_values, extra).repeat_interleave(group, 1)], 2)
        mask = torch.cat([mask, torch.ones(tokens, extra, dtype=torch.bool)], 1)
    scores = (q @ k.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~mask.to(scores.device), float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)  # [B, H, T]
    out = torch.exp(scores - lse[..., None]) @ v  # [B, H, T, Dv]
    out = out.transpose(1, 2).reshape(batch, *spatial, heads, dim_v)
    lse = lse.transpose(1, 2).reshape(batch, *spatial, heads)
    return out, lse
