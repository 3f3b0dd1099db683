"""Spiking ResNets: the paper's Table 6 family (CIFAR layout) and ResNet-34 (ImageNet layout).

- `SpikingResNet` (`model.arch: resnet`, configurable by `stem_channels`, `widths`, `blocks`):
  stem conv3x3 stride 1, stages of BasicBlocks with stride 2 from the second stage, downsampling
  shortcut avgpool + conv1x1 + BN (the authors' ResNet-19), global average pool, FC. The named
  variants `resnet18`, `resnet19`, `resnet20` (Table 6) and `resnet20_authors` (the authors'
  conversion "ResNet-20": stem 128, [3, 3, 2] at 128 / 256 / 512) are this class with fixed sizes.
- `ImageNetResNet` (`resnet34`): torchvision's layout, stem conv7x7 stride 2 + BN + neuron +
  max-pool 3x3 stride 2, [3, 4, 6, 3] basic blocks at 64..512 with the stride in the first conv of
  a stage's first block and torchvision's downsampling shortcut conv1x1 stride 2 + BN. With the
  neurons' parameter-free slots it has exactly torchvision's resnet34 parameters. The max-pool is
  the first module of `layers` (it acts on the stem's spikes, after `stem_act`).
- `resnet34_avgpool`: the same network with that max-pool replaced by a 3x3 stride-2 average pool
  (padding 1, zero padding counted, a fixed linear map): the convertible variant, as conversion
  papers replace max-pooling (no rate-preserving spiking max), with the same parameters."""

from __future__ import annotations

import torch
from torch import nn

from seenn.models.base import NeuronFactory, SpikingNetwork, TimeFold

IMAGENET_STAGES = ((64, 128, 256, 512), (3, 4, 6, 3))  # ResNet-34 widths and blocks per stage


def conv_shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    """torchvision's downsampling shortcut: conv1x1 with the block's stride, then BN."""
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


def avgpool_shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    """The authors' ResNet-19 shortcut: avgpool (stride) + conv1x1 + BN."""
    pool = nn.AvgPool2d(stride) if stride != 1 else nn.Identity()
    return nn.Sequential(pool, nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """conv-BN-neuron-conv-BN, plus shortcut, then neuron. `shortcut` builds the downsampling
    shortcut (avgpool + conv1x1 + BN by default, as the authors' ResNet-19)."""

    def __init__(self, cin: int, cout: int, stride: int, neuron: NeuronFactory, shortcut=avgpool_shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = TimeFold(neuron())
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act2 = TimeFold(neuron())
        self.shortcut = shortcut(cin, cout, stride) if (stride != 1 or cin != cout) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


def stages(cin: int, widths: list[int], blocks: list[int], make_block, first_stride: int = 1) -> list[nn.Module]:
    """Blocks of every stage, stride 2 in the first block of each stage after the first."""
    out = []
    for i, (w, n) in enumerate(zip(widths, blocks)):
        for j in range(n):
            out.append(make_block(cin, w, (2 if i > 0 else first_stride) if j == 0 else 1))
            cin = w
    return out


class SpikingResNet(SpikingNetwork):
    """Stem conv3x3 -> stages of BasicBlocks (stride 2 from the second stage) -> global average
    pool -> FC, applied at every timestep."""

    def __init__(self, in_channels: int, num_classes: int, stem_channels: int, widths: list[int],
                 blocks: list[int], neuron: NeuronFactory, event: bool = False):
        super().__init__(num_classes, event)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, stem_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(stem_channels))
        self.stem_act = TimeFold(neuron())
        self.layers = nn.Sequential(*stages(stem_channels, widths, blocks, lambda i, o, s: BasicBlock(i, o, s, neuron)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)


class ImageNetResNet(SpikingNetwork):
    """torchvision's ResNet layout with spiking neurons: conv7x7/2 + BN -> neuron -> max-pool 3x3/2
    -> stages of `block` -> global average pool -> FC. `block(cin, cout, stride, neuron)`:
    the plain BasicBlock with conv shortcuts (ResNet-34) or a SEW block (models/sew.py).
    `stem_pool` "avg" puts a 3x3/2 average pool (padding 1) where the max-pool is (convertible)."""

    def __init__(self, in_channels: int, num_classes: int, neuron: NeuronFactory, block, event: bool = False,
                 widths=IMAGENET_STAGES[0], blocks=IMAGENET_STAGES[1], stem_pool: str = "max"):
        super().__init__(num_classes, event)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]))
        self.stem_act = TimeFold(neuron())
        pools = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
        if stem_pool not in pools:
            raise ValueError(f"unknown stem pooling '{stem_pool}', expected one of {sorted(pools)}")
        self.layers = nn.Sequential(pools[stem_pool](3, 2, 1),
                                    *stages(widths[0], widths, blocks, lambda i, o, s: block(i, o, s, neuron)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)


def resnet34_block(cin: int, cout: int, stride: int, neuron: NeuronFactory) -> BasicBlock:
    return BasicBlock(cin, cout, stride, neuron, shortcut=conv_shortcut)


# Fixed sizes of the named CIFAR variants: (stem_channels, widths, blocks)
TABLE6 = {
    "resnet18": (64, [64, 128, 256, 512], [2, 2, 2, 2]),
    "resnet19": (128, [128, 256, 512], [3, 3, 2]),
    "resnet20": (16, [16, 32, 64], [2, 2, 2]),
    "resnet20_authors": (128, [128, 256, 512], [3, 3, 2]),
}
