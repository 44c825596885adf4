"""A small NAT-style model written as a NATTEN user writes it (hierarchical
2-D neighborhood attention stages, and a video block through natten.na3d).
test_natten_compat.py runs this file's text twice: as it is, with NATTEN,
and with its import line changed to `import gna as natten`. Nothing else in
it may refer to gna.
"""
import torch
from torch import nn

import natten


class Mlp(nn.Module):
    def __init__(self, dim, ratio=2):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, dim * ratio), nn.Linear(dim * ratio, dim)

    def forward(self, x):
        return self.fc2(nn.functional.gelu(self.fc1(x)))


class NATBlock(nn.Module):
    def __init__(self, dim, heads, kernel_size, dilation=None):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = natten.NeighborhoodAttention2D(dim, heads, kernel_size=kernel_size,
                                                   dilation=dilation, stride=None,
                                                   is_causal=None)
        self.mlp = Mlp(dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VideoBlock(nn.Module):
    """Per-clip 3-D attention through the functional API, causal in time."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):  # [B, T, H, W, C]
        B, T, H, W, C = x.shape
        q, k, v = self.qkv(x).reshape(B, T, H, W, 3, self.heads, C // self.heads).unbind(-3)
        out, lse = natten.na3d(q, k, v, kernel_size=(2, 3, 3), stride=(1, 1, 2),
                               dilation=(1, 2, 1), is_causal=(True, False, False),
                               return_lse=True)
        return x + self.proj(out.reshape(B, T, H, W, C)), lse


class TinyNAT(nn.Module):
    def __init__(self, dim=32, heads=2, classes=5):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, kernel_size=2, stride=2)
        self.stage1 = nn.Sequential(NATBlock(dim, heads, 3), NATBlock(dim, heads, 3, dilation=2))
        self.down = nn.Linear(dim, 2 * dim)
        self.stage2 = NATBlock(2 * dim, 2 * heads, (3, 5))
        self.video = VideoBlock(2 * dim, 2 * heads)
        self.head = nn.Linear(2 * dim, classes)

    def forward(self, images):  # [B, 3, 24, 24]
        x = self.embed(images).permute(0, 2, 3, 1)  # [B, 12, 12, dim]
        x = self.stage1(x)
        x = self.down(x[:, ::2, ::2])  # [B, 6, 6, 2 dim]
        x = self.stage2(x)
        clips, lse = self.video(x.reshape(1, -1, 6, 6, x.shape[-1]))  # batch as time
        return self.head(clips.mean(dim=(2, 3)).flatten(0, 1)), lse


def run(seed=0):
    """The model's logits and video LSE for fixed weights and inputs."""
    torch.manual_seed(seed)
    model = TinyNAT().eval()
    images = torch.randn(3, 3, 24, 24)
    with torch.no_grad():
        return model(images)
