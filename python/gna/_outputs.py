"""Allocating a forward's outputs only once its inputs pass every rule.

An output too large to allocate must not hide the rule the inputs break
(a window larger than the axis, a wrong head count): large outputs are
allocated after the core has checked the call, small ones (which allocate
at once) skip that check's cost (~16 us of DLPack export), except when
their allocation fails.
"""
import math


# Outputs of at least this many elements are checked first (128 MiB of
# float16): below it, a failed allocation is caught and the check run then,
# and one that succeeds for a call the core rejects is given back at once.
# Above it, the check's cost is small against the work of any valid call.
CHECK_FIRST_ELEMENTS = 1 << 26


def allocate_outputs(allocate, output_shape, check):
    """allocate() after check() (the core's check of the call) when the
    output is large; else allocate(), and on failure the check's error in
    place of MemoryError."""
    if math.prod(output_shape) >= CHECK_FIRST_ELEMENTS:
        check()
        return allocate()
    try:
        return allocate()
    except (MemoryError, RuntimeError):  # torch.OutOfMemoryError is a RuntimeError
        check()
        raise
