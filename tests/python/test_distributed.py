"""gna.distributed on CPU: gloo process groups of 2, 3 and 4 ranks
(torch.multiprocessing), each running many random problems, forward and
backward, against gna on the whole grid in one process.

One process group per world size (starting one costs seconds); every rank
draws the same random problems from the same seed and checks its own slab.
"""
import datetime
import random

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import gna
import gna.distributed as gd

CASES = {2: 40, 3: 30, 4: 25}
TOL = 1e-5


def random_case(rng, world, backends=(None, None, "reference")):
    rank = rng.choice([1, 2, 3])
    axis = rng.randrange(rank)
    # Slabs of 0..6 tokens, often thinner than the halo; at least one token.
    sizes = [rng.choice([0, 1, 1, 2, 3, 5, 6]) if rng.random() < 0.8 else rng.randint(1, 9)
             for _ in range(world)]
    if sum(sizes) == 0:
        sizes[rng.randrange(world)] = 1
    extents = [rng.randint(1, {1: 6, 2: 5, 3: 3}[rank]) for _ in range(rank)]
    extents[axis] = sum(sizes)
    window = {"kernel_size": [], "stride": [], "dilation": [], "is_causal": []}
    for n in extents:
        k = rng.randint(1, n) if rng.random() < 0.6 else max(1, n // rng.choice([1, 2]))
        d = rng.randint(1, n // k)
        s = rng.choice([1, k, rng.randint(1, k)])
        for name, v in zip(window, (k, s, d, rng.random() < 0.35)):
            window[name].append(v)
    kv = rng.choice([1, 2, 3])
    return dict(rank=rank, axis=axis, sizes=sizes, extents=extents, window=window,
                batch=rng.choice([1, 2]), kv=kv, heads=kv * rng.choice([1, 2]),
                dim=rng.choice([4, 8]), dim_v=rng.choice([4, 8]),
                extra=rng.choice([0, 0, 1, 3]), scale=rng.choice([None, 0.3]),
                chunks=rng.randint(1, kv), return_lse=rng.random() < 0.5,
                pass_sizes=rng.random() < 0.5,
                backend=rng.choice(backends))


def run_case(c, seed, device="cpu", dtype=torch.float32, tol=TOL):
    """One random problem: this rank's slab of forward and backward against
    gna on the whole grid (computed by every rank itself)."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(device, dtype)

    grid = (c["batch"], *c["extents"])
    full = {"query": randn(*grid, c["heads"], c["dim"]),
            "key": randn(*grid, c["kv"], c["dim"]),
            "value": randn(*grid, c["kv"], c["dim_v"])}
    if c["extra"]:
        full["additional_keys"] = randn(c["batch"], c["extra"], c["kv"], c["dim"])
        full["additional_values"] = randn(c["batch"], c["extra"], c["kv"], c["dim_v"])
    w_out = randn(*grid, c["heads"], c["dim_v"])
    w_lse = randn(*grid, c["heads"])
    kwargs = dict(c["window"], scale=c["scale"], return_lse=True, backend=c["backend"])

    whole = {n: t.clone().requires_grad_() for n, t in full.items()}
    out, lse = gna.neighborhood_attention(**whole, **kwargs)
    loss = (out * w_out).sum() + ((lse * w_lse).sum() if c["return_lse"] else 0)
    loss.backward()

    axis, sizes = c["axis"], c["sizes"]

    def mine(t):
        return gd.shard(t, axis, sizes)

    parts = {n: (t if n.startswith("additional") else mine(t)).clone().requires_grad_()
             for n, t in full.items()}
    kwargs["return_lse"] = c["return_lse"]
    got = gd.neighborhood_attention(**parts, **kwargs, shard_axis=axis, chunks=c["chunks"],
                                    sizes=sizes if c["pass_sizes"] else None)
    got_out, got_lse = got if c["return_lse"] else (got, None)
    loss = (got_out * mine(w_out)).sum()
    if c["return_lse"]:
        loss = loss + (got_lse * mine(w_lse)).sum()
    loss.backward()

    checks = [("output", got_out, mine(out)), ("query.grad", parts["query"].grad,
                                               mine(whole["query"].grad)),
              ("key.grad", parts["key"].grad, mine(whole["key"].grad)),
              ("value.grad", parts["value"].grad, mine(whole["value"].grad))]
    if c["return_lse"]:
        checks.append(("lse", got_lse, mine(lse)))
    if c["extra"]:
        checks += [(n + ".grad", parts[n].grad, whole[n].grad)
                   for n in ("additional_keys", "additional_values")]
    for name, a, b in checks:
        assert a is not None, f"{name} missing in case {c}"
        torch.testing.assert_close(a, b, atol=tol, rtol=tol,
                                   msg=lambda m: f"{name} of case {c}: {m}")
    return _halo_shape(c)


def _halo_shape(c):
    """(a halo holds another rank's whole slab, a halo reaches past the
    nearest other slab on one side), for the coverage counts of worker()."""
    w, a = c["window"], c["axis"]
    lay = gd.halo_layout(c["sizes"], (w["kernel_size"][a], w["stride"][a], w["dilation"][a],
                                      w["is_causal"][a]))
    whole = several = False
    for me, plan in enumerate(lay.ranks):
        owners = [owner for owner, _ in plan.receives]
        whole |= any(span == lay.ranks[o].slab for o, span in plan.receives)
        several |= sum(o < me for o in owners) > 1 or sum(o > me for o in owners) > 1
    return whole, several


def check_errors():
    """Disagreeing ranks: every rank raises, naming the argument."""
    me = dist.get_rank()
    q = torch.randn(1, 4, 2, 4)

    def expect(fragment, **kwargs):
        args = dict(query=q, key=q, value=q, kernel_size=3)
        args.update(kwargs)
        with pytest.raises(ValueError, match=fragment):
            gd.na1d(**args)

    expect(r"kernel_size\[0\]", kernel_size=3 if me == 0 else 5)
    q3 = torch.randn(1, 4, 3, 4)
    expect(r"heads", query=q if me == 0 else q3, key=q if me == 0 else q3,
           value=q if me == 0 else q3)
    expect(r"the whole grid .*kernel_size", kernel_size=9)
    if me == 1:
        expect(r"shard_axis", shard_axis=1)
    else:
        expect(r"rank\(s\) \[1\] rejected")
    expect(r"sizes", sizes=[4, 4] if me == 0 else None)
    expect(r"sizes\[\d\] = \d but this rank", sizes=[5, 3])
    # The group is still usable, gather undoes shard (uneven slabs too), and
    # torch.compile runs around the call.
    full = torch.randn(2, 5, 7, 3, 4, generator=torch.Generator().manual_seed(5))
    for axis, sizes in ((1, [7, 0]), (0, [2, 3]), (1, None)):
        torch.testing.assert_close(gd.gather(gd.shard(full, axis, sizes), axis), full,
                                   rtol=0, atol=0)
    f = torch.compile(lambda a: gd.na1d(a * 2, a, a, 3) + 1, backend="eager")
    x = gd.shard(torch.randn(1, 8, 2, 4, generator=torch.Generator().manual_seed(3)), 0)
    torch.testing.assert_close(f(x), gd.na1d(x * 2, x, x, 3) + 1)


def worker(rank, world, store, seed):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank,
                            world_size=world, timeout=datetime.timedelta(seconds=120))
    try:
        rng = random.Random(seed)
        shapes = [run_case(random_case(rng, world), seed * 1000 + i)
                  for i in range(CASES[world])]
        # The cases must keep covering slabs thinner than the halo.
        assert sum(whole for whole, _ in shapes) >= 3
        assert world == 2 or sum(several for _, several in shapes) >= 3
        if world == 2:
            check_errors()
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("world", sorted(CASES))
def test_matches_whole_grid(world, tmp_path, monkeypatch):
    monkeypatch.setenv("GNA_NUM_THREADS", "1")  # 2 to 4 ranks share the CI machine's cores
    mp.spawn(worker, args=(world, str(tmp_path / "store"), 100 + world), nprocs=world)


def test_layout_halo_spans_several_ranks():
    # Slabs of one token, window 5: the middle rank needs two ranks each side.
    lay = gd.halo_layout([1, 1, 1, 1, 1], (5, 1, 1, False))
    assert lay.ranks[2].receives == ((0, (0, 1)), (1, (1, 2)), (3, (3, 4)), (4, (4, 5)))
    # Causal: keys only from the left, but the grid reaches the run's end.
    lay = gd.halo_layout([2, 2, 2], (3, 2, 1, True))
    assert [p.receives for p in lay.ranks] == [(), ((0, (1, 2)),), ((1, (3, 4)),)]


def test_slab_sizes():
    assert gd.slab_sizes(10, 3) == [4, 3, 3]
    with pytest.raises(ValueError, match="parts"):
        gd.slab_sizes(10, 0)
