"""SEENN-II policy network: the ResNet-8 of the paper's Table 6, an ordinary (non-spiking) ANN.

conv3x3 (stem, stride 1 or 2) - BN - ReLU, then three stages of one basic block each (widths 16/32/64 by
default, stride 2 from the second stage), global average pooling and a linear layer to T
action logits. Action i means u = grid[i] timesteps for the SNN (grid 1..T by default); the policy
reads the same normalized input as the SNN and runs once per sample, before the SNN."""

from __future__ import annotations

import torch
from torch import nn


class PolicyBlock(nn.Module):
    """ReLU basic block: conv-BN-ReLU-conv-BN, plus shortcut (1x1 conv + BN when the shape
    changes), then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class PolicyResNet(nn.Module):
    """Policy ResNet: input [B, C, H, W] -> action logits [B, T] (softmax gives pi(u|x))."""

    def __init__(self, in_channels: int, actions: int, stem_channels: int = 16, widths: tuple[int, ...] = (16, 32, 64),
                 stem_stride: int = 1, grid: list[int] | None = None):
        super().__init__()
        self.grid = list(grid) if grid is not None else list(range(1, actions + 1))  # the u of each action
        if len(self.grid) != actions:
            raise ValueError(f"{actions} actions but an action grid of {len(self.grid)} timesteps")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, stem_channels, 3, stem_stride, 1, bias=False),
                                  nn.BatchNorm2d(stem_channels), nn.ReLU())
        layers, cin = [], stem_channels
        for i, w in enumerate(widths):
            layers.append(PolicyBlock(cin, w, 2 if i > 0 else 1))
            cin = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, actions)
        self.actions = actions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def build_policy(in_channels: int, actions: int, stem_channels: int, widths, stem_stride: int = 1,
                 grid: list[int] | None = None) -> PolicyResNet:
    """The configured policy (the paper's ResNet-8: 16 / 16-32-64, stem stride 1). A strided stem
    works on a quarter of the positions: a policy that costs a few percent of a small SNN."""
    return PolicyResNet(in_channels, actions, stem_channels, tuple(widths), stem_stride, grid)
