"""Temporal conversion of rate-coded spike trains between layers whose windows differ (TEAS Eq. 3).

A neuron of layer l fires x spikes in its window of T_l steps. Eq. 3 (rate coding) refines the
integer count with the firing potential, x~ = x + 1 - V_th / V_fire, then the linear mapping
n = round(T_{l+1} / T_l * x~) gives the number of spikes the next layer receives, in the first n
steps of its window T_{l+1}. Choices where the paper is open (quoted by the report's method notes):

- Expansion (`teas.expansion`). The paper wants x~ in "the continuous domain [0, T^l]" so that
  expanding a window gains resolution, but the printed x~ lies in [x, x + 1) and reaches T^l + 1.
  `continuous` (default) rescales it onto [0, T^l): x~ = T^l (x + 1 - V_th / V_fire) / (T^l + 1),
  so equal counts stay apart by their firing potential and n never needs clipping; expanding
  T^l = 1 to 4 then gives n in {0, 2, 3, 4}. `clip` is the printed x~ with n clipped to
  [0, T_{l+1}]: expanding a 1-step window stays all or nothing (n in {0, 4}).

- V_fire is the membrane potential at the firing steps, averaged over the neuron's spikes (the
  paper calls the rate-coding one "the firing potential for the only spike" and the temporal one
  "the average": a rate-coded train has many spikes, so the average is the reading that applies).
- A neuron that never fired has no firing potential: x~ = 0, it sends no spikes.
- round is half up (floor(v + 0.5)), not Python's half-to-even.
- Equal windows: identity, the train passes unchanged and Eq. 3 is not applied (the paper:
  "directly apply the output spike train"); applied there it would add a spike to every neuron
  with V_fire > 2 V_th.
- Spike amplitude (1 for LIF, the threshold for IF) is kept: the output train holds 0 or it.
- Gradient (training): straight-through on the rate. Backward treats every output step as the
  input train's mean over its window, d out[t'] / d in[t] = 1 / T_l, so the output's total is
  T_{l+1} / T_l times the input count, as in the linear mapping; firing potentials get none.

`naive` is the baseline of the paper's Fig. 2: truncate a longer train, pad a shorter one with
silent steps (no conversion)."""

from __future__ import annotations

import torch

from seenn.common.errors import SeennError


def spike_count(spikes: torch.Tensor) -> torch.Tensor:
    """x: spikes per neuron over the window, [T, B, ...] -> [B, ...] (any nonzero value is a spike)."""
    return (spikes.detach() != 0).sum(0).to(torch.float32)


EXPANSIONS = ("continuous", "clip")  # teas.expansion: where Eq. 3's x~ lies (module docstring)


def refined_count(count: torch.Tensor, v_fire: torch.Tensor, threshold: torch.Tensor | float, t_in: int | None = None,
                  expansion: str = "clip") -> torch.Tensor:
    """Eq. 3, rate coding: x~ = x + 1 - V_th / V_fire where x > 0, else 0 (`clip`, as printed), or
    that times t_in / (t_in + 1), in [0, t_in) (`continuous`)."""
    if expansion not in EXPANSIONS:
        raise SeennError(f"teas.expansion must be one of {EXPANSIONS}, got {expansion!r}")
    fired = count > 0
    safe = torch.where(fired, v_fire, torch.ones_like(v_fire))
    x = torch.where(fired, count + 1 - threshold / safe, torch.zeros_like(count))
    if expansion == "continuous":
        if t_in is None:
            raise SeennError("the continuous reading of Eq. 3 needs the input window t_in")
        x = x * (t_in / (t_in + 1))
    return x


def mapped_count(x_tilde: torch.Tensor, t_in: int, t_out: int) -> torch.Tensor:
    """n = round(t_out / t_in * x~), half up, clipped to [0, t_out]."""
    return torch.floor(x_tilde * (t_out / t_in) + 0.5).clamp(0, t_out)


def first_steps(n: torch.Tensor, t_out: int, amplitude: torch.Tensor | float = 1.0) -> torch.Tensor:
    """A train [t_out, *n.shape] with a spike (of `amplitude`) in each of the first n steps."""
    steps = torch.arange(t_out, device=n.device, dtype=n.dtype).view(-1, *([1] * n.dim()))
    return (steps < n.unsqueeze(0)).to(n.dtype) * amplitude


def _straight_through(hard: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
    """`hard` forward; backward, every output step is the input's mean over its window."""
    if not spikes.requires_grad:
        return hard
    soft = spikes.mean(0, keepdim=True).expand_as(hard)
    return hard + (soft - soft.detach())


def _check(spikes: torch.Tensor, t_out: int) -> None:
    if spikes.dim() < 2 or spikes.shape[0] < 1:
        raise SeennError(f"a spike train must be [T, B, ...] with T >= 1, got shape {tuple(spikes.shape)}")
    if not isinstance(t_out, int) or t_out < 1:
        raise SeennError(f"target window must be an integer >= 1, got {t_out!r}")


def convert(spikes: torch.Tensor, v_fire: torch.Tensor, threshold: torch.Tensor | float, t_out: int,
            amplitude: torch.Tensor | float = 1.0, expansion: str = "continuous") -> torch.Tensor:
    """Eq. 3 + linear mapping: a rate-coded train [T_l, B, ...] (with each neuron's mean firing
    potential `v_fire` [B, ...]) as a train [t_out, B, ...]; identity when t_out == T_l."""
    _check(spikes, t_out)
    t_in = spikes.shape[0]
    if t_out == t_in:
        return spikes
    if v_fire.shape != spikes.shape[1:]:
        raise SeennError(f"firing potentials {tuple(v_fire.shape)} do not match spike train {tuple(spikes.shape)}")
    x_tilde = refined_count(spike_count(spikes), v_fire.detach().to(torch.float32), threshold, t_in, expansion)
    n = mapped_count(x_tilde, t_in, t_out)
    hard = first_steps(n, t_out, amplitude).to(spikes.dtype)
    return _straight_through(hard, spikes)


def naive(spikes: torch.Tensor, v_fire: torch.Tensor, threshold: torch.Tensor | float, t_out: int,
          amplitude: torch.Tensor | float = 1.0, expansion: str = "continuous") -> torch.Tensor:
    """Fig. 2's unconverted alignment: the first t_out steps, silent steps appended if longer
    (`expansion` does not apply)."""
    _check(spikes, t_out)
    t_in = spikes.shape[0]
    if t_out <= t_in:
        return spikes[:t_out]
    return torch.cat([spikes, spikes.new_zeros(t_out - t_in, *spikes.shape[1:])])


CONVERSIONS = {"eq3": convert, "naive": naive}  # how a train crosses between windows
