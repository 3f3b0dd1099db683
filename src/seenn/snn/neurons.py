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
    """The stepwise membrane bookkeeping LIF and IF share: `u` holds the membranes between calls.

    Plain stepwise use (`fresh` None): every row keeps its membrane from the last call. Slot use
    (the early-exit engine, methods/slots.py): the batch is a fixed set of slots and `fresh`, a
    bool [B] tensor the engine updates in place, marks the slots that start a new sample at the
    next call; those rows start from the neuron's rest state (`torch.where`, no change of shape),
    and the membrane is written back in place (`store`), so its address never changes (what a
    compiled step or a CUDA graph needs). `remember` False (an engine whose every sample stops
    after one step) starts every step from rest and writes no membrane at all. `all_fresh` True
    (set by a host that knows it: the CPU engine reading the device after every step) says every
    slot starts a new sample at this call, so the fused LIF need not read the old membranes."""

    def __init__(self):
        super().__init__()
        self.stepwise = False
        self.u: torch.Tensor | None = None
        self.fresh: torch.Tensor | None = None  # slot use: bool [B], rows that start from rest now
        self.remember = True  # False: every step starts from rest and keeps nothing (an engine at T = 1)
        self.all_fresh = False  # slot use: the host knows every slot starts a new sample at this call

    def reset(self) -> None:
        self.u = None

    def full_state(self, x: torch.Tensor, rest: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The membranes every row of `x` starts this step from: the kept ones, rest for fresh slots."""
        if self.u is None or not self.remember:
            return rest(x)
        if self.u.shape != x.shape:
            raise RuntimeError(f"{type(self).__name__}: stepwise input of shape {tuple(x.shape)}, but the kept "
                               f"membrane has shape {tuple(self.u.shape)} (a batch that changed size between steps)")
        if self.fresh is None:
            return self.u
        return torch.where(self.fresh.view(-1, *(1,) * (x.dim() - 1)), rest(x), self.u)

    def store(self, u: torch.Tensor) -> None:
        """Keep the membrane `u` for the next step: in place in slot use (a fixed address)."""
        if not self.remember:
            return
        if self.fresh is not None and self.u is not None:
            if u is not self.u:
                self.u.copy_(u)
        else:
            self.u = u


class PlainLIF:
    """A LIF neuron's arithmetic as PyTorch ops with autograd through every one: the reference,
    and what every deterministic stage runs (kernels.FusedLIF is the compiled alternative)."""

    def multistep(self, n: "LIF", x: torch.Tensor) -> torch.Tensor:
        return lif_multistep(x, n.decay, n.threshold, n.surrogate)

    def step(self, n: "LIF", x: torch.Tensor) -> torch.Tensor:
        s, u = lif_step(x, n.full_state(x, torch.zeros_like), n.decay, n.threshold, n.surrogate)
        n.store(u)
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
            s, u = if_step(x, self.full_state(x, self._init), self.threshold)
            self.store(u)
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


def set_stepwise(model: nn.Module, on: bool, fresh: torch.Tensor | None = None) -> None:
    """Switch every neuron between sequence mode and stepwise (stateful) mode, clearing state;
    `fresh` (slot use, see StatefulNeuron) is the engine's mask of slots that start now."""
    for m in neuron_modules(model):
        m.stepwise = on
        m.fresh = fresh if on else None
        m.remember = True
        m.all_fresh = False
        m.reset()


def reset_states(model: nn.Module) -> None:
    """Clear the membrane of this model's neurons only (never a global reset)."""
    for m in neuron_modules(model):
        m.reset()
