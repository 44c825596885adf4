"""gna's neighborhood as a FlexAttention mask_mod, written with torch ops
from the rules of docs/semantics.md (independently of the C++ code)."""
import math

import torch


def _axis_visible(i, j, n, k, s, d, causal):
    """Is key j visible to query i along one axis of length n?"""
    group = i % d
    p, q = i // d, j // d                 # positions inside the dilation group
    m = (n - group + d - 1) // d          # length of the group
    run = (p // s) * s                    # first query of the stride run
    same_group = j % d == group
    if causal:
        leader = torch.minimum(run + s - 1, m - 1)
        return same_group & (q >= torch.clamp(leader - k + 1, min=0)) & (q <= p)
    left, right = k // 2, k - 1 - k // 2
    leader = torch.minimum(run + s // 2, m - 1)
    center = torch.clamp(torch.minimum(leader, m - 1 - right), min=left)
    return same_group & (q >= center - left) & (q <= center + right)


def neighborhood_mask_mod(shape, window, stride, dilation, causal, extra_kv=0):
    """mask_mod(b, h, q_idx, kv_idx) over row-major flattened tokens of
    `shape`; keys from index prod(shape) on are additional KV, visible to
    every query."""
    sizes = list(shape)
    tokens = math.prod(sizes)

    def mask_mod(b, h, q_idx, kv_idx):
        visible = None
        rest_q, rest_k = q_idx, kv_idx
        for a in reversed(range(len(sizes))):
            i, j = rest_q % sizes[a], rest_k % sizes[a]
            rest_q, rest_k = rest_q // sizes[a], rest_k // sizes[a]
            v = _axis_visible(i, j, sizes[a], window[a], stride[a], dilation[a], causal[a])
            visible = v if visible is None else visible & v
        if extra_kv:
            visible = (visible & (kv_idx < tokens)) | (kv_idx >= tokens)
        return visible

    return mask_mod
