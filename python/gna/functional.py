"""Functional API, heads-last layout [batch, *spatial, heads, head_dim].

Names, positional order and defaults are NATTEN 0.21's (docs/natten.md), with
gna's one extra keyword, `deterministic`, last. Torch tensors go through the
custom ops of _torch_ops (autograd, torch.compile); numpy arrays through a
direct call of the C++ core.
"""
from . import _arguments as args
from . import _numpy_ops
from . import context
from ._merge import merge_attentions  # noqa: F401  (part of this module's API)
from ._varlen import varlen_maxima, varlen_offsets

try:
    import torch
except ImportError:
    torch = None
    _torch_ops = None
else:
    from . import _torch_ops


def _forward_op(framework, tensors):
    if framework == "numpy":
        return _numpy_ops.na_forward
    return _torch_ops.forward_for(*tensors)


def _deterministic(value):
    # The keyword, NATTEN's switch (gna.use_deterministic_algorithms) or
    # torch's (read again by the backward).
    return args.flag(value, "deterministic") or context.are_deterministic_algorithms_enabled()


def _tiles(rank, names, values):
    """NATTEN's tile shapes as the core's (q, kv) tile lists: both or neither,
    one positive int per axis. They force the sm90 kernel's tiles."""
    q_tile, kv_tile = (args.tile_shape(v, rank, n) for n, v in zip(names, values))
    if (q_tile is None) != (kv_tile is None):
        missing = names[1] if kv_tile is None else names[0]
        raise ValueError(f"{missing} = None: pass {names[0]} and {names[1]} together, or "
                         "neither")
    return q_tile, kv_tile


def _check_performance_knobs(rank, backward_kv_splits, backward_use_pt_reduction,
                             run_persistent_kernel, kernel_schedule, torch_compile):
    """NATTEN's tuning knobs gna has no counterpart for: checked (a typo
    still fails), then unused. docs/natten.md lists each one."""
    args.tile_shape(backward_kv_splits, rank, "backward_kv_splits")
    for name, value in (("backward_use_pt_reduction", backward_use_pt_reduction),
                        ("run_persistent_kernel", run_persistent_kernel),
                        ("torch_compile", torch_compile)):
        args.int_flag(value, name)
    args.kernel_schedule(kernel_schedule)


def _check_attention_kwargs(attention_kwargs):
    """NATTEN forwards these to its dense kernels (additional KV, windows as
    large as the input); gna runs those cases in its neighborhood kernels,
    so they are checked against `attention`'s keywords and not used."""
    if attention_kwargs is None:
        return
    if not isinstance(attention_kwargs, dict):
        raise TypeError(f"attention_kwargs = {attention_kwargs!r}: expected a dict of "
                        "gna.attention keywords or None")
    allowed = set(_ATTENTION_KNOBS)
    for key in attention_kwargs:
        if key not in allowed:
            raise TypeError(f"attention_kwargs[{key!r}]: not a keyword of attention() that "
                            f"attention_kwargs may set; allowed: {', '.join(sorted(allowed))}")


def neighborhood_attention(query, key, value, kernel_size, stride=1, dilation=1,
                           is_causal=False, scale=None, additional_keys=None,
                           additional_values=None, attention_kwargs=None, backend=None,
                           q_tile_shape=None, kv_tile_shape=None, backward_q_tile_shape=None,
                           backward_kv_tile_shape=None, backward_kv_splits=None,
                           backward_use_pt_reduction=False, run_persistent_kernel=True,
                           kernel_schedule=None, torch_compile=False, return_lse=False,
                           deterministic=False):
    """Generalized neighborhood attention of any spatial rank (from query.ndim - 3).

    Returns the output [batch, *spatial, heads, head_dim_v] in the input's type,
    dtype and device, and with return_lse=True also the log-sum-exp of the scaled
    scores [batch, *spatial, heads] in float32. Arguments as in na1d.
    """
    args.framework_of(query, "query")
    rank = query.ndim - 3
    if not 1 <= rank <= 3:
        raise ValueError(f"query.ndim = {query.ndim}: expected 4, 5 or 6 dimensions "
                         "[batch, X0, (X1, (X2)), heads, head_dim]")
    return _attend(rank, query, key, value, kernel_size, stride, dilation, is_causal, scale,
                   additional_keys, additional_values, attention_kwargs, backend, q_tile_shape,
                   kv_tile_shape, backward_q_tile_shape, backward_kv_tile_shape,
                   backward_kv_splits, backward_use_pt_reduction, run_persistent_kernel,
                   kernel_schedule, torch_compile, return_lse, deterministic)


def _attend(rank, query, key, value, kernel_size, stride, dilation, is_causal, scale,
            additional_keys, additional_values, attention_kwargs, backend, q_tile_shape,
            kv_tile_shape, backward_q_tile_shape, backward_kv_tile_shape, backward_kv_splits,
            backward_use_pt_reduction, run_persistent_kernel, kernel_schedule, torch_compile,
            return_lse, deterministic):
    if (_torch_ops is not None and attention_kwargs is None and additional_keys is None
            and additional_values is None and q_tile_shape is None and kv_tile_shape is None
            and backward_q_tile_shape is None and backward_kv_tile_shape is None
            and backward_kv_splits is None and backward_use_pt_reduction is False
            and run_persistent_kernel is True and kernel_schedule is None
            and torch_compile is False and (return_lse is False or return_lse is True)
            and (deterministic is False or deterministic is True)
            and not _torch_ops._is_compiling()):
        # The common call, by exact types (_torch_ops.attend); None: it is
        # not one, and the checks below take it.
        reproducible = deterministic or context.are_deterministic_algorithms_enabled()
        result = _torch_ops.attend(rank, query, key, value, kernel_size, stride, dilation,
                                   is_causal, scale, backend, reproducible, return_lse)
        if result is not None:
            return result if return_lse else result[0]
    framework = args.check_tensors(
        {"query": query, "key": key, "value": value, "additional_keys": additional_keys,
         "additional_values": additional_values}, rank)
    window = (args.per_axis(kernel_size, rank, "kernel_size"),
              args.per_axis(stride, rank, "stride"),
              args.per_axis(dilation, rank, "dilation"),
              args.per_axis(is_causal, rank, "is_causal", is_flag=True),
              args.optional_scale(scale))
    _check_attention_kwargs(attention_kwargs)
    _check_performance_knobs(rank, backward_kv_splits, backward_use_pt_reduction,
                             run_persistent_kernel, kernel_schedule, torch_compile)
    tiles = (*_tiles(rank, ("q_tile_shape", "kv_tile_shape"), (q_tile_shape, kv_tile_shape)),
             *_tiles(rank, ("backward_q_tile_shape", "backward_kv_tile_shape"),
                     (backward_q_tile_shape, backward_kv_tile_shape)))
    return_lse = args.int_flag(return_lse, "return_lse")
    tensors = (query, key, value, additional_keys, additional_values)
    output, lse = _forward_op(framework, tensors)(*tensors, *window, args.backend_name(backend),
                                                  _deterministic(deterministic), *tiles)
    return (output, lse) if return_lse else output


def na1d(query, key, value, kernel_size, stride=1, dilation=1, is_causal=False, scale=None,
         additional_keys=None, additional_values=None, attention_kwargs=None, backend=None,
         q_tile_shape=None, kv_tile_shape=None, backward_q_tile_shape=None,
         backward_kv_tile_shape=None, backward_kv_splits=None, backward_use_pt_reduction=False,
         run_persistent_kernel=True, kernel_schedule=None, torch_compile=False, return_lse=False,
         deterministic=False):
    """1-D neighborhood attention over [batch, X0, heads, head_dim].

    key [batch, X0, kv_heads, head_dim] and value [batch, X0, kv_heads, head_dim_v]
    with heads % kv_heads == 0. kernel_size, stride, dilation: int (or 1-tuple;
    stride/dilation None mean 1); is_causal: bool (None: False). scale: None or
    0 mean head_dim ** -0.5. additional_keys/values [batch, tokens, kv_heads,
    head_dim(_v)] are attended by every query. backend: None (auto), a name
    from gna.backend_names() or NATTEN's ("hopper-fna" -> sm90, "cutlass-fna"
    and "blackwell-fna" -> cuda-generic, "flex-fna" -> auto). q_tile_shape and
    kv_tile_shape (both or neither) force the sm90 forward's tiles,
    backward_q_tile_shape and backward_kv_tile_shape its backward's; NATTEN's
    other tuning knobs are checked and unused (docs/natten.md). deterministic=
    True (or gna.use_deterministic_algorithms(), or
    torch.use_deterministic_algorithms(True)) makes the backward bitwise
    reproducible. Returns the output [batch, X0, heads, head_dim_v], and the
    float32 LSE [batch, X0, heads] too when return_lse=True.
    """
    return _attend(1, query, key, value, kernel_size, stride, dilation, is_causal, scale,
                   additional_keys, additional_values, attention_kwargs, backend, q_tile_shape,
                   kv_tile_shape, backward_q_tile_shape, backward_kv_tile_shape,
                   backward_kv_splits, backward_use_pt_reduction, run_persistent_kernel,
                   kernel_schedule, torch_compile, return_lse, deterministic)


def na2d(query, key, value, kernel_size, stride=1, dilation=1, is_causal=False, scale=None,
         additional_keys=None, additional_values=None, attention_kwargs=None, backend=None,
         q_tile_shape=None, kv_tile_shape=None, backward_q_tile_shape=None,
         backward_kv_tile_shape=None, backward_kv_splits=None, backward_use_pt_reduction=False,
         run_persistent_kernel=True, kernel_schedule=None, torch_compile=False, return_lse=False,
         deterministic=False):
    """2-D neighborhood attention over [batch, X0, X1, heads, head_dim].

    Per-axis arguments (kernel_size, stride, dilation, is_causal, tile shapes)
    take one value for both axes or a 2-tuple; everything else as in na1d.
    """
    return _attend(2, query, key, value, kernel_size, stride, dilation, is_causal, scale,
                   additional_keys, additional_values, attention_kwargs, backend, q_tile_shape,
                   kv_tile_shape, backward_q_tile_shape, backward_kv_tile_shape,
                   backward_kv_splits, backward_use_pt_reduction, run_persistent_kernel,
                   kernel_schedule, torch_compile, return_lse, deterministic)


def na3d(query, key, value, kernel_size, stride=1, dilation=1, is_causal=False, scale=None,
         additional_keys=None, additional_values=None, attention_kwargs=None, backend=None,
         q_tile_shape=None, kv_tile_shape=None, backward_q_tile_shape=None,
         backward_kv_tile_shape=None, backward_kv_splits=None, backward_use_pt_reduction=False,
         run_persistent_kernel=True, kernel_schedule=None, torch_compile=False, return_lse=False,
         deterministic=False):
    """3-D neighborhood attention over [batch, X0, X1, X2, heads, head_dim].

    Per-axis arguments take one value for all axes or a 3-tuple, e.g.
    kernel_size=(1, 7, 7) is per-frame 2-D attention in a video; everything
    else as in na1d.
    """
    return _attend(3, query, key, value, kernel_size, stride, dilation, is_causal, scale,
                   additional_keys, additional_values, attention_kwargs, backend, q_tile_shape,
                   kv_tile_shape, backward_q_tile_shape, backward_kv_tile_shape,
                   backward_kv_splits, backward_use_pt_reduction, run_persistent_kernel,
                   kernel_schedule, torch_compile, return_lse, deterministic)


# The keywords of attention() that na*d's attention_kwargs may set (NATTEN's rule).
_ATTENTION_KNOBS = ("backend", "q_tile_size", "kv_tile_size", "backward_q_tile_size",
                    "backward_kv_tile_size", "backward_kv_splits", "backward_use_pt_reduction",
                    "run_persistent_kernel", "kernel_schedule", "torch_compile")


def _check_dense_tensors(query, key, value):
    framework = args.framework_of(query, "query")
    for name, t in (("key", key), ("value", value)):
        if args.framework_of(t, name) != framework:
            raise TypeError(f"{name} is a {args.framework_of(t, name)} array but query is a "
                            f"{framework} array: pass all tensors from one framework")
        if t.ndim != query.ndim:
            raise ValueError(f"{name}.ndim = {t.ndim}: expected query's {query.ndim} "
                             "(query, key and value have one rank)")
    if query.ndim != 4:
        raise ValueError(f"query.ndim = {query.ndim}: expected 4 dimensions "
                         "[batch, tokens, heads, head_dim]")
    if key.shape[1] != value.shape[1]:
        raise ValueError(f"value.shape[1] = {value.shape[1]}: expected key.shape[1] = "
                         f"{key.shape[1]} (keys and values come in pairs)")
    return args.check_tensors({"query": query, "key": key, "value": value}, 1)


def attention(query, key, value, is_causal=False, scale=None, seqlens_Q=None, seqlens_KV=None,
              cumulative_seqlen_Q=None, cumulative_seqlen_KV=None, max_seqlen_Q=None,
              max_seqlen_KV=None, backend=None, q_tile_size=None, kv_tile_size=None,
              backward_q_tile_size=None, backward_kv_tile_size=None, backward_kv_splits=None,
              backward_use_pt_reduction=False, run_persistent_kernel=True, kernel_schedule=None,
              torch_compile=False, return_lse=False, deterministic=False):
    """Dense attention: query [batch, Lq, heads, head_dim] attends to key
    [batch, Lk, kv_heads, head_dim] and value [batch, Lk, kv_heads, head_dim_v];
    Lk may differ from Lq (cross-attention). is_causal needs Lq == Lk.

    Variable length (NATTEN's packed layout, batch 1): seqlens_Q/seqlens_KV
    (int tensors of per-sequence lengths), or cumulative_seqlen_Q/KV (int32,
    batch + 1 entries, starting at 0) with max_seqlen_Q/KV (ints); sequence i
    is query tokens cumulative_seqlen_Q[i]:[i+1] attending to key tokens
    cumulative_seqlen_KV[i]:[i+1]. On CUDA (backend None or
    "cuda-generic") the offsets are read on the GPU, with no host sync; bad
    ones give NaN outputs and are reported by gna.check_varlen_errors().
    Backend names: gna's or NATTEN's *-fmha ones; q_tile_size/kv_tile_size
    (backward_*: the backward's) force the sm90 kernels' tiles; the other
    knobs are checked and unused. Returns the output [batch, Lq, heads,
    head_dim_v], and the float32 LSE [batch, Lq, heads] with
    return_lse=True.
    """
    framework = _check_dense_tensors(query, key, value)
    offsets = varlen_offsets(query, key, seqlens_Q, seqlens_KV, cumulative_seqlen_Q,
                             cumulative_seqlen_KV, max_seqlen_Q, max_seqlen_KV)
    is_causal = args.int_flag(False if is_causal is None else is_causal, "is_causal")
    scale = args.optional_scale(scale)
    _check_performance_knobs(1, backward_kv_splits, backward_use_pt_reduction,
                             run_persistent_kernel, kernel_schedule, torch_compile)
    tiles = (*_tiles(1, ("q_tile_size", "kv_tile_size"), (q_tile_size, kv_tile_size)),
             *_tiles(1, ("backward_q_tile_size", "backward_kv_tile_size"),
                     (backward_q_tile_size, backward_kv_tile_size)))
    return_lse = args.int_flag(return_lse, "return_lse")
    call = (is_causal, scale, args.backend_name(backend, "dense"), _deterministic(deterministic),
            *tiles)
    if framework == "numpy":
        output, lse = _numpy_ops.attention_forward(query, key, value, *offsets, *call)
    else:
        output, lse = _torch_ops.attention(query, key, value, *offsets, *call,
                                           *varlen_maxima(cumulative_seqlen_Q, max_seqlen_Q,
                                                          max_seqlen_KV))
    return (output, lse) if return_lse else output
