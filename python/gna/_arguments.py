"""Normalizes and type-checks the arguments of the functional API.

Only what the C++ core cannot see is checked here: Python types, tuple
lengths, numpy/torch mixing, devices and tensor ranks (shapes feed the output
allocation). Values (window sizes, extents, heads, dtypes) are checked by the
core, which names the argument in its ValueError / TypeError.

Exception classes follow NATTEN for the inputs NATTEN rejects (docs/natten.md,
"Exceptions"): ValueError for a malformed window argument, a tensor of the
wrong rank, mixed dtypes or devices; NotImplementedError for an unknown
backend, a non-float dtype and sparse or nested tensors. TypeError is left for what NATTEN
never sees: an argument that is not a tensor, numpy mixed with torch.
"""
import numbers

import numpy as np

try:
    import torch
except ImportError:  # the numpy path works without torch
    torch = None

_AXIS_NAMES = {1: "[batch, X0, heads, head_dim]",
               2: "[batch, X0, X1, heads, head_dim]",
               3: "[batch, X0, X1, X2, heads, head_dim]"}


def _is_symbolic(value):
    # Sizes traced by torch.compile(dynamic=True), e.g. kernel_size=x.shape[1].
    return torch is not None and isinstance(value, torch.SymInt)


def _is_int(value):
    return (isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
            or _is_symbolic(value))


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


# What None means for the window arguments that NATTEN lets be None.
_NONE_MEANS = {"stride": 1, "dilation": 1, "is_causal": False}


def per_axis(value, rank, name, is_flag=False):
    """An int (bool for flags) or a tuple/list of rank of them, as a list.
    None means the default for stride, dilation and is_causal (as in NATTEN).
    A malformed value is a ValueError, NATTEN's class for it."""
    if value is None and name in _NONE_MEANS:
        value = _NONE_MEANS[name]
    is_element = _is_bool if is_flag else _is_int
    what = "bool" if is_flag else "int"
    if is_element(value):
        values = [value] * rank
    elif isinstance(value, (tuple, list)):
        if len(value) != rank:
            raise ValueError(f"{name} = {value!r}: expected one {what} or a tuple of {rank} "
                             f"(one per spatial axis), got {len(value)} entries")
        for i, v in enumerate(value):
            if not is_element(v):
                raise ValueError(f"{name}[{i}] = {v!r}: expected {what}, got {type(v).__name__}")
        values = list(value)
    else:
        raise ValueError(f"{name} = {value!r}: expected {what} or tuple of {what}, "
                         f"got {type(value).__name__}")
    if is_flag:
        return [bool(v) for v in values]
    for i, v in enumerate(values):
        if not _is_symbolic(v) and not -2**63 <= v < 2**63:  # the core's int64
            raise ValueError(f"{name}[{i}] = {v}: out of the 64-bit integer range")
    return [v if _is_symbolic(v) else int(v) for v in values]


_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1


def exact_per_axis(value, rank, none_means=None):
    """per_axis for the common exact types alone, as a tuple: an int (a
    bool for flags, when none_means is a bool) or a tuple/list of rank of
    them, of exactly those types (no bool for int, no numpy scalars, no
    SymInt), ints in int64. None for anything else, which per_axis then
    checks (and names in its error). Exact types make the tuple a cache key
    that equals another only for the same arguments (7.0 == 7 would not)."""
    if value is None:
        value = none_means
    kind = bool if type(none_means) is bool else int
    if type(value) is kind:
        return (value,) * rank if kind is bool or _INT64_MIN <= value <= _INT64_MAX else None
    if (type(value) is tuple or type(value) is list) and len(value) == rank:
        for v in value:
            if type(v) is not kind or (kind is int and not _INT64_MIN <= v <= _INT64_MAX):
                return None
        return tuple(value)
    return None


def framework_of(value, name):
    """'torch' or 'numpy'; TypeError for anything else."""
    if torch is not None and isinstance(value, torch.Tensor):
        return "torch"
    if isinstance(value, np.ndarray):
        return "numpy"
    raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(value).__name__}")


_REQUIRED = ("query", "key", "value")
_DTYPE_RULE = "expected float16, bfloat16, float32 or float64"


def _check_dtype(t, name, kind):
    # Before DLPack, which cannot carry numpy object/str/void arrays or some
    # torch dtypes (float8, quantized) and would fail without a name.
    # A torch dtype no backend runs is NATTEN's NotImplementedError; a numpy
    # array of no number type at all a TypeError.
    if kind == "torch":
        if t.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            raise NotImplementedError(f"{name}.dtype = {t.dtype}: {_DTYPE_RULE}")
    elif not (t.dtype.kind == "f" and t.dtype.itemsize in (2, 4, 8)):
        raise TypeError(f"{name}.dtype = {t.dtype}: {_DTYPE_RULE}")


def check_tensors(tensors, rank):
    """Checks a dict name -> tensor (None allowed for optional ones).

    Returns 'torch' or 'numpy', the framework all of them share.
    """
    framework = None
    first = None
    for name, t in tensors.items():
        if t is None:
            if name in _REQUIRED:
                raise TypeError(f"{name} = None: a torch.Tensor or numpy.ndarray is required")
            continue
        kind = framework_of(t, name)
        _check_dtype(t, name, kind)
        if framework is None:
            framework, first = kind, name
        elif kind != framework:
            raise TypeError(f"{name} is a {kind} array but {first} is a {framework} array: "
                            "pass all tensors from one framework")
        expected = 4 if name.startswith("additional") else rank + 3
        if t.ndim != expected:
            layout = "[batch, tokens, heads, head_dim]" if expected == 4 else _AXIS_NAMES[rank]
            raise ValueError(f"{name}.ndim = {t.ndim}: expected {expected} dimensions {layout}")
    if framework == "torch":
        _check_torch_devices(tensors, first)
    _check_same_dtype(tensors, first)
    return framework


def _check_same_dtype(tensors, first):
    # Each dtype passed _check_dtype; a mix is NATTEN's ValueError. numpy's
    # byte order is not part of the dtype here (_numpy_ops reads any).
    def key(t):
        return t.dtype.newbyteorder("=") if isinstance(t, np.ndarray) else t.dtype

    dtype = key(tensors[first])
    for name, t in tensors.items():
        if t is not None and key(t) != dtype:
            raise ValueError(f"{name}.dtype = {t.dtype}: expected {tensors[first].dtype} (the "
                             f"dtype of {first}); pass all tensors in one dtype")


def _check_torch_devices(tensors, first):
    device = tensors[first].device
    for name, t in tensors.items():
        if t is None:
            continue
        if t.layout != torch.strided or t.is_nested:
            raise NotImplementedError(f"{name}.layout = {t.layout}: gna takes dense "
                                      "(torch.strided) tensors, not sparse or nested ones")
        if t.device != device:
            raise ValueError(f"{name}.device = {t.device}: all tensors must be on {device} "
                             f"(the device of {first})")
    if device.type not in ("cpu", "cuda", "meta"):
        raise TypeError(f"{first}.device = {device}: gna runs on cpu and cuda tensors")


def optional_scale(scale):
    """None for the default head_dim ** -0.5. Like NATTEN (`scale or
    head_dim ** -0.5`), a scale of 0 also means the default, in the
    functions and the modules alike (docs/natten.md, "scale")."""
    if scale is None:
        return None
    if isinstance(scale, numbers.Real) and not _is_bool(scale):
        if scale == 0:
            return None
        try:
            return float(scale)
        except OverflowError:  # an int past the float range, e.g. 10**400
            raise ValueError(f"scale = {_short(scale)}: |scale| must be at most 2^64 "
                             "(1.8e19): scale * score would overflow") from None
    raise TypeError(f"scale = {scale!r}: expected a float or None, got {type(scale).__name__}")


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"


# gna's backends, and NATTEN's names for the same kernels (docs/natten.md,
# "Backends"). NATTEN's Flex backends are its portable PyTorch path: gna's
# portable choice is "auto", whichever gna backend runs the tensors.
GNA_BACKENDS = ("auto", "sm90", "cuda-generic", "cpu", "reference")
NATTEN_BACKENDS = {
    "neighborhood": {"hopper-fna": "sm90", "cutlass-fna": "cuda-generic",
                     "blackwell-fna": "cuda-generic", "flex-fna": "auto"},
    "dense": {"hopper-fmha": "sm90", "cutlass-fmha": "cuda-generic",
              "blackwell-fmha": "cuda-generic", "flex-fmha": "auto"},
}


def backend_name(backend, kind="neighborhood"):
    """The gna backend for backend=None, a gna name or a NATTEN name of the
    operation's kind (*-fna for na1d/2d/3d, *-fmha for attention)."""
    if backend is None:
        return "auto"
    names = NATTEN_BACKENDS[kind]
    if isinstance(backend, str) and (backend in GNA_BACKENDS or backend in names):
        return names.get(backend, backend)
    raise NotImplementedError(
        f"backend = {backend!r}: unknown backend; known: None, {', '.join(GNA_BACKENDS)} "
        f"(gna) and {', '.join(names)} (NATTEN's names)")


# backend_name's answers for the neighborhood kernels, by the names it
# takes (None too): one lookup for calls that pass a str or None.
NEIGHBORHOOD_BACKENDS = {None: "auto", **{name: name for name in GNA_BACKENDS},
                         **NATTEN_BACKENDS["neighborhood"]}


def flag(value, name):
    if not _is_bool(value):
        raise TypeError(f"{name} = {value!r}: expected bool, got {type(value).__name__}")
    return bool(value)


def int_flag(value, name):
    """A bool, or 0 / 1 (NATTEN takes any truthy value for its switches)."""
    if _is_bool(value) or (_is_int(value) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{name} = {value!r}: expected bool (or 0 / 1), got {type(value).__name__}")


KERNEL_SCHEDULES = ("non", "coop", "pp")


def kernel_schedule(value):
    """NATTEN's Hopper kernel schedule: None, "non", "coop", "pp" or NATTEN's
    KernelSchedule enum. Checked like NATTEN does (ValueError), never used:
    gna's sm90 kernel has one schedule."""
    import enum
    if value is None or value in KERNEL_SCHEDULES or isinstance(value, enum.Enum):
        return value
    raise ValueError(f"kernel_schedule = {value!r}: expected None or one of "
                     f"{', '.join(KERNEL_SCHEDULES)}")


def tile_shape(value, rank, name):
    """None, or an int tuple of `rank` entries (an int too for rank 1)."""
    if value is None:
        return None
    if rank == 1 and _is_int(value):
        value = (value,)
    if (isinstance(value, (tuple, list)) and len(value) == rank
            and all(_is_int(v) and v >= 1 for v in value)):
        return [int(v) for v in value]
    raise ValueError(f"{name} = {value!r}: expected None or a tuple of {rank} positive ints "
                     "(one per spatial axis)")
