"""Conformal early exit, as in "Knowing When to Stop" (Chen, Park, Simeone 2023, SpikeCP): stop
at the first allowed timestep whose conformal prediction set is small enough.

At each stopping time t of the set S (`checkpoints`, 1-based), the nonconformity of class y is
s_t(x, y) = 1 - softmax(z_t)_y (or -log softmax(z_t)_y) for the accumulated logits z_t. Its
threshold q_t is the ceil((n + 1)(1 - alpha_c / |S|))-th smallest calibration score of the true
class (Bonferroni across the |S| stopping times), +inf when that rank exceeds n. The set is
C_t = {y : s_t(x, y) <= q_t}; a sample stops at the first t in S with |C_t| <= max_set_size, else
at T. With probability at least 1 - alpha_c (in expectation over the calibration draw) the true
class lies in the set at the stopping time, whichever t that is."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from seenn.methods.exits import ExitRule

SCORES = ("one_minus_p", "neg_log_p")  # conformal.score


def nonconformity(z: torch.Tensor, score: str) -> torch.Tensor:
    """Scores of every class [..., K] for accumulated logits z [..., K] (in float64)."""
    logp = torch.log_softmax(z.double(), dim=-1)
    if score == "one_minus_p":
        return 1 - logp.exp()
    if score == "neg_log_p":
        return -logp
    raise ValueError(f"unknown conformal score '{score}', expected one of {SCORES}")


def quantile_rank(n: int, alpha: float, stops: int) -> int:
    """The rank (1-based) of the calibration score that is q_t: ceil((n + 1)(1 - alpha / |S|));
    above n means q_t = +inf (the set holds every class, so the rule cannot stop there)."""
    if not 0 < alpha < 1:
        raise ValueError(f"conformal.alpha must lie in (0, 1), got {alpha}")
    return math.ceil((n + 1) * (1 - alpha / stops) - 1e-12)


def checkpoints_for(spec: list[int] | str | None, T: int) -> list[int]:
    """The stopping times of `conformal.checkpoints` for horizon T: None every timestep, 'pow2'
    1, 2, 4, ... and T, else the listed timesteps."""
    if spec is None:
        return list(range(1, T + 1))
    if spec == "pow2":
        return sorted({2 ** k for k in range(T.bit_length()) if 2 ** k < T} | {T})
    return list(spec)


def calibrate(logits: torch.Tensor, labels: torch.Tensor, checkpoints: list[int], alpha: float,
              score: str) -> list[float]:
    """q_t for each checkpoint, from calibration logits [N, T, K] and labels [N]."""
    n, T = logits.shape[0], logits.shape[1]
    bad = [t for t in checkpoints if not 1 <= t <= T]
    if bad or not checkpoints or list(checkpoints) != sorted(set(checkpoints)):
        raise ValueError(f"conformal.checkpoints must be increasing timesteps in 1..{T}, got {list(checkpoints)}")
    k = quantile_rank(n, alpha, len(checkpoints))
    qs = []
    for t in checkpoints:
        s = nonconformity(logits[:, t - 1], score)[torch.arange(n), labels]
        qs.append(math.inf if k > n else float(s.sort().values[k - 1]))
    return qs


@dataclass(frozen=True, eq=False)
class ConformalExit(ExitRule):
    """The conformal stopping rule with its calibrated thresholds; an ExitRule, so it runs post
    hoc on saved logits and in the engine's step (no host read)."""

    kind: ClassVar[str] = "conformal"
    checkpoints: tuple[int, ...]
    q: tuple[float, ...]
    max_set_size: int
    score: str
    table: torch.Tensor = field(default=None)  # q by 1-based timestep [T_max + 1], +inf off the checkpoints

    def __post_init__(self):
        if len(self.q) != len(self.checkpoints):
            raise ValueError("one threshold per checkpoint")
        if self.table is None:
            table = torch.full((max(self.checkpoints) + 1,), math.inf, dtype=torch.float64)
            table[list(self.checkpoints)] = torch.tensor(self.q, dtype=torch.float64)
            object.__setattr__(self, "table", table)

    def on(self, device: torch.device) -> "ConformalExit":
        return ConformalExit(self.checkpoints, self.q, self.max_set_size, self.score, self.table.to(device))

    def threshold(self, t: torch.Tensor) -> torch.Tensor:
        """q_t at 1-based timesteps t: +inf at every t that is not a checkpoint."""
        last = self.table.shape[0] - 1
        return torch.where(t <= last, self.table[t.clamp(max=last)], math.inf)

    def sets(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Membership [..., K] of C_t for accumulated logits z [..., K] at timesteps t (broadcast)."""
        return nonconformity(z, self.score) <= self.threshold(t).unsqueeze(-1)

    def set_sizes(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.sets(z, t).sum(-1)

    def posthoc(self, logits: torch.Tensor) -> torch.Tensor:
        N, T = logits.shape[0], logits.shape[1]
        t = torch.arange(1, T + 1).expand(N, T)
        small = self.set_sizes(logits, t) <= self.max_set_size
        small[:, -1] = True
        return small.double().argmax(1) + 1

    def stops(self, t, T, z, idx):
        return self.set_sizes(z, t) <= self.max_set_size


def report(logits: torch.Tensor, labels: torch.Tensor, rule: ConformalExit) -> dict:
    """Coverage (true class in the set at the stopping time), average set size, accuracy of the
    top class and average timesteps, on logits [N, T, K]."""
    exits = rule.posthoc(logits)
    n = torch.arange(logits.shape[0])
    z = logits[n, exits - 1]
    inside = rule.sets(z, exits)
    return {"coverage": float(inside[n, labels].double().mean()), "avg_set_size": float(inside.sum(-1).double().mean()),
            "accuracy": float((z.argmax(-1) == labels).double().mean() * 100),
            "avg_timesteps": float(exits.double().mean())}
