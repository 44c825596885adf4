"""gna: generalized neighborhood attention (sliding-window attention over 1-D,
2-D and 3-D token grids with per-axis window, stride, dilation and causality).

Works on torch tensors (CPU or CUDA; autograd and torch.compile through the
custom ops gna::na_forward / gna::na_backward and gna::attention_forward /
gna::attention_backward) and on numpy arrays. The public surface is NATTEN
0.21's (`import gna as natten`: docs/natten.md) plus gna's own names.
"""
from ._C import backend_names, cuda_device_count
from ._C import version as _library_version
from . import configs as _configs
from . import context as _context
from .configs import *  # noqa: F401,F403  (NATTEN's get_configs_for_* queries)
from .context import *  # noqa: F401,F403  (NATTEN's global switches)
from .functional import (attention, merge_attentions, na1d, na2d, na3d,
                         neighborhood_attention)
from ._varlen import check_varlen_errors

# The C++ library's own number, so Python, C++ and the CLI cannot disagree.
__version__ = _library_version()

# NATTEN's flag for "the compiled kernels are there". gna's CPU kernels
# always are; NATTEN code reads this flag to decide whether its CUDA kernels
# can run, so it means the same here: this build has gna's CUDA backends.
HAS_LIBNATTEN = "cuda-generic" in backend_names()

__all__ = ["attention", "merge_attentions", "na1d", "na2d", "na3d",
           "neighborhood_attention", "check_varlen_errors", "backend_names",
           "cuda_device_count", "HAS_LIBNATTEN",
           "__version__", *_configs.__all__, *_context.__all__]

try:
    import torch  # noqa: F401
except ImportError:  # numpy-only installs: no modules, no torch ops
    pass
else:
    import os as _os
    if "GNA_NUM_THREADS" not in _os.environ:
        # Work on CPU tensors uses as many threads as torch's own ops do.
        _C.set_thread_source(torch.get_num_threads)
    from . import _torch_ops  # noqa: F401  (registers the custom ops)
    from .modules import (NeighborhoodAttention1D, NeighborhoodAttention2D,
                          NeighborhoodAttention3D)
    __all__ += ["NeighborhoodAttention1D", "NeighborhoodAttention2D",
                "NeighborhoodAttention3D"]
