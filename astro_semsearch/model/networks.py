"""The neural networks of the model: the image encoder (a small CNN) and the residual projection heads."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["ImageEncoder", "ResidualHead"]


class _Block(nn.Module):
    """Conv3x3/2 + BN + GELU + Conv3x3 + BN + GELU, with a strided 1x1 shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
        )
        self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))
        self.act = nn.GELU()

    def forward(self, x):
        return self.act(self.body(x) + self.skip(x))


class ResidualHead(nn.Module):
    """Linear map plus a residual MLP correction: ``y = Wx + MLP(LN(Wx))``.

    The MLP's last layer starts at zero, so a fresh head is a plain linear
    projection; training adds non-linearity only where it helps (which keeps
    the frozen text encoder's sense of language intact).
    """

    def __init__(self, din: int, dout: int, hidden: int):
        super().__init__()
        self.proj = nn.Linear(din, dout)
        self.norm = nn.LayerNorm(dout)
        self.mlp = nn.Sequential(nn.Linear(dout, hidden), nn.GELU(), nn.Linear(hidden, dout))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, x):
        y = self.proj(x)
        return y + self.mlp(self.norm(y))


class ImageEncoder(nn.Module):
    """CNN from a ``3 x 64 x 64`` RGB image (0-1) to a 256-d feature (before the head)."""

    def __init__(self, stem: int = 32, channels: Sequence[int] = (64, 128, 256),
                 mean=(0.1, 0.1, 0.1), std=(0.15, 0.15, 0.15)):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        layers = [nn.Conv2d(3, stem, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(stem), nn.GELU()]
        cin = stem
        for c in channels:
            layers.append(_Block(cin, c))
            cin = c
        self.features = nn.Sequential(*layers)
        self.out_dim = cin

    def forward(self, x):
        x = (x - self.mean) / self.std
        return self.features(x).mean(dim=(2, 3))
