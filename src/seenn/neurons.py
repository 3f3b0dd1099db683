"""Spiking neurons: LIF (direct training) and IF with reset by subtraction (QCFS conversion).

Layout is time-major: a multi-step input has shape [T, B, ...]. Each neuron is a pure step
function over an explicit membrane state, wrapped by a module that keeps its own state (for
stepwise inference) or runs a whole sequence (for training). Equations, per timestep t:

    LIF:  u = decay * u + x_t ;  s_t = H(u - threshold) ;  u = u * (1 - s_t)       (hard reset)
    IF:   u = u + x_t ;          s_t = H(u - threshold) ;  u = u - threshold * s_t  (soft reset)

H is the Heaviside step; its gradient is replaced by a surrogate (triangle or tanh).

Fused LIF (`set_fused(model, True)`, used by the latency stage and the benchmarks, never by the
deterministic stages): the same equations as one `torch.compile`d elementwise kernel per call
instead of about eight PyTorch ops, each reading and writing the whole tensor. Spikes are
bit-identical to the plain path (a test checks it). When compilation is unavailable (no C++
compiler, or SEENN_NO_COMPILE=1), the plain PyTorch functions run instead, with one warning."""

from __future__ import annotations

import logging
import math
import os
from typing import Callable

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


def lif_multistep(x: torch.Tensor, decay: float, threshold: float, surrogate: str, width: float) -> torch.Tensor:
    """LIF over a sequence [T, B, ...] from u = 0: the plain PyTorch reference (autograd through
    every op, including the reset)."""
    u = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        s, u = lif_step(x[t], u, decay, threshold, surrogate, width)
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
    samples appended to the next input, which start from the neuron's rest state."""

    def __init__(self):
        super().__init__()
        self.stepwise = False
        self.u: torch.Tensor | None = None
        self.fresh = 0  # stepwise: rows at the end of the next input that start from rest

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


class LIF(StatefulNeuron):
    """Leaky integrate-and-fire neuron (decay 0.5, threshold 1.0, hard reset by default).

    forward(x) takes [T, B, ...] and returns spikes of the same shape, starting from u = 0.
    In stepwise mode (`self.stepwise = True`) forward takes one timestep [B, ...] and keeps the
    membrane in `self.u` until `reset()` (rest: u = 0; see StatefulNeuron).
    With `self.fused = True` (see `set_fused`) the elementwise work runs as compiled kernels."""

    def __init__(self, decay: float = 0.5, threshold: float = 1.0, surrogate: str = "triangle", width: float = 1.0):
        super().__init__()
        if surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate '{surrogate}', expected one of {sorted(SURROGATES)}")
        self.decay, self.threshold, self.surrogate, self.width = decay, threshold, surrogate, width
        self.fused = False  # compiled elementwise kernels (set_fused); same spikes
        self.keep_state = True  # stepwise: False on a run's last timestep (the membrane is not needed)

    def extra_repr(self) -> str:
        return f"decay={self.decay}, threshold={self.threshold}, surrogate={self.surrogate}, width={self.width}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stepwise:
            if self.fused and not (torch.is_grad_enabled() and x.requires_grad):
                u, fresh = self.take_state(x)
                s, self.u = fused_lif_step(x, u, self.decay, self.threshold, self.keep_state, fresh)
                return s
            u = self.full_state(x, torch.zeros_like)
            s, self.u = lif_step(x, u, self.decay, self.threshold, self.surrogate, self.width)
            return s
        if self.fused:
            return fused_lif_multistep(x, self.decay, self.threshold, self.surrogate, self.width)
        return lif_multistep(x, self.decay, self.threshold, self.surrogate, self.width)


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


def set_fused(model: nn.Module, on: bool) -> None:
    """Switch every LIF neuron of `model` to the compiled elementwise kernels (or back)."""
    for m in neuron_modules(model):
        if isinstance(m, LIF):
            m.fused = on


def set_stepwise(model: nn.Module, on: bool) -> None:
    """Switch every neuron between sequence mode and stepwise (stateful) mode, clearing state."""
    for m in neuron_modules(model):
        m.stepwise = on
        m.reset()


def reset_states(model: nn.Module) -> None:
    """Clear the membrane of this model's neurons only (never a global reset)."""
    for m in neuron_modules(model):
        m.reset()


# ---------------------------------------------------------------------------------------------
# Fused LIF: the same equations as lif_step, written as plain tensor functions that
# torch.compile turns into one loop over the elements. They write into preallocated outputs and
# update the membrane in place (fresh multi-megabyte buffers cost page faults on CPU). The
# autograd Function saves only its input x (no extra buffer: the forward writes nothing but the
# spikes) and the backward kernel recomputes the pre-reset membranes h_t from it in registers
# before running back in time (one read of x instead of a write and a read of h): a hand-written
# BPTT with the same gradient as autograd through lif_multistep (reset included):
#   ds_t = g_t - gu_t * h_t ;  dh_t = ds_t * surrogate'(h_t - threshold) + gu_t * (1 - s_t)
#   dx_t = dh_t ;  gu_{t-1} = decay * dh_t
# ---------------------------------------------------------------------------------------------

log = logging.getLogger("seenn")


def _k_spikes(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """A single timestep from u = 0 whose membrane is not needed afterwards (fixed T = 1)."""
    return (x - threshold > 0).to(x.dtype)


def _k_first(x: torch.Tensor, s_out: torch.Tensor, u_out: torch.Tensor, threshold: float) -> None:
    """First timestep from u = 0 (decay * 0 + x = x): spikes and membrane into the outputs."""
    s = (x - threshold > 0).to(x.dtype)
    s_out.copy_(s)
    u_out.copy_(x * (1 - s))


def _k_step_into(x: torch.Tensor, u: torch.Tensor, s_out: torch.Tensor, u_out: torch.Tensor, decay: float,
                 threshold: float) -> None:
    """A later timestep: spikes into `s_out`, the new membrane into `u_out` (which may be `u`)."""
    h = decay * u + x
    s = (h - threshold > 0).to(x.dtype)
    s_out.copy_(s)
    u_out.copy_(h * (1 - s))


def _k_step(x: torch.Tensor, u: torch.Tensor, s_out: torch.Tensor, decay: float, threshold: float) -> None:
    """A later timestep with the membrane `u` updated in place."""
    _k_step_into(x, u, s_out, u, decay, threshold)


def _k_seq_forward(x: torch.Tensor, s_out: torch.Tensor, decay: float, threshold: float) -> None:
    u = torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        h = decay * u + x[t]
        s = (h - threshold > 0).to(x.dtype)
        u = h * (1 - s)
        s_out[t].copy_(s)


def _k_seq_backward(grad: torch.Tensor, x: torch.Tensor, gx_out: torch.Tensor, decay: float, threshold: float,
                    kind: int, width: float, tanh_norm: float) -> None:
    u, hs = torch.zeros_like(x[0]), []
    for t in range(x.shape[0]):  # recompute h_t (same ops as the forward kernel: same numbers)
        h = decay * u + x[t]
        u = h * (1 - (h - threshold > 0).to(x.dtype))
        hs.append(h)
    gu = torch.zeros_like(x[0])
    for t in range(x.shape[0] - 1, -1, -1):
        h = hs[t]
        v = h - threshold
        s = (v > 0).to(x.dtype)
        if kind == 0:
            sg = (width - v.abs()).clamp(min=0) / (width * width)
        else:
            sg = width * (1 - torch.tanh(width * v) ** 2) / tanh_norm * (v.abs() < width).to(x.dtype)
        dh = (grad[t] - gu * h) * sg + gu * (1 - s)
        gx_out[t].copy_(dh)
        gu = decay * dh


class _Kernels:
    """Compiled versions of the kernels above, built on first use; plain ones if compiling fails."""

    def __init__(self):
        self.compiled: dict = {}
        self.failed = os.environ.get("SEENN_NO_COMPILE", "") not in ("", "0")

    def call(self, plain, *args):
        if not self.failed:
            try:
                fn = self.compiled.get(plain.__name__)
                if fn is None:
                    fn = self.compiled[plain.__name__] = torch.compile(plain, dynamic=True)
                return fn(*args)
            except Exception as exc:  # no C++ compiler, unsupported platform...: fall back, once
                self.failed = True
                first = (str(exc).strip().splitlines() or [""])[0]
                log.warning("torch.compile unavailable (%s: %s); the fused LIF runs as plain PyTorch", type(exc).__name__, first)
        return plain(*args)


KERNELS = _Kernels()


def compile_available() -> bool:
    """False once a compilation failed or SEENN_NO_COMPILE is set (the plain fallback is in use)."""
    return not KERNELS.failed


def fused_lif_step(x: torch.Tensor, u: torch.Tensor | None, decay: float, threshold: float, keep_state: bool = True,
                   fresh: int = 0):
    """One LIF timestep without autograd, as one compiled kernel: (spikes, membrane). `u` None
    means the first timestep (u = 0); otherwise `u` is updated in place and returned. With
    `keep_state=False` on a first timestep, no membrane is written (None is returned). `fresh`
    last rows of `x` are samples admitted now: their first timestep, into a new membrane."""
    if u is None and not keep_state:
        return KERNELS.call(_k_spikes, x, float(threshold)), None
    s = torch.empty_like(x)
    if u is None:
        u = torch.empty_like(x)
        KERNELS.call(_k_first, x, s, u, float(threshold))
    elif fresh:
        b = u.shape[0]
        grown = torch.empty_like(x)
        if b:
            KERNELS.call(_k_step_into, x[:b], u, s[:b], grown[:b], float(decay), float(threshold))
        KERNELS.call(_k_first, x[b:], s[b:], grown[b:], float(threshold))
        u = grown
    else:
        KERNELS.call(_k_step, x, u, s, float(decay), float(threshold))
    return s, u


class _FusedLIFSeq(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, decay: float, threshold: float, kind: int, width: float):
        x = x.contiguous()
        s = torch.empty_like(x)
        KERNELS.call(_k_seq_forward, x, s, decay, threshold)
        ctx.save_for_backward(x)
        ctx.consts = (decay, threshold, kind, width, 2 * math.tanh(width * width))
        return s

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        gx = torch.empty_like(x)
        KERNELS.call(_k_seq_backward, grad.contiguous(), x, gx, *ctx.consts)
        return gx, None, None, None, None


def fused_lif_multistep(x: torch.Tensor, decay: float, threshold: float, surrogate: str, width: float) -> torch.Tensor:
    """`lif_multistep` with compiled kernels: one forward and one backward kernel for the whole
    sequence when a gradient is needed, else one kernel per timestep (no membrane kept at T = 1)."""
    if surrogate not in SURROGATES:
        raise ValueError(f"unknown surrogate '{surrogate}', expected one of {sorted(SURROGATES)}")
    if torch.is_grad_enabled() and x.requires_grad:
        return _FusedLIFSeq.apply(x, float(decay), float(threshold), SURROGATES[surrogate], float(width))
    if x.shape[0] == 1:
        return KERNELS.call(_k_spikes, x[0], float(threshold)).unsqueeze(0)
    out, u = torch.empty_like(x), torch.empty_like(x[0])
    KERNELS.call(_k_first, x[0], out[0], u, float(threshold))
    for t in range(1, x.shape[0]):
        KERNELS.call(_k_step, x[t], u, out[t], float(decay), float(threshold))
    return out
