"""gna.profile: time gna against dense attention and FlexAttention.

    python -m gna.profile --shape 256x256 --window 80x80 --heads 24 --dim 128
    python -m gna.profile ... --backward          # forward + backward
    python -m gna.profile ... --json              # JSON instead of the table
    python -m gna.profile ... --sweep-window 8:128:8 --plot sweep.png

The problem comes from flags like `gna bench`'s. Each implementation runs
the same problem on the same device: gna (backend auto or --backend),
FlexAttention with gna's neighborhood as its mask, and PyTorch SDPA over all
tokens (dense: cuDNN and flash on a GPU, flash and math on the CPU). Rows
that cannot run say why. Times are medians of back-to-back calls: between
CUDA events on a GPU, by the wall clock on the CPU. Speedup is the fastest
dense row's time over the row's time.

Needs torch; the plot needs matplotlib, the progress bar uses tqdm when
present (`pip install gna[profile]` brings both).
"""
from ._flex import neighborhood_mask_mod
from ._timing import time_ms


def main(argv=None):
    from ._main import main as run
    return run(argv)


__all__ = ["main", "neighborhood_mask_mod", "time_ms"]
