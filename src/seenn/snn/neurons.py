"""Spiking neurons: LIF (direct training) and IF with reset by subtraction (QCFS conversion),
and the surrogate gradients of the spike.

Layout is time-major: a multi-step input has shape [T, B, ...]. Each neuron is a pure step
function over an explicit membrane state, wrapped by a module that keeps its own state (for
stepwise inference) or runs a whole sequence (for training). Equations, per timestep t:

    LIF:  u = decay * u + x_t ;  s_t = H(u - threshold) ;  u = u * (1 - s_t)       (hard reset)
    IF:   u = u + x_t ;          s_t = H(u - threshold) ;  u = u - threshold * s_t  (soft reset)

H is the Heaviside step; its gradient is replaced by a surrogate's `derivative` (triangle or
tanh, objects after SpikingJelly's `surrogate` module), the one formula both this module's
autograd and the fused backward kernel (kernels.py) call. A LIF neuron's arithmetic is its
`impl`: PlainLIF here (PyTorch ops, every deterministic stage), or kernels.FusedLIF (compiled,
`kernels.set_fused`)."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn


class Surrogate:
    """The spike H(v) forward, `derivative(v)` in place of its gradient backward; `v` is the
    membrane minus the threshold and `width` the surrogate's one parameter (SpikingJelly's alpha).
    `derivative` is plain tensor math, so the compiled backward kernel traces it too."""

    name = ""

    def __init__(self, width: float = 1.0):
        self.width = float(width)

    def derivative(self, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """Spikes where v > 0, with this surrogate gradient."""
        return _Spike.apply(v, self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(width={self.width})"


class Triangle(Surrogate):
    """(1/g^2) * max(0, g - |v|), g = width: a triangle of area 1 and half-width g."""

    name = "triangle"

    def derivative(self, v: torch.Tensor) -> torch.Tensor:
        g = self.width
        return (g - v.abs()).clamp(min=0) / (g * g)


class Tanh(Surrogate):
    """d/dv [tanh(g * clip(v, -g, g)) / (2 tanh(g^2)) + 0.5], g = width (the authors' surrogate)."""

    name = "tanh"

    def derivative(self, v: torch.Tensor) -> torch.Tensor:
        g = self.width
        return g * (1 - torch.tanh(g * v) ** 2) / (2 * math.tanh(g * g)) * (v.abs() < g).to(v.dtype)


SURROGATES: dict[str, type[Surrogate]] = {"triangle": Triangle, "tanh": Tanh}  # the config's neuron.surrogate


def make_surrogate(name: str, width: float) -> Surrogate:
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate '{name}', expected one of {sorted(SURROGATES)}")
    return SURROGATES[name](width)


class _Spike(torch.autograd.Function):
    """Heaviside forward, the surrogate's derivative backward."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
        ctx.save_for_backward(v)
        ctx.surrogate = surrogate
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (v,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(v), None


def lif_step(x: torch.Tensor, u: torch.Tensor, decay: float, threshold: float, surrogate: Surrogate):
    """One LIF timestep: returns (spikes, new membrane)."""
    u = decay * u + x
    s = surrogate(u - threshold)
    return s, u * (1 - s)


def lif_multistep(x: torch.Tensor, decay: float, threshold: float, surrogate: Surrogate) -> torch.Tensor:
    """LIF over a sequence [T, B, ...] from u = 0: the plain PyTorch reference (autograd through
    every op, including the reset)."""
    u = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        s, u = lif_step(x[t], u, decay, threshold, surrogate)
        out.append(s)
    return torch.stack(out)


def if_step(x: torch.Tensor, u: torch.Tensor, threshold: torch.Tensor | float):
    """One IF timestep with reset by subtraction (no surrogate: conversion is inference only)."""
    u = u + x
    s = (u >= threshold).to(x.dtype)
    return s, u - threshold * s


class StatefulNeuron(nn.Module):
    """The stepwise membrane bookkeeping LIF and IF share: `u` holds the kept samples' membranes
    between calls, `keep(mask)` drops finished samples (early exit), `admit(k)` announces k new
    samples appended to the next input, which start from the neuron's rest state. `keep_state`
    False tells the neuron that no step follows this one (the engine's last timestep), so it may
    skip writing the membrane."""

    def __init__(self):
        super().__init__()
        self.stepwise = False
        self.u: torch.Tensor | None = None
        self.fresh = 0  # stepwise: rows at the end of the next input that start from rest
        self.keep_state = True

    def reset(self) -> None:
        self.u, self.fresh = None, 0

    def keep(self, mask: torch.Tensor) -> None:
        if self.u is not None:
            self.u = self.u[mask]

    def admit(self, k: int) -> None:
        if self.u is None or self.u.shape[0] == 0:  # no membrane kept: every row of the next input is new
            self.reset()
        else:
            self.fresh += k

    def take_state(self, x: torch.Tensor) -> tuple[torch.Tensor | None, int]:
        """(kept membranes, number of admitted rows) for the stepwise input `x`, checked against it."""
        u, fresh = self.u, self.fresh
        if u is not None and x.shape[0] != u.shape[0] + fresh:
            raise RuntimeError(f"{type(self).__name__}: stepwise input has {x.shape[0]} samples, but the neuron keeps "
                               f"{u.shape[0]} and {fresh} were admitted (keep/admit out of step with the batch)")
        self.fresh = 0
        return u, fresh

    def full_state(self, x: torch.Tensor, rest: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The membranes of every row of `x`: the kept ones, then `rest(rows)` for admitted rows."""
        u, fresh = self.take_state(x)
        if u is None:
            return rest(x)
        return torch.cat([u, rest(x[x.shape[0] - fresh :])]) if fresh else u


class PlainLIF:
    """A LIF neuron's arithmetic as PyTorch ops with autograd through every one: the reference,
    and what every deterministic stage runs (kernels.FusedLIF is the compiled alternative)."""

    def multistep(self, n: "LIF", x: torch.Tensor) -> torch.Tensor:
        return lif_multistep(x, n.decay, n.threshold, n.surrogate)

    def step(self, n: "LIF", x: torch.Tensor) -> torch.Tensor:
        s, n.u = lif_step(x, n.full_state(x, torch.zeros_like), n.decay, n.threshold, n.surrogate)
        return s


class LIF(StatefulNeuron):
    """Leaky integrate-and-fire neuron (decay 0.5, threshold 1.0, hard reset by default).

    forward(x) takes [T, B, ...] and returns spikes of the same shape, starting from u = 0.
    In stepwise mode (`self.stepwise = True`) forward takes one timestep [B, ...] and keeps the
    membrane in `self.u` until `reset()` (rest: u = 0; see StatefulNeuron). `self.impl` does the
    arithmetic: PlainLIF, or kernels.FusedLIF after `kernels.set_fused` (same spikes)."""

    def __init__(self, decay: float = 0.5, threshold: float = 1.0, surrogate: str = "triangle", width: float = 1.0):
        super().__init__()
        self.decay, self.threshold = decay, threshold
        self.surrogate = make_surrogate(surrogate, width)
        self.impl = PlainLIF()

    def extra_repr(self) -> str:
        return f"decay={self.decay}, threshold={self.threshold}, surrogate={self.surrogate.name}, width={self.surrogate.width}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.impl.step(self, x) if self.stepwise else self.impl.multistep(self, x)


class IF(StatefulNeuron):
    """Integrate-and-fire neuron for converted SNNs: threshold `lam`, membrane starts at lam/2,
    reset by subtraction. Same multi-step / stepwise interface as LIF (rest: u = lam/2)."""

    def __init__(self, threshold: torch.Tensor | float, init_fraction: float = 0.5):
        super().__init__()
        self.register_buffer("threshold", torch.as_tensor(threshold, dtype=torch.float32).clone())
        self.init_fraction = init_fraction

    def _init(self, like: torch.Tensor) -> torch.Tensor:
        return torch.full_like(like, 0.0) + self.threshold * self.init_fraction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stepwise:
            s, self.u = if_step(x, self.full_state(x, self._init), self.threshold)
            return s * self.threshold
        u = self._init(x[0])
        out = []
        for t in range(x.shape[0]):
            s, u = if_step(x[t], u, self.threshold)
            out.append(s * self.threshold)
        return torch.stack(out)


def neuron_modules(model: nn.Module):
    """All stateful neurons of a model."""
    return [m for m in model.modules() if isinstance(m, StatefulNeuron)]


def set_stepwise(model: nn.Module, on: bool) -> None:
    """Switch every neuron between sequence mode and stepwise (stateful) mode, clearing state."""
    for m in neuron_modules(model):
        m.stepwise = on
        m.reset()


def reset_states(model: nn.Module) -> None:
    """Clear the membrane of this model's neurons only (never a global reset)."""
    for m in neuron_modules(model):
        m.reset()
