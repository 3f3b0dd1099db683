"""Fused LIF: the equations of neurons.lif_step as `torch.compile`d elementwise kernels, one per
call instead of about eight PyTorch ops that each read and write the whole tensor.

Used by the latency stage and the benchmarks (`set_fused(model, True)`), never by the
deterministic stages. Spikes are bit-identical to the plain path; the backward kernel calls the
surrogate's own `derivative`, as the plain path does (tests/test_fused.py,
tests/test_neuron_reference.py). When compilation is unavailable (no C++ compiler, or
SEENN_NO_COMPILE=1), the same kernel functions run as plain PyTorch, with one warning.

The kernels write into preallocated outputs and update the membrane in place (fresh
multi-megabyte buffers cost page faults on CPU). The autograd Function saves only its input x
and the backward kernel recomputes the pre-reset membranes h_t from it in registers before
running back in time (one read of x instead of a write and a read of h): a hand-written BPTT
with the same gradient as autograd through lif_multistep (reset included):
    ds_t = g_t - gu_t * h_t ;  dh_t = ds_t * surrogate'(h_t - threshold) + gu_t * (1 - s_t)
    dx_t = dh_t ;  gu_{t-1} = decay * dh_t"""

from __future__ import annotations

import logging
import os

import torch
from torch import nn

from seenn.common.runtime import sync_compiler_determinism
from seenn.snn.neurons import LIF, PlainLIF, Surrogate, neuron_modules

log = logging.getLogger("seenn")


def _k_spikes(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """A single timestep from u = 0 whose membrane is not needed afterwards (fixed T = 1)."""
    return (x - threshold > 0).to(x.dtype)


def _k_first(x: torch.Tensor, s_out: torch.Tensor, u_out: torch.Tensor, threshold: float) -> None:
    """First timestep from u = 0 (decay * 0 + x = x): spikes and membrane into the outputs."""
    s = (x - threshold > 0).to(x.dtype)
    s_out.copy_(s)
    u_out.copy_(x * (1 - s))


def _k_step(x: torch.Tensor, u: torch.Tensor, s_out: torch.Tensor, decay: float, threshold: float) -> None:
    """A later timestep with the membrane `u` updated in place."""
    h = decay * u + x
    s = (h - threshold > 0).to(x.dtype)
    s_out.copy_(s)
    u.copy_(h * (1 - s))


def _k_slot_step(x: torch.Tensor, u: torch.Tensor, fresh: torch.Tensor, s_out: torch.Tensor, decay: float,
                 threshold: float) -> None:
    """A timestep of the engine's slots: rows where `fresh` (broadcast against x) start from u = 0,
    the others from `u`, which is updated in place."""
    h = decay * torch.where(fresh, torch.zeros_like(u), u) + x
    s = (h - threshold > 0).to(x.dtype)
    s_out.copy_(s)
    u.copy_(h * (1 - s))


def _k_seq_forward(x: torch.Tensor, s_out: torch.Tensor, decay: float, threshold: float) -> None:
    u = torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        h = decay * u + x[t]
        s = (h - threshold > 0).to(x.dtype)
        u = h * (1 - s)
        s_out[t].copy_(s)


def _k_seq_backward(grad: torch.Tensor, x: torch.Tensor, gx_out: torch.Tensor, decay: float, threshold: float,
                    surrogate: Surrogate) -> None:
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
        dh = (grad[t] - gu * h) * surrogate.derivative(v) + gu * (1 - s)
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
                    sync_compiler_determinism()
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


# A stepwise call on a CPU tensor smaller than this (elements) runs the kernels' arithmetic as a few
# plain ops instead: there a compiled call's guards and wrappers (20-30 us on one core) cost more
# than the ops they fuse. Measured on 2 AMD EPYC cores, one thread (benchmarks/bench_lif.py
# --small): the plain slot step is the faster below about 65,536 elements, the spikes-only step
# below about 131,072. The floats are the same (spikes and nonzero membranes bit for bit).
CPU_SMALL_STEP = 65536


def small_cpu(x: torch.Tensor) -> bool:
    """A CPU tensor small enough for the plain ops (`CPU_SMALL_STEP`)."""
    return x.device.type == "cpu" and x.numel() < CPU_SMALL_STEP


def _small_spikes(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """`_k_spikes` as three vectorized float ops: H(x - thr) = sign(relu(x - thr)) gives 1.0 and
    +0.0 exactly as the comparison does (x - thr is never -0.0), at a third of the cost of a
    comparison and a cast, whose bool output CPU kernels do not vectorize well (no NaN here)."""
    return (x - threshold).relu_().sign_()


def _small_slot_step(x: torch.Tensor, u: torch.Tensor, keep: torch.Tensor | None, threshold: float):
    """`_k_slot_step` as a few plain ops on `u` in place: the spikes. `keep` is decay where a slot
    goes on and 0 where it starts now (None: every slot starts now, so h = x). The membranes'
    floats are the kernel's, but for the sign of a zero (u * 0 is -0.0 for a negative u), which no
    spike, logit or later nonzero membrane can see."""
    if keep is None:
        s = _small_spikes(x, threshold)
        torch.mul(x, 1 - s, out=u)
        return s
    h = u.mul_(keep).add_(x)  # u is h from here on
    s = _small_spikes(h, threshold)
    h.mul_(1 - s)
    return s


def fused_lif_step(x: torch.Tensor, u: torch.Tensor | None, decay: float, threshold: float):
    """One LIF timestep without autograd, as one compiled kernel: (spikes, membrane). `u` None
    means the first timestep (u = 0, a new membrane); otherwise `u` is updated in place."""
    s = torch.empty_like(x)
    if u is None:
        u = torch.empty_like(x)
        KERNELS.call(_k_first, x, s, u, float(threshold))
    else:
        KERNELS.call(_k_step, x, u, s, float(decay), float(threshold))
    return s, u


class _FusedLIFSeq(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, decay: float, threshold: float, surrogate: Surrogate):
        x = x.contiguous()
        s = torch.empty_like(x)
        KERNELS.call(_k_seq_forward, x, s, decay, threshold)
        ctx.save_for_backward(x)
        ctx.consts = (decay, threshold, surrogate)
        return s

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        gx = torch.empty_like(x)
        KERNELS.call(_k_seq_backward, grad.contiguous(), x, gx, *ctx.consts)
        return gx, None, None, None


def fused_lif_multistep(x: torch.Tensor, decay: float, threshold: float, surrogate: Surrogate) -> torch.Tensor:
    """`lif_multistep` with compiled kernels: one forward and one backward kernel for the whole
    sequence when a gradient is needed, else one kernel per timestep (no membrane kept at T = 1)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _FusedLIFSeq.apply(x, float(decay), float(threshold), surrogate)
    if x.shape[0] == 1:
        if small_cpu(x):
            return _small_spikes(x, float(threshold))
        return KERNELS.call(_k_spikes, x[0], float(threshold)).unsqueeze(0)
    out, u = torch.empty_like(x), torch.empty_like(x[0])
    KERNELS.call(_k_first, x[0], out[0], u, float(threshold))
    for t in range(1, x.shape[0]):
        KERNELS.call(_k_step, x[t], u, out[t], float(decay), float(threshold))
    return out


class FusedLIF(PlainLIF):
    """A LIF neuron's arithmetic as the compiled kernels above. A stepwise call that needs a
    gradient has no kernel (one step has no backward kernel) and runs the plain ops; a stepwise
    call on a small CPU tensor (`small_cpu`) runs `_small_*`, cheaper there."""

    def multistep(self, n: LIF, x: torch.Tensor) -> torch.Tensor:
        return fused_lif_multistep(x, n.decay, n.threshold, n.surrogate)

    def step(self, n: LIF, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return super().step(n, x)
        if not n.remember:  # one step from rest, nothing kept
            if small_cpu(x):
                return _small_spikes(x, float(n.threshold))
            return KERNELS.call(_k_spikes, x, float(n.threshold))
        if n.u is not None and n.u.shape != x.shape:
            n.full_state(x, torch.zeros_like)  # raises: a batch that changed size between steps
        if n.fresh is not None and n.u is not None:  # the engine's slots
            fresh = n.fresh.view(-1, *(1,) * (x.dim() - 1))
            if small_cpu(x):
                keep = None if n.all_fresh else fresh.logical_not() * float(n.decay)
                return _small_slot_step(x, n.u, keep, float(n.threshold))
            s = torch.empty_like(x)
            KERNELS.call(_k_slot_step, x, n.u, fresh, s, float(n.decay), float(n.threshold))
            return s
        s, n.u = fused_lif_step(x, n.u, n.decay, n.threshold)
        return s


def set_fused(model: nn.Module, on: bool) -> None:
    """Switch every LIF neuron of `model` to the compiled kernels (or back to the plain ops)."""
    for m in neuron_modules(model):
        if isinstance(m, LIF):
            m.impl = FusedLIF() if on else PlainLIF()
