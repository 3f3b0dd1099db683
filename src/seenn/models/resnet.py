"""Spiking ResNets of the paper's Table 6, configurable by stem width, stage widths and blocks.

Convolutions, BatchNorm and the classifier run on the merged [T*B, ...] batch; neurons see
[T, B, ...] (TimeFold does the reshaping). Direct encoding: the stem conv + BN sees the static
image once and its output is repeated over T before the first neuron (same numbers as
repeating the image, T times less compute). Event inputs [B, T, C, H, W] are fed frame by frame.
The network returns per-timestep logits O_t with shape [T, B, classes].

The same class serves the conversion branch: with a QCFS activation in every neuron slot it is
the ANN (run with T = 1), with IF neurons it is the converted SNN (see models/qcfs.py, convert.py)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import SeennError
from ..neurons import IF, LIF


class TimeFold(nn.Module):
    """Apply a neuron to a merged [T*B, ...] tensor by unfolding it to [T, B, ...].

    `T` is set by the owning network before each forward; in stepwise mode T = 1."""

    def __init__(self, neuron: nn.Module):
        super().__init__()
        self.neuron = neuron
        self.T = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if getattr(self.neuron, "stepwise", False):
            return self.neuron(x)
        y = self.neuron(x.reshape(self.T, -1, *x.shape[1:]))
        return y.reshape(x.shape)


NeuronFactory = Callable[[], nn.Module]


class BasicBlock(nn.Module):
    """conv-BN-neuron-conv-BN, plus shortcut, then neuron. Downsampling shortcut:
    avgpool + conv1x1 + BN (as the authors' ResNet-19)."""

    def __init__(self, cin: int, cout: int, stride: int, neuron: NeuronFactory):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = TimeFold(neuron())
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act2 = TimeFold(neuron())
        if stride != 1 or cin != cout:
            pool = nn.AvgPool2d(stride) if stride != 1 else nn.Identity()
            self.shortcut = nn.Sequential(pool, nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class SpikingResNet(nn.Module):
    """Stem conv3x3 -> stages of BasicBlocks (stride 2 from the second stage) -> global average
    pool -> FC, applied at every timestep."""

    def __init__(self, in_channels: int, num_classes: int, stem_channels: int, widths: list[int],
                 blocks: list[int], neuron: NeuronFactory, event: bool = False):
        super().__init__()
        self.event = event
        self.stem = nn.Sequential(nn.Conv2d(in_channels, stem_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(stem_channels))
        self.stem_act = TimeFold(neuron())
        layers, cin = [], stem_channels
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                layers.append(BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1, neuron))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        self.num_classes = num_classes

    def set_timesteps(self, T: int) -> None:
        for m in self.modules():
            if isinstance(m, TimeFold):
                m.T = T

    def encode(self, x: torch.Tensor, T: int) -> torch.Tensor:
        """Stem output for T timesteps, merged to [T*B, C, H, W]."""
        if self.event:  # x: [B, T, C, H, W] -> time-major merged
            x = x[:, :T].transpose(0, 1).reshape(-1, *x.shape[2:])
            return self.stem(x)
        h = self.stem(x)
        return h.unsqueeze(0).expand(T, *h.shape).reshape(-1, *h.shape[1:])

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(h), 1))

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        """Per-timestep logits [T, B, classes]."""
        self.set_timesteps(timesteps)
        h = self.stem_act(self.encode(x, timesteps))
        out = self.head(self.layers(h))
        return out.reshape(timesteps, -1, out.shape[-1])


ARCHITECTURES = {"resnet": SpikingResNet}  # model.arch -> network class (the paper's Table 6 ResNets)


def build_resnet(model_cfg: dict, neuron: NeuronFactory, in_channels: int, num_classes: int,
                 event: bool = False) -> SpikingResNet:
    """The configured ResNet with `neuron()` in every activation slot (LIF, IF or QCFS): the
    direct SNN, the QCFS ANN and the converted SNN share layers and parameter names."""
    if model_cfg["arch"] not in ARCHITECTURES:
        raise ValueError(f"unknown model.arch '{model_cfg['arch']}'")
    return ARCHITECTURES[model_cfg["arch"]](in_channels, num_classes, model_cfg["stem_channels"], list(model_cfg["widths"]),
                         list(model_cfg["blocks"]), neuron, event=event)


def build_snn(model_cfg: dict, neuron_cfg: dict, in_channels: int, num_classes: int, event: bool = False) -> SpikingResNet:
    """Build the configured spiking ResNet with LIF neurons."""

    def neuron() -> nn.Module:
        return LIF(neuron_cfg["decay"], neuron_cfg["threshold"], neuron_cfg["surrogate"], neuron_cfg["surrogate_width"])

    return build_resnet(model_cfg, neuron, in_channels, num_classes, event=event)


def build_if_snn(model_cfg: dict, in_channels: int, num_classes: int) -> SpikingResNet:
    """The configured ResNet with IF neurons (reset by subtraction, membrane starting at half the
    threshold): the shape of an SNN converted from a QCFS ANN. Thresholds are placeholders until
    the converted state dict (which holds each layer's lambda) is loaded."""
    return build_resnet(model_cfg, lambda: IF(1.0, 0.5), in_channels, num_classes)


def ann_twin(snn: nn.Module) -> nn.Module:
    """The ANN of the same architecture: the same ResNet with ReLU in place of every spiking
    neuron, run once (T = 1). It reuses the SNN's trained weights: only its time and operation
    counts are used (energy, latency), never its accuracy."""
    import copy

    if not isinstance(snn, SpikingResNet):
        raise SeennError(f"the ANN reference needs a SpikingResNet, got {type(snn).__name__}")
    ann = copy.deepcopy(snn)
    for m in ann.modules():
        if isinstance(m, TimeFold):
            m.neuron = nn.ReLU()
    return ann.eval()
