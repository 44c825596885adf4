"""Who holds which tokens of the sharded axis, and who sends which to whom.

Pure arithmetic (no process group): every rank computes the same layout from
the slab extents all ranks exchanged. The window rules come from the C++
core (_C.slab_plan, src/core/slab.hpp), never re-derived here.
"""
import dataclasses
from typing import List, Tuple

from .. import _C

Span = Tuple[int, int]  # absolute indices [lo, hi), half-open


@dataclasses.dataclass(frozen=True)
class RankPlan:
    slab: Span           # the queries (and keys) the rank owns
    keys: Span           # the keys its queries see
    grid: Span           # the local grid it computes on (holds keys and slab)
    receives: Tuple[Tuple[int, Span], ...]  # (owner, span) of each halo piece

    @property
    def halo_tokens(self):
        return sum(hi - lo for _, (lo, hi) in self.receives)


@dataclasses.dataclass(frozen=True)
class Layout:
    length: int                  # the whole axis
    ranks: Tuple[RankPlan, ...]  # one per rank, in rank order

    def sends(self, rank) -> List[Tuple[int, Span]]:
        """(receiver, span) of each piece of `rank`'s slab another rank needs."""
        return [(other, span) for other, plan in enumerate(self.ranks)
                for owner, span in plan.receives if owner == rank]


def _intersect(a: Span, b: Span) -> Span:
    return max(a[0], b[0]), min(a[1], b[1])


def layout(sizes, axis):
    """Layout of an axis split into consecutive slabs of `sizes` tokens (rank
    order), with window parameters axis = (kernel_size, stride, dilation,
    is_causal). Raises ValueError naming the argument when the whole axis
    breaks a window rule."""
    length = sum(sizes)
    offsets = [sum(sizes[:r]) for r in range(len(sizes))]
    slabs = [(o, o + n) for o, n in zip(offsets, sizes)]
    plans = []
    for rank, (lo, hi) in enumerate(slabs):
        (key_lo, key_hi), (grid_lo, grid_hi) = _C.slab_plan(length, axis, lo, hi - 1)
        keys, grid = (key_lo, key_hi + 1), (grid_lo, grid_hi + 1)
        if lo == hi:  # an empty slab computes nothing and needs nothing
            keys = grid = (lo, lo)
        receives = []
        for owner, other in enumerate(slabs):
            piece = _intersect(keys, other)
            if owner != rank and piece[0] < piece[1]:
                receives.append((owner, piece))
        plans.append(RankPlan((lo, hi), keys, grid, tuple(receives)))
    return Layout(length, tuple(plans))
