"""Normalizes and type-checks the arguments of the functional API.

Only what the C++ core cannot see is checked here: Python types, tuple
lengths, numpy/torch mixing, devices and tensor ranks (shapes feed the output
allocation). Values (window sizes, extents, heads, dtypes) are checked by the
core, which names the argument in its ValueError / TypeError.
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


def per_axis(value, rank, name, is_flag=False):
    """An int (bool for flags) or a tuple/list of rank of them, as a list."""
    is_element = _is_bool if is_flag else _is_int
    what = "bool" if is_flag else "int"
    if is_element(value):
        values = [value] * rank
    elif isinstance(value, (tuple, list)):
        if len(value) != rank:
            raise TypeError(f"{name} = {value!r}: expected one {what} or a tuple of {rank} "
                            f"(one per spatial axis), got {len(value)} entries")
        for i, v in enumerate(value):
            if not is_element(v):
                raise TypeError(f"{name}[{i}] = {v!r}: expected {what}, got {type(v).__name__}")
        values = list(value)
    else:
        raise TypeError(f"{name} = {value!r}: expected {what} or tuple of {what}, "
                        f"got {type(value).__name__}")
    if is_flag:
        return [bool(v) for v in values]
    for i, v in enumerate(values):
        if not _is_symbolic(v) and not -2**63 <= v < 2**63:  # the core's int64
            raise ValueError(f"{name}[{i}] = {v}: out of the 64-bit integer range")
    return [v if _is_symbolic(v) else int(v) for v in values]


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
    if kind == "torch":
        ok = t.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    else:
        ok = t.dtype.kind == "f" and t.dtype.itemsize in (2, 4, 8)
    if not ok:
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
            raise TypeError(f"{name}.ndim = {t.ndim}: expected {expected} dimensions {layout}")
    if framework == "torch":
        _check_torch_devices(tensors, first)
    return framework


def _check_torch_devices(tensors, first):
    device = tensors[first].device
    for name, t in tensors.items():
        if t is None:
            continue
        if t.layout != torch.strided:
            raise TypeError(f"{name}.layout = {t.layout}: expected torch.strided")
        if t.device != device:
            raise TypeError(f"{name}.device = {t.device}: all tensors must be on {device} "
                            f"(the device of {first})")
    if device.type not in ("cpu", "cuda", "meta"):
        raise TypeError(f"{first}.device = {device}: gna runs on cpu and cuda tensors")


def optional_scale(scale):
    if scale is None:
        return None
    if isinstance(scale, numbers.Real) and not _is_bool(scale):
        try:
            return float(scale)
        except OverflowError:  # an int past the float range, e.g. 10**400
            raise ValueError(f"scale = {_short(scale)}: |scale| must be at most 2^64 "
                             "(1.8e19): scale * score would overflow") from None
    raise TypeError(f"scale = {scale!r}: expected a float or None, got {type(scale).__name__}")


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"


def backend_name(backend):
    if backend is None:
        return "auto"
    if isinstance(backend, str):
        # The core takes UTF-8: lone surrogates travel escaped, so that its
        # "unknown backend" message names them instead of an encoding error.
        return backend.encode("utf-8", "backslashreplace").decode("utf-8")
    raise TypeError(f"backend = {backend!r}: expected a backend name (str) or None")


def flag(value, name):
    if not _is_bool(value):
        raise TypeError(f"{name} = {value!r}: expected bool, got {type(value).__name__}")
    return bool(value)
