"""Strong scaling of one sharded neighborhood attention layer (gna.distributed).

    python bench/distributed.py                            # one GPU: world size 1
    torchrun --nproc_per_node 2 bench/distributed.py       # two GPUs

Defaults: the issue-10 problem, a 30x48x80 grid, window 18x24x24, 24 heads,
head dim 128, bfloat16, batch 1, once with stride 1 and once with stride
16x8x8, sharded along each spatial axis in turn. Every rank builds the whole
problem (same seed), times gna.na3d on it alone on its GPU (the one-GPU
baseline), checks its slab of the sharded result against it, then times the
sharded layer (forward, forward+backward; the slowest rank counts). Prints a
table and, with --out, writes JSON. Also prints, per rank, the halo bytes it
receives against what an all-gather of K and V would move, and the rows it
computes (local grid / slab: the bound on scaling, docs/distributed.md).

Without a GPU (or without NCCL) it says so and exits 0. --device cpu runs
the same steps on CPUs with gloo, on a problem you make small: a smoke test
of the script, not a measurement.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist


def parse_axes(text):
    return tuple(int(v) for v in text.split("x"))


def arguments():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", type=parse_axes, default=(30, 48, 80))
    p.add_argument("--window", type=parse_axes, default=(18, 24, 24))
    p.add_argument("--strides", nargs="+", type=parse_axes, default=[(1, 1, 1), (16, 8, 8)])
    p.add_argument("--shard-axes", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--heads", type=int, default=24)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--dtype", choices=["bfloat16", "float16"], default="bfloat16")
    p.add_argument("--chunks", type=int, default=None, help="kv head chunks (default 4)")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out", help="JSON file for the results (written by rank 0)")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    return p.parse_args()


def skip_reason():
    if not torch.cuda.is_available():
        return "no CUDA device"
    if not dist.is_nccl_available():
        return "torch without NCCL"
    import gna
    if gna.cuda_device_count() == 0:
        return "gna was built without CUDA backends"
    return None


def init(device):
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29517")
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    if device == "cpu":
        dist.init_process_group("gloo")
        return
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    dist.init_process_group("nccl", device_id=torch.device("cuda", local))


def timed(fn, iters, warmup, device):
    """Median milliseconds of fn(), the slowest rank's."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        dist.barrier()
        if device == "cpu":
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
            continue
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    t = torch.tensor([statistics.median(times)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.item()


def run(a, stride, shard_axis, world, me):
    import gna
    import gna.distributed as gd

    dtype = getattr(torch, a.dtype)
    g = torch.Generator(device=a.device).manual_seed(0)
    full = [torch.randn(a.batch, *a.shape, a.heads, a.dim, device=a.device, dtype=dtype,
                        generator=g) for _ in range(3)]
    window = dict(kernel_size=a.window, stride=stride)
    sizes = gd.slab_sizes(a.shape[shard_axis], world)
    mine = [gd.shard(t, shard_axis, sizes).contiguous() for t in full]
    leaves = [t.clone().requires_grad_() for t in full]
    slabs = [t.clone().requires_grad_() for t in mine]

    def one_fwd():
        with torch.no_grad():
            gna.na3d(*full, **window)

    def one_train():
        gna.na3d(*leaves, **window).sum().backward()

    def dist_fwd():
        with torch.no_grad():
            gd.na3d(*mine, **window, shard_axis=shard_axis, sizes=sizes, chunks=a.chunks)

    def dist_train():
        gd.na3d(*slabs, **window, shard_axis=shard_axis, sizes=sizes,
                chunks=a.chunks).sum().backward()

    # Correctness: this rank's slab against the whole grid on one GPU.
    want = gd.shard(gna.na3d(*full, **window), shard_axis, sizes)
    got = gd.na3d(*mine, **window, shard_axis=shard_axis, sizes=sizes, chunks=a.chunks)
    diff = torch.tensor([(got.float() - want.float()).abs().max().item(),
                         float(not torch.equal(got, want))], device=a.device)
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)

    row = dict(shape=a.shape, window=a.window, stride=stride, shard_axis=shard_axis,
               world=world, heads=a.heads, dim=a.dim, dtype=a.dtype, batch=a.batch,
               max_abs_diff_vs_one_gpu=diff[0].item(), identical=diff[1].item() == 0)
    row["one_gpu_fwd_ms"] = timed(one_fwd, a.iters, a.warmup, a.device)
    row["one_gpu_fwd_bwd_ms"] = timed(one_train, a.iters, a.warmup, a.device)
    row["sharded_fwd_ms"] = timed(dist_fwd, a.iters, a.warmup, a.device)
    row["sharded_fwd_bwd_ms"] = timed(dist_train, a.iters, a.warmup, a.device)
    row["speedup_fwd"] = row["one_gpu_fwd_ms"] / row["sharded_fwd_ms"]
    row["speedup_fwd_bwd"] = row["one_gpu_fwd_bwd_ms"] / row["sharded_fwd_bwd_ms"]

    # What crosses the wire: K and V halo rows against all-gathering K and V.
    axis = (a.window[shard_axis], stride[shard_axis], 1, False)
    layout = gd.halo_layout(sizes, axis)
    per_row = a.batch * a.heads * a.dim * 2 * full[0].element_size()  # K and V
    for other in range(3):
        if other != shard_axis:
            per_row *= a.shape[other]
    row["ranks"] = [dict(slab=p.slab, keys=p.keys, grid=p.grid,
                         halo_bytes=p.halo_tokens * per_row,
                         all_gather_bytes=(a.shape[shard_axis] - (p.slab[1] - p.slab[0]))
                         * per_row,
                         rows_computed_per_slab_row=(p.grid[1] - p.grid[0])
                         / max(p.slab[1] - p.slab[0], 1))
                    for p in layout.ranks]
    del full, mine, leaves, slabs
    if a.device == "cuda":
        torch.cuda.empty_cache()
    return row


def main():
    a = arguments()
    reason = skip_reason() if a.device == "cuda" else None
    if reason:
        print(f"bench/distributed.py: skipped: {reason} (needs one GPU, or two under "
              "torchrun --nproc_per_node 2)")
        return 0
    init(a.device)
    world, me = dist.get_world_size(), dist.get_rank()
    rows = []
    for stride in a.strides:
        for shard_axis in a.shard_axes:
            row = run(a, stride, shard_axis, world, me)
            rows.append(row)
            if me == 0:
                worst = max(r["rows_computed_per_slab_row"] for r in row["ranks"])
                halo = max(r["halo_bytes"] for r in row["ranks"]) / 2**20
                gather = max(r["all_gather_bytes"] for r in row["ranks"]) / 2**20
                print(f"stride {'x'.join(map(str, stride))} axis {shard_axis} world {world}: "
                      f"fwd {row['one_gpu_fwd_ms']:.2f} -> {row['sharded_fwd_ms']:.2f} ms "
                      f"({row['speedup_fwd']:.2f}x), fwd+bwd {row['one_gpu_fwd_bwd_ms']:.2f} "
                      f"-> {row['sharded_fwd_bwd_ms']:.2f} ms ({row['speedup_fwd_bwd']:.2f}x); "
                      f"halo {halo:.1f} MiB/rank vs all-gather {gather:.1f} MiB; rows "
                      f"computed {worst:.2f}x the slab; identical to one GPU: "
                      f"{row['identical']} (max |diff| {row['max_abs_diff_vs_one_gpu']:.3g})",
                      flush=True)
    if me == 0 and a.out:
        with open(a.out, "w") as f:
            json.dump(dict(command=" ".join(sys.argv), rows=rows), f, indent=1)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
