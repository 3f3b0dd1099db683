"""Spiking neurons: LIF (direct training) and IF with reset by subtraction (QCFS conversion).

Layout is time-major: a multi-step input has shape [T, B, ...]. Each neuron is a pure step
function over an explicit membrane state, wrapped by a module that keeps its own state (for
stepwise inference) or runs a whole sequence (for training). Equations, per timestep t:

    LIF:  u = decay * u + x_t ;  s_t = H(u - threshold) ;  u = u * (1 - s_t)       (hard reset)
    IF:   u = u + x_t ;          s_t = H(u - threshold) ;  u = u - threshold * s_t  (soft reset)

H is the Heaviside step; its gradient is replaced by a surrogate (triangle or tanh)."""

from __future__ import annotations

import math

import torch
from torch import nn


class _Spike(torch.autograd.Function):
    """Heaviside forward, surrogate gradient backward. `v` is the membrane minus threshold."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, kind: int, width: float) -> torch.Tensor:
        ctx.save_for_backward(v)
        ctx.kind, ctx.width = kind, width
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (v,) = ctx.saved_tensors
        g = ctx.width
        if ctx.kind == 0:  # triangle: (1/g^2) * max(0, g - |v|)
            sg = (g - v.abs()).clamp(min=0) / (g * g)
        else:  # tanh: d/dv [tanh(g * clip(v, -g, g)) / (2 tanh(g^2)) + 0.5]
            inside = (v.abs() < g).to(v.dtype)
            sg = g * (1 - torch.tanh(g * v) ** 2) / (2 * math.tanh(g * g)) * inside
        return grad * sg, None, None


SURROGATES = {"triangle": 0, "tanh": 1}


def spike(v: torch.Tensor, surrogate: str = "triangle", width: float = 1.0) -> torch.Tensor:
    """Spike where v > 0, with the named surrogate gradient."""
    return _Spike.apply(v, SURROGATES[surrogate], width)


def lif_step(x: torch.Tensor, u: torch.Tensor, decay: float, threshold: float, surrogate: str, width: float):
    """One LIF timestep: returns (spikes, new membrane)."""
    u = decay * u + x
    s = spike(u - threshold, surrogate, width)
    return s, u * (1 - s)


def if_step(x: torch.Tensor, u: torch.Tensor, threshold: torch.Tensor | float):
    """One IF timestep with reset by subtraction (no surrogate: conversion is inference only)."""
    u = u + x
    s = (u >= threshold).to(x.dtype)
    return s, u - threshold * s


class LIF(nn.Module):
    """Leaky integrate-and-fire neuron (decay 0.5, threshold 1.0, hard reset by default).

    forward(x) takes [T, B, ...] and returns spikes of the same shape, starting from u = 0.
    In stepwise mode (`self.stepwise = True`) forward takes one timestep [B, ...] and keeps the
    membrane in `self.u` until `reset()`; `keep(mask)` drops finished samples (early exit)."""

    def __init__(self, decay: float = 0.5, threshold: float = 1.0, surrogate: str = "triangle", width: float = 1.0):
        super().__init__()
        if surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate '{surrogate}', expected one of {sorted(SURROGATES)}")
        self.decay, self.threshold, self.surrogate, self.width = decay, threshold, surrogate, width
        self.stepwise = False
        self.u: torch.Tensor | None = None

    def extra_repr(self) -> str:
        return f"decay={self.decay}, threshold={self.threshold}, surrogate={self.surrogate}, width={self.width}"

    def reset(self) -> None:
        self.u = None

    def keep(self, mask: torch.Tensor) -> None:
        if self.u is not None:
            self.u = self.u[mask]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stepwise:
            u = torch.zeros_like(x) if self.u is None else self.u
            s, self.u = lif_step(x, u, self.decay, self.threshold, self.surrogate, self.width)
            return s
        u = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            s, u = lif_step(x[t], u, self.decay, self.threshold, self.surrogate, self.width)
            out.append(s)
        return torch.stack(out)


class IF(nn.Module):
    """Integrate-and-fire neuron for converted SNNs: threshold `lam`, membrane starts at lam/2,
    reset by subtraction. Same multi-step / stepwise interface as LIF."""

    def __init__(self, threshold: torch.Tensor | float, init_fraction: float = 0.5):
        super().__init__()
        self.register_buffer("threshold", torch.as_tensor(threshold, dtype=torch.float32).clone())
        self.init_fraction = init_fraction
        self.stepwise = False
        self.u: torch.Tensor | None = None

    def reset(self) -> None:
        self.u = None

    def keep(self, mask: torch.Tensor) -> None:
        if self.u is not None:
            self.u = self.u[mask]

    def _init(self, like: torch.Tensor) -> torch.Tensor:
        return torch.full_like(like, 0.0) + self.threshold * self.init_fraction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stepwise:
            u = self._init(x) if self.u is None else self.u
            s, self.u = if_step(x, u, self.threshold)
            return s * self.threshold
        u = self._init(x[0])
        out = []
        for t in range(x.shape[0]):
            s, u = if_step(x[t], u, self.threshold)
            out.append(s * self.threshold)
        return torch.stack(out)


def neuron_modules(model: nn.Module):
    """All stateful neurons of a model."""
    return [m for m in model.modules() if isinstance(m, (LIF, IF))]


def set_stepwise(model: nn.Module, on: bool) -> None:
    """Switch every neuron between sequence mode and stepwise (stateful) mode, clearing state."""
    for m in neuron_modules(model):
        m.stepwise = on
        m.reset()


def reset_states(model: nn.Module) -> None:
    """Clear the membrane of this model's neurons only (never a global reset)."""
    for m in neuron_modules(model):
        m.reset()
