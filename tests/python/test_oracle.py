"""The oracle itself against facts of docs/semantics.md and against torch's own
scaled_dot_product_attention, so a wrong mask cannot pass as a right one."""
import random

import pytest
import torch
import torch.nn.functional as F

from mask_attention import attention, axis_mask, neighborhood_mask


@pytest.mark.parametrize("seed", range(20))
def test_non_causal_sees_exactly_k_keys_in_its_group(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 30)
    k = rng.randint(1, n)
    d = rng.randint(1, n // k)
    s = rng.randint(1, k)
    mask = axis_mask(n, k, s, d, False)
    assert (mask.sum(1) == k).all()
    i = torch.arange(n)
    assert not (mask & (i[:, None] % d != i[None, :] % d)).any()


@pytest.mark.parametrize("seed", range(20))
def test_causal_never_sees_the_future(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 30)
    k = rng.randint(1, n)
    d = rng.randint(1, n // k)
    s = rng.randint(1, k)
    mask = axis_mask(n, k, s, d, True)
    assert not torch.triu(mask, diagonal=1).any()
    assert mask.diagonal().all() and (mask.sum(1) <= k).all()


def test_full_window_is_everything_and_causal_full_window_is_lower_triangle():
    assert axis_mask(7, 7, 1, 1, False).all()
    assert torch.equal(axis_mask(7, 7, 1, 1, True), torch.ones(7, 7, dtype=torch.bool).tril())


def test_stride_equal_window_is_blocks():
    mask = axis_mask(8, 4, 4, 1, False)
    blocks = torch.block_diag(torch.ones(4, 4), torch.ones(4, 4)).bool()
    assert torch.equal(mask, blocks)


def test_even_window_reaches_further_left():
    # k = 4: r = 2 left, 1 right in the interior.
    assert axis_mask(9, 4, 1, 1, False)[4].nonzero().flatten().tolist() == [2, 3, 4, 5]


def test_window_shifts_inward_at_borders():
    mask = axis_mask(9, 5, 1, 1, False)
    assert mask[0].nonzero().flatten().tolist() == [0, 1, 2, 3, 4]
    assert mask[8].nonzero().flatten().tolist() == [4, 5, 6, 7, 8]


def test_axes_combine_by_and():
    mask = neighborhood_mask((3, 4), (3, 1), (1, 1), (1, 1), (False, False))
    assert mask.shape == (12, 12)
    # kernel 1 on axis 1: a token only sees keys in its own column.
    assert mask[5].nonzero().flatten().tolist() == [1, 5, 9]


@pytest.mark.parametrize("is_causal", [False, True])
def test_full_window_matches_sdpa(is_causal):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 10, 3, 5, generator=g, dtype=torch.float64) for _ in range(3))
    out, _ = attention(q, k, v, (10,), (1,), (1,), (is_causal,))
    expected = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=is_causal)
    torch.testing.assert_close(out, expected.transpose(1, 2))
