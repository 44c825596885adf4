"""NATTEN's variable-length arguments of attention(), checked with NATTEN's
rules and exception classes, turned into the sequence offsets the C++ core
takes (docs/natten.md, "Cross-attention and variable length")."""
import numpy as np

from . import _arguments as args

try:
    import torch
except ImportError:
    torch = None


def _is_tensor(t):
    return isinstance(t, np.ndarray) or (torch is not None and isinstance(t, torch.Tensor))


def _from_lengths(query, seqlens_Q, seqlens_KV):
    """cumulative_seqlen_Q/KV from per-sequence lengths (NATTEN's slower
    form: its max_seqlen needs a look at the values)."""
    if seqlens_Q is None or seqlens_KV is None:
        missing = "seqlens_KV" if seqlens_Q is not None else "seqlens_Q"
        raise ValueError(f"{missing} = None: pass seqlens_Q and seqlens_KV together")
    cumulative = []
    for name, lengths in (("seqlens_Q", seqlens_Q), ("seqlens_KV", seqlens_KV)):
        if not _is_tensor(lengths) or lengths.ndim != 1:
            raise ValueError(f"{name} = {lengths!r}: expected a 1-D integer tensor of "
                             "per-sequence token counts")
        if isinstance(lengths, np.ndarray):
            if not np.issubdtype(lengths.dtype, np.integer):
                raise ValueError(f"{name}.dtype = {lengths.dtype}: expected integers")
            cumulative.append(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
            continue
        if lengths.dtype.is_floating_point or lengths.dtype.is_complex:
            raise ValueError(f"{name}.dtype = {lengths.dtype}: expected integers")
        if lengths.device != query.device:
            raise ValueError(f"{name}.device = {lengths.device}: expected query's "
                             f"{query.device}")
        zero = lengths.new_zeros(1)
        cumulative.append(torch.cat([zero, lengths.cumsum(0)]).to(torch.int32))
    if cumulative[0].shape != cumulative[1].shape:
        raise ValueError(f"seqlens_KV has {len(seqlens_KV)} entries: expected as many as "
                         f"seqlens_Q ({len(seqlens_Q)})")
    return cumulative[0], cumulative[1]


def _check_cumulative(query, key, cumulative_seqlen_Q, cumulative_seqlen_KV, max_seqlen_Q,
                      max_seqlen_KV):
    given = {"cumulative_seqlen_Q": cumulative_seqlen_Q,
             "cumulative_seqlen_KV": cumulative_seqlen_KV,
             "max_seqlen_Q": max_seqlen_Q, "max_seqlen_KV": max_seqlen_KV}
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise ValueError(f"{', '.join(missing)} = None: variable-length attention needs all of "
                         "cumulative_seqlen_Q/KV and max_seqlen_Q/KV")
    if query.shape[0] != 1:
        raise ValueError(f"query.shape[0] = {query.shape[0]}: variable-length attention takes "
                         "the packed layout, batch 1")
    for name, limit in (("max_seqlen_Q", query.shape[1]), ("max_seqlen_KV", key.shape[1])):
        value = given[name]
        if not args._is_int(value):
            raise ValueError(f"{name} = {value!r}: expected an int")
        if not 0 <= value <= limit:
            raise ValueError(f"{name} = {value}: must be >= 0 and at most the {limit} packed "
                             "tokens")
    for name in ("cumulative_seqlen_Q", "cumulative_seqlen_KV"):
        t = given[name]
        if not _is_tensor(t):
            raise ValueError(f"{name} = {t!r}: expected a tensor")
        if isinstance(t, np.ndarray) != isinstance(query, np.ndarray):
            raise ValueError(f"{name}: a {type(t).__name__}, query a {type(query).__name__}: "
                             "pass offsets of query's framework")
        if not isinstance(t, np.ndarray) and t.device != query.device:
            raise ValueError(f"{name}.device = {t.device}: expected query's {query.device}")
        if str(t.dtype) not in ("torch.int32", "int32"):
            raise ValueError(f"{name}.dtype = {t.dtype}: expected int32")
        if t.ndim != 1 or t.shape[0] < 2:
            raise ValueError(f"{name}.shape = {tuple(t.shape)}: expected a 1-D tensor of "
                             "batch + 1 >= 2 entries")
    if cumulative_seqlen_Q.shape != cumulative_seqlen_KV.shape:
        raise ValueError(f"cumulative_seqlen_KV.shape = {tuple(cumulative_seqlen_KV.shape)}: "
                         f"expected cumulative_seqlen_Q's {tuple(cumulative_seqlen_Q.shape)}")


def varlen_offsets(query, key, seqlens_Q, seqlens_KV, cumulative_seqlen_Q, cumulative_seqlen_KV,
                   max_seqlen_Q, max_seqlen_KV):
    """(cumulative_seqlen_Q, cumulative_seqlen_KV): int32 tensors, or (None,
    None) without variable length. The core checks the values (start at 0,
    never decrease, end at the packed token counts). max_seqlen_* are
    checked as NATTEN does; gna reads the offsets themselves and never sizes
    work by them (varlen_maxima: the GPU records a sequence longer)."""
    if (all(t is None for t in (seqlens_Q, seqlens_KV, cumulative_seqlen_Q, cumulative_seqlen_KV))
            and all(m is None or (args._is_int(m) and m == 0)
                    for m in (max_seqlen_Q, max_seqlen_KV))):
        return None, None
    if seqlens_Q is not None or seqlens_KV is not None:
        if query.shape[0] != 1:
            raise ValueError(f"query.shape[0] = {query.shape[0]}: variable-length attention "
                             "takes the packed layout, batch 1")
        return _from_lengths(query, seqlens_Q, seqlens_KV)
    _check_cumulative(query, key, cumulative_seqlen_Q, cumulative_seqlen_KV, max_seqlen_Q,
                      max_seqlen_KV)
    return cumulative_seqlen_Q, cumulative_seqlen_KV


def varlen_maxima(cumulative_seqlen_Q, max_seqlen_Q, max_seqlen_KV):
    """(max_seqlen_Q, max_seqlen_KV) for the GPU's offsets check, -1 where
    not given (seqlens_Q/KV, no variable length)."""
    if cumulative_seqlen_Q is None or not (args._is_int(max_seqlen_Q)
                                           and args._is_int(max_seqlen_KV)):
        return -1, -1
    return int(max_seqlen_Q), int(max_seqlen_KV)


# ---- Offsets in GPU memory: read there by cuda-generic's packed kernels,
# so a call never waits for the GPU. The offsets' values are checked on the
# GPU too; a broken rule makes that call's outputs NaN and is recorded in a
# per-device status that check_varlen_errors() reads (docs/natten.md). ----

_DEVICE_BACKENDS = ("auto", "cuda-generic")
_status = {}  # torch.device -> int32 [4] on it: OffsetsStatus of the first bad call


def on_device(query, cumulative, backend):
    """Whether a call runs on the packed kernels: CUDA tensors, offsets given
    (on query's device: checked before), a backend that runs them. Other
    backends take the offsets through the host (one sync)."""
    return (cumulative is not None and query.device.type == "cuda"
            and backend in _DEVICE_BACKENDS)


def status_for(device):
    """The status record of `device` (created zeroed on first use)."""
    status = _status.get(device)
    if status is None:
        status = _status[device] = torch.zeros(4, dtype=torch.int32, device=device)
    return status


def packed_addresses(cumulative_q, cumulative_kv, query):
    """(offsets kept alive, their device addresses, sequences, status address)."""
    cq, ck = cumulative_q.contiguous(), cumulative_kv.contiguous()
    return ((cq, ck), cq.data_ptr(), ck.data_ptr(), cq.shape[0] - 1,
            status_for(query.device).data_ptr())


def check_varlen_errors(device=None):
    """Raises ValueError for the first variable-length attention call on the
    GPU `device` (default: the current one) since the last check whose
    cumulative_seqlen_Q/KV broke a rule (its outputs are NaN), or whose
    sequences were longer than max_seqlen_Q/KV (its outputs are right).
    Reads a record on the GPU: waits for the GPU once. Clears the record."""
    if torch is None or not torch.cuda.is_available():
        return
    device = torch.device("cuda", torch.cuda.current_device()) if device is None \
        else torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    status = _status.get(device)
    if status is None:
        return
    code, index, value, expected = status.tolist()
    if code != 0:
        status.zero_()
        from . import _C
        raise ValueError(_C.describe_offsets_status(code, index, value, expected))
