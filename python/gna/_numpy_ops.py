"""The numpy path: plain calls of the C++ core, no autograd."""
import numpy as np

from . import _C
from ._outputs import allocate_outputs


def _readable(array):
    # DLPack has no negative or non-element strides and no byte order:
    # those layouts alone are copied.
    if array is None:
        return None
    strides_ok = all(s >= 0 and s % array.itemsize == 0 for s in array.strides)
    if strides_ok and array.dtype.isnative:
        return array
    return np.array(array, dtype=array.dtype.newbyteorder("="), order="C")


def na_forward(query, key, value, additional_keys, additional_values, kernel_size, stride,
               dilation, is_causal, scale, backend, deterministic=False, q_tile=None,
               kv_tile=None, backward_q_tile=None, backward_kv_tile=None):
    # No autograd on numpy: determinism and backward tiles have no use here.
    query, key, value = _readable(query), _readable(key), _readable(value)
    additional_keys, additional_values = _readable(additional_keys), _readable(additional_values)
    window = _C.Window(kernel_size, stride, dilation, is_causal, scale)
    # _readable made the inputs native-endian; so is the output.
    shape = query.shape[:-1] + value.shape[-1:]
    output, lse = allocate_outputs(
        lambda: (np.empty(shape, dtype=query.dtype), np.empty(query.shape[:-1], dtype=np.float32)),
        shape, lambda: _C.check_forward(query, key, value, additional_keys, additional_values,
                                        window, backend))
    _C.forward(query, key, value, output, lse, additional_keys, additional_values, window,
               backend, 0, q_tile, kv_tile)
    return output, lse


def attention_forward(query, key, value, cumulative_q, cumulative_kv, is_causal, scale, backend,
                      deterministic=False, q_tile=None, kv_tile=None, backward_q_tile=None,
                      backward_kv_tile=None):
    query, key, value = _readable(query), _readable(key), _readable(value)
    output = np.empty(query.shape[:-1] + value.shape[-1:], dtype=query.dtype)
    lse = np.empty(query.shape[:-1], dtype=np.float32)
    offsets = [None if c is None else [int(x) for x in c] for c in (cumulative_q, cumulative_kv)]
    _C.attention_forward(query, key, value, output, lse,
                         is_causal, scale, *offsets, backend, 0, q_tile, kv_tile)
    return output, lse
