"""gna.distributed on GPUs with NCCL: world size 1 (one GPU: the result is
gna.naNd's, bit for bit, when one chunk makes the call the same) and world
size 2 (two GPUs: random problems against the whole grid on one GPU). Both
skip, with the reason, on machines without enough GPUs."""
import datetime
import random

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import gna
import gna.distributed as gd
from conftest import cuda_skip_reason
from test_distributed import random_case, run_case


def _skip_reason(gpus):
    reason = cuda_skip_reason()
    if reason is None and not dist.is_nccl_available():
        reason = "torch without NCCL"
    if reason is None and torch.cuda.device_count() < gpus:
        reason = f"needs {gpus} GPUs, found {torch.cuda.device_count()}"
    return reason


def _init(rank, world, store):
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"file://{store}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=300),
                            device_id=torch.device("cuda", rank))


def _one_gpu(rank, store):
    _init(rank, 1, store)
    try:
        g = torch.Generator(device="cuda").manual_seed(0)
        for shape, window in (((6, 12, 16), dict(kernel_size=(3, 5, 7))),
                              ((8, 16, 16), dict(kernel_size=(4, 8, 8), stride=(2, 4, 8),
                                                 dilation=(2, 1, 1), is_causal=(True, False,
                                                                               False)))):
            q, k, v = (torch.randn(2, *shape, 4, 128, device="cuda", generator=g,
                                   dtype=torch.bfloat16).requires_grad_() for _ in range(3))
            want, want_lse = gna.na3d(q, k, v, **window, return_lse=True)
            got, got_lse = gd.na3d(q, k, v, **window, return_lse=True, chunks=1)
            assert torch.equal(got, want) and torch.equal(got_lse, want_lse), window
            torch.use_deterministic_algorithms(True)  # the sm90 dQ sums in one order
            grads = torch.autograd.grad(want.float().square().sum(), (q, k, v))
            mine = torch.autograd.grad(got.float().square().sum(), (q, k, v))
            torch.use_deterministic_algorithms(False)
            for a, b in zip(mine, grads):
                assert torch.equal(a, b), window
            # Four chunks: four calls instead of one, the same heads each.
            got = gd.na3d(q, k, v, **window, chunks=4)
            torch.testing.assert_close(got, want, atol=2e-2, rtol=2e-2)
        rng = random.Random(7)
        for i in range(20):
            run_case(random_case(rng, 1, [None]), i, "cuda", torch.float32, 1e-4)
        _fused_cases()
    finally:
        dist.destroy_process_group()


def _fused_cases():
    """bfloat16, head dim 64: the sm90 kernels (where built) on every rank's
    local grid, against the whole grid on one GPU, every shard axis."""
    g = torch.Generator(device="cuda").manual_seed(1)
    windows = (dict(kernel_size=(5, 7, 7)),
               dict(kernel_size=(4, 6, 8), stride=(2, 3, 8), is_causal=(True, False, False)),
               dict(kernel_size=(3, 4, 4), dilation=(2, 2, 1)))
    for window in windows:
        for axis in range(3):
            full = [torch.randn(1, 8, 12, 16, 4, 64, device="cuda", dtype=torch.bfloat16,
                                generator=g).requires_grad_() for _ in range(3)]
            want = gna.na3d(*full, **window)
            grads = torch.autograd.grad(want.float().square().sum(), full)
            mine = [gd.shard(t, axis).detach().requires_grad_() for t in full]
            got = gd.na3d(*mine, **window, shard_axis=axis)
            got_grads = torch.autograd.grad(got.float().square().sum(), mine)
            pairs = [("output", got, gd.shard(want, axis))]
            pairs += [(n, x, gd.shard(y, axis)) for n, x, y in zip("qkv", got_grads, grads)]
            for name, a, b in pairs:
                torch.testing.assert_close(a.float(), b.float(), atol=5e-2, rtol=5e-2,
                                           msg=lambda m: f"{name} {window} axis {axis}: {m}")


def _two_gpus(rank, store):
    _init(rank, 2, store)
    try:
        rng = random.Random(11)
        for i in range(30):
            run_case(random_case(rng, 2, [None]), i, "cuda", torch.float32, 1e-4)
        _fused_cases()
    finally:
        dist.destroy_process_group()


def test_world_size_one_is_gna(tmp_path):
    if _skip_reason(1):
        pytest.skip(_skip_reason(1))
    mp.spawn(_one_gpu, args=(str(tmp_path / "store"),), nprocs=1)


def test_two_gpus_match_one(tmp_path):
    if _skip_reason(2):
        pytest.skip(_skip_reason(2))
    mp.spawn(_two_gpus, args=(str(tmp_path / "store"),), nprocs=2)
