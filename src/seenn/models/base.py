"""What every spiking network of `model.arch` shares: the TimeFold neuron slot and the
interface the stages, the engine and the energy counter rely on (`SpikingNetwork`).

Convolutions, BatchNorm and linear layers run on the merged [T*B, ...] batch; neurons see
[T, B, ...] (TimeFold does the reshaping). Direct encoding: the stem (conv + BN) sees the static
image once and its output is repeated over T before the first neuron (same numbers as
repeating the image, T times less compute). Event inputs [B, T, C, H, W] are fed frame by frame.
A network returns per-timestep logits O_t with shape [T, B, classes].

The same classes serve the conversion branch: with a QCFS activation in every neuron slot a
network is the ANN (run with T = 1), with IF neurons it is the converted SNN."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


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


class SpikingNetwork(nn.Module):
    """The interface of every `model.arch` network, written once.

    A subclass builds `stem` (the encoding layer: conv + BN on the input, run once per sample
    for static images), `stem_act` (its neuron, a TimeFold), `layers` (everything between, run
    on spikes) and a classifier read by `head`: by default global average pooling `pool` and
    the linear layer `fc`. The engine runs `head(layers(stem_act(stem(x))))` one timestep at a
    time, so nothing may sit outside these four. `arch` names the `model.arch` it was built as
    (error messages); it is a plain attribute, not part of the state dict."""

    arch = "?"

    def __init__(self, num_classes: int, event: bool):
        super().__init__()
        self.event = event
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
        """Logits of the merged batch: global average pooling, then the linear classifier."""
        return self.fc(torch.flatten(self.pool(h), 1))

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        """Per-timestep logits [T, B, classes]."""
        self.set_timesteps(timesteps)
        h = self.stem_act(self.encode(x, timesteps))
        out = self.head(self.layers(h))
        return out.reshape(timesteps, -1, out.shape[-1])
