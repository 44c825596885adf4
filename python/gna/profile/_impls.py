"""The implementations the profiler times. Each builder returns a forward
function of its layout's input tuple and a note, or raises Unavailable with
the reason it cannot run the problem."""
import warnings

import torch
import torch.nn.functional as F

from .. import functional
from ._flex import neighborhood_mask_mod

# Names, in table order; the dense ones attend to every token (SDPA).
DENSE = ("cudnn", "flash", "math")
ALL = ("gna", "flex") + DENSE


class Unavailable(Exception):
    """This implementation cannot run the problem here; the message says why."""


def default_impls(device):
    # The math backend materializes every score: too big for GPU problems.
    if device.type == "cuda":
        return ("gna", "flex", "cudnn", "flash")
    return ("gna", "flex", "flash", "math")


def _gna(problem, options):
    notes = []
    for backward in (False, True) if options.backward else (False,):
        name, reason = problem.gna_backend(options.backend, backward)
        if reason:
            raise Unavailable(reason)
        notes.append(name)
    note = notes[0] if len(set(notes)) == 1 else f"{notes[0]} fwd, {notes[1]} bwd"

    def forward(q, k, v, xk, xv):
        return functional.neighborhood_attention(
            q, k, v, problem.window, problem.stride, problem.dilation, problem.causal,
            additional_keys=xk, additional_values=xv, backend=options.backend)
    return forward, note


def _gqa(problem):
    # SDPA and FlexAttention take grouped heads only when asked.
    return {"enable_gqa": True} if problem.kv_heads != problem.heads else {}


def _sdpa(which):
    def build(problem, options):
        from torch.nn.attention import SDPBackend, sdpa_kernel
        if which == "cudnn" and torch.device(problem.device).type != "cuda":
            raise Unavailable("cuDNN attention runs on CUDA tensors only")
        backend = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
                   "math": SDPBackend.MATH}[which]
        kwargs = _gqa(problem)

        def forward(q, k, v):
            with sdpa_kernel([backend]):
                return F.scaled_dot_product_attention(q, k, v, **kwargs)
        return forward, "dense: every token"
    return build


def _flex(problem, options):
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    except ImportError as e:
        raise Unavailable(f"this torch has no FlexAttention ({e})")
    mask_mod = neighborhood_mask_mod(problem.shape, problem.window, problem.stride,
                                     problem.dilation, problem.causal, problem.extra_kv)
    n = problem.tokens
    on_gpu = torch.device(problem.device).type == "cuda"
    # Compiling the mask builder keeps a GPU-sized mask from being materialized.
    mask = create_block_mask(mask_mod, None, None, n, n + problem.extra_kv,
                             device=problem.device, **({"_compile": True} if on_gpu else {}))
    if options.compile:
        # Each window is a new mask_mod, hence a recompile; past dynamo's
        # cache limit it would silently run eager, so start afresh.
        torch._dynamo.reset()
    attend = torch.compile(flex_attention) if options.compile else flex_attention
    if not options.compile:  # asked for: no need to be told it is unfused
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
    kwargs = _gqa(problem)

    def forward(q, k, v):
        return attend(q, k, v, block_mask=mask, **kwargs)
    return forward, "compiled, same mask" if options.compile else "eager, same mask"


BUILDERS = {"gna": _gna, "flex": _flex, "cudnn": _sdpa("cudnn"), "flash": _sdpa("flash"),
            "math": _sdpa("math")}


def layout(name):
    """'gna' (heads-last, separate additional KV) or 'dense' ([B, H, N, D])."""
    return "gna" if name == "gna" else "dense"


def with_backward(forward, grad_output):
    """forward, then the gradients of every input that requires them."""
    def run(*inputs):
        output = forward(*inputs)
        leaves = [t for t in inputs if t is not None and t.requires_grad]
        torch.autograd.grad(output, leaves, grad_output)
    return run
