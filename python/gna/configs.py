"""NATTEN's configuration queries (get_configs_for_*), by the same names.

Each returns tile configurations gna accepts for the tensors, in NATTEN's
format. The Hopper forward queries return the sm90 tile chooser's pick for
CUDA tensors when this build has sm90 (pass it back as q_tile_shape /
kv_tile_shape). Every other query returns [] (NATTEN's answer when a backend
cannot run the tensors): gna has no CUTLASS 2.x, Blackwell or Flex kernels
with tiles to pick, and its sm90 backward's chooser is not bound to Python
(docs/natten.md).
"""
from . import _C


def _sm90_forward_pick(query, key, value, dense):
    try:
        import torch
    except ImportError:
        return []
    tensors = (query, key, value)
    if not all(isinstance(t, torch.Tensor) and t.is_cuda for t in tensors):
        return []
    if "sm90" not in _C.backend_names() or query.dtype not in (torch.float16, torch.bfloat16):
        return []
    spec = _C.ProblemSpec()
    spatial = [query.shape[1]] if dense else list(query.shape[1:-2])
    spec.shape = spatial
    spec.axes = [(n, 1, 1, False) for n in spatial]  # the tiles depend on sizes, not windows
    spec.batch, spec.heads, spec.kv_heads = query.shape[0], query.shape[-2], key.shape[-2]
    spec.head_dim, spec.head_dim_v = query.shape[-1], value.shape[-1]
    spec.dtype = str(query.dtype).replace("torch.", "")
    try:
        picked = _C.simulate(spec)["sm90"]
    except ValueError:
        return []
    if picked is None:
        return []
    # "q 2x8x8 kv 2x8x8 dynamic"
    words = picked["tiles"].split()
    q_tile = tuple(int(x) for x in words[1].split("x"))
    kv_tile = tuple(int(x) for x in words[3].split("x"))
    if dense:
        return [((q_tile[0], kv_tile[0]), None)]
    return [((q_tile, kv_tile), None)]


def get_configs_for_cutlass_hopper_fna(query, key, value):
    """[((q_tile_shape, kv_tile_shape), None)]: the sm90 chooser's forward
    tiles (no kernel schedule: gna's sm90 kernel has one), or []."""
    return _sm90_forward_pick(query, key, value, dense=False)


def get_configs_for_cutlass_hopper_fmha(query, key, value):
    """[((q_tile_size, kv_tile_size), None)] for attention(), or []."""
    return _sm90_forward_pick(query, key, value, dense=True)


def _none(query, key, value):
    return []


def _none_flex(query, key, value, torch_compile=False):
    return []


get_bwd_configs_for_cutlass_hopper_fna = _none
get_bwd_configs_for_cutlass_hopper_fmha = _none
get_configs_for_cutlass_fna = _none
get_bwd_configs_for_cutlass_fna = _none
get_configs_for_cutlass_fmha = _none
get_bwd_configs_for_cutlass_fmha = _none
get_configs_for_cutlass_blackwell_fna = _none
get_bwd_configs_for_cutlass_blackwell_fna = _none
get_configs_for_cutlass_blackwell_fmha = _none
get_bwd_configs_for_cutlass_blackwell_fmha = _none
get_configs_for_flex_fna = _none_flex
get_configs_for_flex_fmha = _none_flex

__all__ = [name for name in dir() if name.startswith(("get_configs_for_", "get_bwd_configs_for_"))]
