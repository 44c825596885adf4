"""The profiled problem: sizes, window, dtype and device, its figures from
the C++ core, and its random inputs in each implementation's layout."""
import dataclasses
import math

import torch

from .. import _C

DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32,
          "f64": torch.float64}


@dataclasses.dataclass(frozen=True)
class Problem:
    shape: tuple
    window: tuple
    stride: tuple
    dilation: tuple
    causal: tuple
    heads: int
    kv_heads: int
    dim: int
    dim_v: int
    batch: int = 1
    extra_kv: int = 0
    dtype: str = "f32"
    device: str = "cpu"

    @property
    def tokens(self):
        return math.prod(self.shape)

    @property
    def torch_dtype(self):
        return DTYPES[self.dtype]

    def spec(self):
        s = _C.ProblemSpec()
        s.shape = list(self.shape)
        s.axes = list(zip(self.window, self.stride, self.dilation, self.causal))
        s.batch, s.heads, s.kv_heads = self.batch, self.heads, self.kv_heads
        s.head_dim, s.head_dim_v, s.extra_kv = self.dim, self.dim_v, self.extra_kv
        s.dtype = str(self.torch_dtype).replace("torch.", "")
        return s

    def figures(self):
        """FLOPs (neighborhood and dense) and the sm90 simulator's figures;
        raises ValueError naming the argument for a problem gna rejects."""
        return _C.simulate(self.spec())

    def gna_backend(self, backend, backward):
        """(name, None) of the gna backend that runs this pass, or (None, reason)."""
        device = torch.device(self.device)
        found = _C.backends(self.spec(), backward, device.type, device.index or 0)
        if backend != "auto":
            found = [(n, r) for n, r in found if n == backend]
            if not found:
                return None, f"backend {backend!r} is not compiled in (have: {_C.backend_names()})"
        for name, reason in found:
            if not reason:
                return name, None
        return None, "; ".join(f"{n}: {r}" for n, r in found)

    def with_window(self, size):
        """The problem with window `size` on every axis, clamped to each
        axis (extent // dilation), its stride clamped to the window."""
        window = tuple(min(size, n // d) for n, d in zip(self.shape, self.dilation))
        stride = tuple(min(s, w) for s, w in zip(self.stride, window))
        return dataclasses.replace(self, window=window, stride=stride)


def make_inputs(problem, rotation, requires_grad, seed=0):
    """`rotation` input sets. Each set holds gna's heads-last tensors
    (q, k, v, additional k, v or None) and, for the peers, [B, H, N, D]
    copies with the additional tokens appended to the keys."""
    gen = torch.Generator(device=problem.device).manual_seed(seed)
    b, n, nx = problem.batch, problem.tokens, problem.extra_kv

    def rand(*size):
        t = torch.randn(*size, device=problem.device, dtype=problem.torch_dtype, generator=gen)
        return t.requires_grad_(requires_grad)

    def heads_first(t, tokens):
        t = t.detach().reshape(b, tokens, t.shape[-2], t.shape[-1]).transpose(1, 2)
        return t.contiguous().requires_grad_(requires_grad)

    sets = []
    for _ in range(rotation):
        q = rand(b, *problem.shape, problem.heads, problem.dim)
        k = rand(b, *problem.shape, problem.kv_heads, problem.dim)
        v = rand(b, *problem.shape, problem.kv_heads, problem.dim_v)
        xk = rand(b, nx, problem.kv_heads, problem.dim) if nx else None
        xv = rand(b, nx, problem.kv_heads, problem.dim_v) if nx else None
        dense_k, dense_v = k, v
        if nx:
            dense_k = torch.cat([k.detach().reshape(b, n, *k.shape[-2:]), xk.detach()], 1)
            dense_v = torch.cat([v.detach().reshape(b, n, *v.shape[-2:]), xv.detach()], 1)
        sets.append({"gna": (q, k, v, xk, xv),
                     "dense": (heads_first(q, n), heads_first(dense_k, n + nx),
                               heads_first(dense_v, n + nx))})
    return sets
