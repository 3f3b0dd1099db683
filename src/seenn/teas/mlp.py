"""The TEAS paper's MNIST network: Input-Flatten-800-IF-10-IF, directly trained (Table 2).

Choices: the IF neuron is the project's LIF with decay 1 (no leak) and hard reset to V_reset = 0
(Table 1), trained through the triangle surrogate max(0, 1 - |U - V_th|) (Eq. 5 centred at the
threshold, width 1); the readout is the output layer's spikes at each step, so summed over the
window they are the spike counts and averaged the firing rate u_i of Eq. 7. Direct encoding: the
first Linear sees the static image once and its output is repeated over the window (as the
ResNets' stem). Any input shape (the project's digits are 1x28x28)."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from seenn.common.errors import SeennError
from seenn.models.resnet import TimeFold
from seenn.snn.neurons import LIF


def teas_if(threshold: float = 1.0, width: float = 1.0) -> Callable[[], nn.Module]:
    """Factory of the paper's IF neuron: no leak, hard reset to 0, triangle surrogate."""
    return lambda: LIF(1.0, threshold, "triangle", width)


class TeasMLP(nn.Module):
    """Flatten -> Linear(in, hidden) -> IF -> Linear(hidden, classes) -> IF; forward gives the
    output spikes per step, [T, B, classes]."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = 800,
                 neuron: Callable[[], nn.Module] | None = None):
        super().__init__()
        if hidden < 1 or num_classes < 2 or not input_shape:
            raise SeennError(f"TeasMLP needs hidden >= 1, num_classes >= 2 and an input shape, got {hidden}, {num_classes}, {input_shape}")
        neuron = neuron or teas_if()
        self.event = False
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(self.input_shape), hidden))
        self.stem_act = TimeFold(neuron())
        self.fc = nn.Linear(hidden, num_classes)
        self.out_act = TimeFold(neuron())

    def set_timesteps(self, T: int) -> None:
        for m in self.modules():
            if isinstance(m, TimeFold):
                m.T = T

    def encode(self, x: torch.Tensor, T: int) -> torch.Tensor:
        """The first layer's input current for T steps, merged to [T*B, hidden]."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise SeennError(f"TeasMLP built for inputs {self.input_shape}, got a batch of shape {tuple(x.shape)}")
        h = self.stem(x)
        return h.unsqueeze(0).expand(T, *h.shape).reshape(-1, h.shape[-1])

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """The readout is the output layer's spikes themselves."""
        return h

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        self.set_timesteps(timesteps)
        h = self.stem_act(self.encode(x, timesteps))
        out = self.out_act(self.fc(h))
        return out.reshape(timesteps, -1, self.num_classes)
