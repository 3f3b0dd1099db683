"""SEW ResNet-34 (Fang et al., NeurIPS 2021, "Deep Residual Learning in Spiking Neural Networks").

A spike-element-wise block computes its residual branch to spikes, A = SN(BN(conv(SN(BN(conv(x)))))),
and joins it to the shortcut's spikes S with a connect function g(A, S) instead of adding
currents before a neuron: ADD g = A + S, IAND g = (1 - A) * S (`model.sew_connect`). No neuron
follows the connect, so under ADD a block passes on spike counts (0, 1, 2, ... through a chain
of identity shortcuts), not binary spikes. Following SpikingJelly's `sew_resnet.BasicBlock`
(activation_based/model/sew_resnet.py): the neuron `sn2` sits after the second BN of the
residual branch, the downsampling shortcut is torchvision's conv1x1 stride 2 + BN followed by
a neuron of its own (`downsample_sn`), and the identity shortcut passes the block input as is;
the network around the blocks is torchvision's ResNet-34 layout (models/resnet.ImageNetResNet:
stem conv7x7/2 + BN + neuron + max-pool), so the parameters equal torchvision's resnet34."""

from __future__ import annotations

import torch
from torch import nn

from seenn.models.base import NeuronFactory, TimeFold
from seenn.models.resnet import ImageNetResNet, conv_shortcut


def _add(a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return a + s


def _iand(a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return (1 - a) * s


CONNECTS = {"add": _add, "iand": _iand}  # model.sew_connect -> g(A residual spikes, S shortcut spikes)


class SEWConnect(nn.Module):
    """g(A, S) of the SEW paper, a module of its own so that the energy counter sees it.

    `combine_counts` tells the counter how many spike events each output element carries,
    given the events of A and S (ADD: their sum; IAND: a binary output, counted directly)."""

    def __init__(self, mode: str):
        super().__init__()
        if mode not in CONNECTS:
            raise ValueError(f"unknown SEW connect function '{mode}' (known: {', '.join(CONNECTS)})")
        self.mode = mode

    def extra_repr(self) -> str:
        return self.mode

    def forward(self, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return CONNECTS[self.mode](a, s)

    def combine_counts(self, a_counts: torch.Tensor, s_counts: torch.Tensor, out: torch.Tensor) -> torch.Tensor | None:
        if self.mode == "add":
            return a_counts + s_counts
        return None  # IAND gives 0/1 spikes: the counter reads them from the output itself


class SEWBlock(nn.Module):
    """conv-BN-neuron-conv-BN-neuron (A), shortcut S (identity, or conv1x1/2 + BN + neuron), g(A, S)."""

    def __init__(self, cin: int, cout: int, stride: int, neuron: NeuronFactory, connect: str):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = TimeFold(neuron())
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act2 = TimeFold(neuron())
        if stride != 1 or cin != cout:
            self.shortcut = conv_shortcut(cin, cout, stride)
            self.shortcut_act = TimeFold(neuron())
        else:
            self.shortcut = self.shortcut_act = nn.Identity()
        self.connect = SEWConnect(connect)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))
        return self.connect(a, self.shortcut_act(self.shortcut(x)))


def build_sew_resnet34(connect: str, neuron: NeuronFactory, in_channels: int, num_classes: int,
                       event: bool = False) -> ImageNetResNet:
    """SEW-ResNet-34 with connect function `connect` (add | iand)."""
    if connect not in CONNECTS:
        raise ValueError(f"unknown SEW connect function '{connect}' (known: {', '.join(CONNECTS)})")
    return ImageNetResNet(in_channels, num_classes, neuron, lambda i, o, s, n: SEWBlock(i, o, s, n, connect), event=event)
