"""NATTEN's global switches (natten.use_deterministic_algorithms, ...), by
the same names and with the same rules. Determinism is honored (the
deterministic backward of every gna call); the others tune kernels gna does
not have (CUTLASS 2.x KV parallelism, FlexAttention compilation) and are
kept so code that sets or reads them runs unchanged (docs/natten.md)."""
import enum
import logging

try:
    import torch
except ImportError:
    torch = None

_log = logging.getLogger("gna")


class MemoryUsagePreference(enum.Enum):
    Default = 0
    Strict = 1
    Unrestricted = 2


class _State:
    deterministic = False
    kv_parallelism = True
    memory_preference = MemoryUsagePreference.Default
    flex_compile = False
    flex_compile_backprop = False


def _flag(mode, name):
    if not isinstance(mode, (bool, int)) or mode not in (0, 1):
        raise TypeError(f"{name} = {mode!r}: expected bool")
    return bool(mode)


def use_deterministic_algorithms(mode=True):
    """Every later backward is bitwise reproducible (as deterministic=True)."""
    _State.deterministic = _flag(mode, "mode")


def are_deterministic_algorithms_enabled():
    return _State.deterministic


def use_kv_parallelism_in_fused_na(mode=True):
    """Accepted and recorded; gna's backwards have no KV-parallel mode to
    switch. As in NATTEN, enabling it while deterministic mode is on raises
    RuntimeError, and is ignored while torch's deterministic flag is on."""
    if not _flag(mode, "mode"):
        _State.kv_parallelism = False
        return
    if torch is not None and torch.are_deterministic_algorithms_enabled():
        _log.warning("KV parallelism left off: torch's deterministic flag is on")
        return
    if _State.deterministic:
        raise RuntimeError("use_kv_parallelism_in_fused_na(True) with deterministic mode on "
                           "(gna.use_deterministic_algorithms): KV parallelism is not "
                           "deterministic in NATTEN; disable one of the two")
    _State.kv_parallelism = True


def is_kv_parallelism_in_fused_na_enabled():
    return _State.kv_parallelism


_PREFERENCES = {"default": MemoryUsagePreference.Default,
                "strict": MemoryUsagePreference.Strict,
                "unrestricted": MemoryUsagePreference.Unrestricted}


def set_memory_usage_preference(pref="default"):
    """Accepted and recorded (NATTEN's KV-parallelism memory cap)."""
    if pref not in _PREFERENCES:
        raise ValueError(f"pref = {pref!r}: expected one of {', '.join(_PREFERENCES)}")
    _State.memory_preference = _PREFERENCES[pref]


def get_memory_usage_preference():
    return _State.memory_preference


def is_memory_usage_default():
    return _State.memory_preference == MemoryUsagePreference.Default


def is_memory_usage_strict():
    return _State.memory_preference == MemoryUsagePreference.Strict


def is_memory_usage_unrestricted():
    return _State.memory_preference == MemoryUsagePreference.Unrestricted


def allow_flex_compile(mode=True, backprop=False):
    """Accepted and recorded: gna has no FlexAttention backend to compile;
    its ops work inside torch.compile regardless."""
    _State.flex_compile = _flag(mode, "mode")
    _State.flex_compile_backprop = _State.flex_compile and _flag(backprop, "backprop")


def allow_flex_compile_backprop(mode=True):
    allow_flex_compile(_State.flex_compile, mode)


def disable_flex_compile():
    allow_flex_compile(False)


def disable_flex_compile_backprop():
    allow_flex_compile(_State.flex_compile, False)


def is_flex_compile_allowed():
    return _State.flex_compile


def is_flex_compile_backprop_allowed():
    return _State.flex_compile_backprop


__all__ = ["use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
           "use_kv_parallelism_in_fused_na", "is_kv_parallelism_in_fused_na_enabled",
           "set_memory_usage_preference", "get_memory_usage_preference",
           "is_memory_usage_default", "is_memory_usage_strict", "is_memory_usage_unrestricted",
           "allow_flex_compile", "allow_flex_compile_backprop", "disable_flex_compile",
           "disable_flex_compile_backprop", "is_flex_compile_allowed",
           "is_flex_compile_backprop_allowed"]
