"""Shared fixtures: the device parametrization, tolerances, random problems."""
import dataclasses
import random

import pytest
import torch

import gna

# Absolute and relative tolerance of outputs against the float64 oracle.
# float64 runs on the CPU reference, which accumulates in float64, so only
# the final rounding differs; every other dtype runs on a backend that
# accumulates in float32 (cpu, CUDA) and rounds P for half types (CUDA).
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-4, torch.float16: 1e-2,
             torch.bfloat16: 5e-2}


def tolerance(dtype, device):
    return TOLERANCE[dtype]


def cpu_backend(dtype):
    """The backend `auto` picks for CPU tensors of `dtype`."""
    fast = "cpu" in gna.backend_names() and dtype not in (torch.float64, "float64")
    return "cpu" if fast else "reference"


def cuda_skip_reason():
    if not torch.cuda.is_available():
        return "no CUDA device"
    if gna.cuda_device_count() == 0:
        return "gna was built without CUDA backends"
    return None


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    if request.param == "cuda" and cuda_skip_reason():
        pytest.skip(cuda_skip_reason())
    return request.param


@pytest.fixture
def cuda():
    """For tests that only mean something on a GPU."""
    if cuda_skip_reason():
        pytest.skip(cuda_skip_reason())
    return "cuda"


def float_dtypes(device):
    """dtypes every backend of the device runs (CPU float64 is for gradcheck)."""
    return [torch.float16, torch.bfloat16, torch.float32]


@dataclasses.dataclass
class Problem:
    spatial: tuple
    kernel_size: tuple
    stride: tuple
    dilation: tuple
    is_causal: tuple
    batch: int = 1
    heads: int = 1
    kv_heads: int = 1
    dim: int = 8
    dim_v: int = 8
    extra: int = 0  # additional KV tokens (0: none)
    scale: float = None
    layouts: dict = dataclasses.field(default_factory=dict)  # tensor name -> layout

    @property
    def rank(self):
        return len(self.spatial)

    def window(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride,
                    dilation=self.dilation, is_causal=self.is_causal)


MAX_EXTENT = {1: 24, 2: 9, 3: 5}
LAYOUTS = ("contiguous", "transposed", "sliced", "expanded")


def random_axis(rng, n):
    """(kernel_size, stride, dilation, is_causal) valid for an axis of length n."""
    kernel = rng.randint(1, n)
    dilation = rng.randint(1, n // kernel)
    stride = rng.choice([1, kernel, rng.randint(1, kernel)])
    return kernel, stride, dilation, rng.random() < 0.3


def random_problem(seed, device="cpu"):
    rng = random.Random(seed)
    rank = rng.choice([1, 2, 3])
    spatial = tuple(rng.randint(1, MAX_EXTENT[rank]) for _ in range(rank))
    axes = [random_axis(rng, n) for n in spatial]
    kv_heads = rng.choice([1, 2])
    batch = rng.choice([1, 2])
    dims = [16, 32, 64] if device == "cuda" else [1, 3, 4, 8, 13]
    layouts = {name: rng.choice(LAYOUTS if name != "query" else LAYOUTS[:3])
               for name in ("query", "key", "value", "additional_keys", "additional_values")}
    return Problem(
        spatial=spatial,
        kernel_size=tuple(a[0] for a in axes), stride=tuple(a[1] for a in axes),
        dilation=tuple(a[2] for a in axes), is_causal=tuple(a[3] for a in axes),
        batch=batch, kv_heads=kv_heads, heads=kv_heads * rng.choice([1, 2, 3]),
        dim=rng.choice(dims), dim_v=rng.choice(dims),
        extra=rng.choice([0, 0, 1, 3]), scale=rng.choice([None, None, 0.3]),
        layouts=layouts)


def _with_layout(shape, layout, dtype, device, generator):
    """A random leaf tensor of `shape` whose memory layout is `layout`."""
    def randn(s):
        return torch.randn(s, generator=generator, dtype=torch.float64).to(device, dtype)

    batch, *middle, heads, dim = shape
    if layout == "transposed":  # heads-first memory, viewed heads-last
        t = randn((batch, heads, *middle, dim)).movedim(1, -2)
    elif layout == "sliced":  # every other token of a longer grid, part of a wider dim
        base = randn((batch, 2 * middle[0], *middle[1:], heads, dim + 3))
        t = base[:, ::2, ..., 1:dim + 1]
    elif layout == "expanded" and batch > 1:  # one batch entry broadcast, stride 0
        t = randn((1, *middle, heads, dim)).expand(shape)
    else:
        t = randn(shape)
    return t.requires_grad_()


def make_inputs(problem, dtype, device, seed=0):
    """Leaf tensors query, key, value (and additional KV) in the problem's layouts."""
    generator = torch.Generator().manual_seed(seed)
    p = problem
    shapes = {"query": (p.batch, *p.spatial, p.heads, p.dim),
              "key": (p.batch, *p.spatial, p.kv_heads, p.dim),
              "value": (p.batch, *p.spatial, p.kv_heads, p.dim_v)}
    if p.extra:
        shapes["additional_keys"] = (p.batch, p.extra, p.kv_heads, p.dim)
        shapes["additional_values"] = (p.batch, p.extra, p.kv_heads, p.dim_v)
    return {name: _with_layout(shape, p.layouts.get(name, "contiguous"), dtype, device,
                               generator)
            for name, shape in shapes.items()}


def pytest_configure(config):
    # torch.compile's internals warn about their own deprecated APIs.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:torch.*")
