"""Accuracy per timestep, AET (paper Eq. 4) and empirical AET (Eq. 13), from saved logits.

Inputs are accumulated logits z of shape [N, T, K] (z[:, t-1] = O_1 + ... + O_t) and labels
[N]. Timesteps are 1-based in every returned value."""

from __future__ import annotations

import torch


def correctness(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Bool [N, T]: is argmax z_t the label?"""
    if logits.ndim != 3 or labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"expected logits [N, T, K] and labels [N], got {tuple(logits.shape)} and {tuple(labels.shape)}")
    return logits.argmax(-1) == labels[:, None]


def accuracy_per_t(correct: torch.Tensor) -> list[float]:
    """Percent of samples correct at each fixed t = 1..T."""
    return (correct.double().mean(0) * 100).tolist()


def aet(correct: torch.Tensor) -> float:
    """Paper Eq. 4, which assumes a correct prediction stays correct:
    (1/N) [ 1*C_1 + sum_{t>=2} t*(C_t - C_{t-1}) + T*(N - C_T) ], C_t = number correct at t."""
    n, T = correct.shape
    c = correct.sum(0).double()
    total = 1.0 * c[0]
    for t in range(2, T + 1):
        total += t * (c[t - 1] - c[t - 2])
    total += T * (n - c[T - 1])
    return float(total / n)


def first_correct_t(correct: torch.Tensor) -> torch.Tensor:
    """Per sample, the first 1-based t at which it is correct, or T if never (long [N])."""
    n, T = correct.shape
    t_idx = torch.arange(1, T + 1).expand(n, T)
    masked = torch.where(correct, t_idx, torch.full_like(t_idx, T + 1))
    first = masked.min(1).values
    return torch.where(first > T, torch.full_like(first, T), first)


def empirical_aet(correct: torch.Tensor) -> float:
    """Paper Eq. 13: mean over samples of the first timestep that is actually correct (T if never)."""
    return float(first_correct_t(correct).double().mean())


def oracle(correct: torch.Tensor) -> tuple[float, float]:
    """Best possible per-sample exit: (accuracy %, average timesteps). Each sample stops at its
    first correct timestep; one never correct runs all T."""
    return float(correct.any(1).double().mean() * 100), empirical_aet(correct)


def exit_outcome(correct: torch.Tensor, exit_t: torch.Tensor) -> tuple[float, float]:
    """Accuracy (%) and average timesteps when sample i stops at 1-based exit_t[i]."""
    hit = correct.gather(1, (exit_t - 1).long()[:, None]).squeeze(1)
    return float(hit.double().mean() * 100), float(exit_t.double().mean())


def exit_histogram(exit_t: torch.Tensor, T: int) -> list[int]:
    """Number of samples exiting at each t = 1..T."""
    return torch.bincount(exit_t.long() - 1, minlength=T).tolist()


def kept_timesteps(grid, T: int) -> list[int] | None:
    """The timesteps an evaluation keeps of 1..T (conversion.keep_timesteps): None (every one) for an
    empty grid or one that holds them all; pow2: 1, 2, 4, ..., T; a list: its entries up to T, and T."""
    if grid is None:
        return None
    kept = doubling_timesteps(T) if grid == "pow2" else sorted({t for t in grid if t <= T} | {T})
    return None if kept == list(range(1, T + 1)) else kept


def doubling_timesteps(T: int) -> list[int]:
    """1, 2, 4, ... below T, then T itself: the timesteps a long run is summarized at (and
    SEENN-II's powers-of-two action grid)."""
    ts, t = [], 1
    while t < T:
        ts.append(t)
        t *= 2
    return ts + [T]
