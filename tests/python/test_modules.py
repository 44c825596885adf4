"""NeighborhoodAttention1D/2D/3D: shapes, backward, and equality with the
same computation written out by hand with the oracle."""
import pytest
import torch
import torch.nn.functional as F

import gna
import mask_attention
from conftest import tolerance

MODULES = {1: gna.NeighborhoodAttention1D, 2: gna.NeighborhoodAttention2D,
           3: gna.NeighborhoodAttention3D}
SPATIAL = {1: (11,), 2: (6, 7), 3: (3, 4, 6)}


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_module_matches_manual_computation(rank, device):
    torch.manual_seed(rank)
    kernel, dilation, causal = (3,) * rank, (1,) * (rank - 1) + (2,), (True,) + (False,) * (rank - 1)
    module = MODULES[rank](embed_dim=24, num_heads=3, kernel_size=kernel, stride=1,
                           dilation=dilation, is_causal=causal, qk_scale=0.25).to(device)
    x = torch.randn(2, *SPATIAL[rank], 24, device=device)
    y = module(x)
    assert y.shape == x.shape and y.device == x.device

    # By hand: qkv projection, split into heads, oracle attention, projection.
    w = {n: p.detach().cpu().double() for n, p in module.named_parameters()}
    qkv = F.linear(x.cpu().double(), w["qkv.weight"], w["qkv.bias"])
    q, k, v = qkv.reshape(2, *SPATIAL[rank], 3, 3, 8).unbind(-3)
    attn, _ = mask_attention.attention(q, k, v, kernel, (1,) * rank, dilation, causal,
                                       scale=0.25)
    expected = F.linear(attn.reshape(2, *SPATIAL[rank], 24), w["proj.weight"], w["proj.bias"])
    tol = 10 * tolerance(torch.float32, device)
    torch.testing.assert_close(y.cpu().double(), expected, atol=tol, rtol=tol)


def test_module_backward_reaches_every_parameter(device):
    module = gna.NeighborhoodAttention2D(16, 2, kernel_size=(3, 5), stride=(1, 2),
                                         qkv_bias=False, proj_drop=0.1).to(device)
    assert module.qkv.bias is None
    x = torch.randn(1, 5, 9, 16, device=device, requires_grad=True)
    module(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_module_dropout_only_in_training():
    module = gna.NeighborhoodAttention1D(8, 2, 3, proj_drop=0.5)
    x = torch.randn(1, 6, 8)
    module.eval()
    torch.testing.assert_close(module(x), module(x))
    module.train()
    assert (module(x) == 0).any()


def test_module_default_scale_and_repr():
    module = gna.NeighborhoodAttention3D(32, 4, kernel_size=(1, 3, 3), is_causal=(True, False,
                                                                                   False))
    assert module.scale == pytest.approx(8 ** -0.5)
    assert "kernel_size=(1, 3, 3)" in repr(module)


@pytest.mark.parametrize("make,error,name", [
    (lambda: gna.NeighborhoodAttention1D(10, 3, 3), ValueError, "num_heads"),
    (lambda: gna.NeighborhoodAttention1D(8, 0, 3), ValueError, "num_heads"),
    (lambda: gna.NeighborhoodAttention1D(8.0, 2, 3), TypeError, "embed_dim"),
    (lambda: gna.NeighborhoodAttention2D(8, 2, (3, 3, 3)), ValueError, "kernel_size"),
    (lambda: gna.NeighborhoodAttention2D(8, 2, 3, is_causal=1), ValueError, "is_causal"),
])
def test_module_argument_errors(make, error, name):
    with pytest.raises(error, match=name):
        make()


def test_module_input_errors():
    module = gna.NeighborhoodAttention2D(8, 2, 3)
    with pytest.raises(ValueError, match="x.ndim"):
        module(torch.randn(1, 5, 8))
    with pytest.raises(ValueError, match="embed_dim"):
        module(torch.randn(1, 5, 5, 6))
    with pytest.raises(ValueError, match="kernel_size"):
        module(torch.randn(1, 2, 5, 8))  # window 3 does not fit an axis of 2
