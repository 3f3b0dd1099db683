"""Learn-then-Test (Angelopoulos, Bates, Candes, Jordan, Lei 2021) for SEENN-I's threshold alpha:
a threshold certified so that, with probability at least 1 - delta over the draw of the
calibration split, its expected risk on new data from the same distribution is at most epsilon.

The risk of alpha is a 0/1 loss: the share of samples whose early-exit prediction differs from
the full-T prediction (`disagreement`). Each alpha's null hypothesis "risk > epsilon" gets a
p-value from its calibration risk (exact binomial, or Hoeffding-Bentkus); fixed-sequence
testing walks the alphas from strict (late exits, low risk) to loose and certifies every one
before the first p-value above delta, so no multiplicity correction is needed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from seenn.methods.exits import exit_scores, seenn1_exit_many

P_VALUES = ("binomial", "hoeffding_bentkus")


def binomial_p_value(losses: int, n: int, epsilon: float) -> float:
    """Exact p-value of "risk > epsilon" for `losses` 0/1 losses in n samples:
    P(Binomial(n, epsilon) <= losses)."""
    return p_values("binomial", [losses], n, epsilon)[0]


def hoeffding_bentkus_p_value(losses: int, n: int, epsilon: float) -> float:
    """Hoeffding-Bentkus p-value (LTT, Proposition 3): min(exp(-n h(min(R, eps), eps)),
    e P(Binomial(n, eps) <= ceil(n R))), R = losses / n, h the Bernoulli relative entropy."""
    return p_values("hoeffding_bentkus", [losses], n, epsilon)[0]


def _kl(a: float, b: float) -> float:
    """h(a, b) = a log(a / b) + (1 - a) log((1 - a) / (1 - b)), with 0 log 0 = 0."""
    return (a * math.log(a / b) if a > 0 else 0.0) + ((1 - a) * math.log((1 - a) / (1 - b)) if a < 1 else 0.0)


def _check(losses: int, n: int, epsilon: float) -> None:
    if n < 1 or not 0 <= losses <= n:
        raise ValueError(f"need 0 <= losses <= n and n >= 1, got losses={losses}, n={n}")
    if not 0 < epsilon < 1:
        raise ValueError(f"epsilon must lie in (0, 1), got {epsilon}")


def p_values(kind: str, losses: list[int], n: int, epsilon: float) -> list[float]:
    """p-values of kind `kind` (P_VALUES) for many loss counts at once: one vectorised binomial
    tail; ceil(n R) in Hoeffding-Bentkus is the loss count itself."""
    k = np.asarray(losses, dtype=np.int64)
    if len(k):
        _check(int(k.min()), n, epsilon)
        _check(int(k.max()), n, epsilon)
    from scipy.stats import binom  # here: scipy.stats costs ~0.6 s to import, and every stage's process loads this module

    if kind == "binomial":
        return binom.cdf(k, n, epsilon).tolist()
    if kind == "hoeffding_bentkus":
        return [min(math.exp(-n * _kl(min(r, epsilon), epsilon)), b) for r, b in
                zip((k / n).tolist(), (math.e * binom.cdf(k, n, epsilon)).tolist())]
    raise ValueError(f"unknown p-value '{kind}', expected one of {P_VALUES}")


def fixed_sequence(p_values: list[float], delta: float) -> int:
    """Fixed-sequence testing of hypotheses ordered strict to loose: test each at level delta
    and stop at the first p > delta. Returns how many were rejected (certified): the loosest
    certified one is at index (result - 1); 0 means none."""
    if not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    for i, p in enumerate(p_values):
        if p > delta:
            return i
    return len(p_values)


def disagreement(logits: torch.Tensor, exits: torch.Tensor) -> torch.Tensor:
    """Losses [A, N] (bool): the prediction at each alpha's exit timestep (exits [A, N],
    1-based) differs from the full-T prediction, for accumulated logits [N, T, K]."""
    pred = logits.argmax(-1)  # [N, T]
    at_exit = pred[torch.arange(pred.shape[0])[None, :], exits - 1]
    return at_exit != pred[:, -1][None, :]


@dataclass
class Certified:
    """The outcome of Learn-then-Test on one calibration split."""

    index: int | None  # row of the certified alpha in the (ascending) grid, None when none is
    p_values: list[float]  # per alpha of the grid, in grid order
    risks: list[float]  # calibration risk per alpha, in grid order


def certify(logits: torch.Tensor, alphas: torch.Tensor, score: str, epsilon: float, delta: float,
            kind: str = "binomial", how: tuple = (1.0, "sum", False)) -> Certified:
    """Learn-then-Test on calibration logits [N, T, K] over the ascending grid `alphas`: the
    loosest (smallest) alpha that fixed-sequence testing from the largest alpha down certifies
    at (epsilon, delta), or None (then the caller runs full T)."""
    exits = seenn1_exit_many(exit_scores(logits, score, *how), alphas)  # [A, N]
    return certify_losses(disagreement(logits, exits).sum(1).tolist(), logits.shape[0], alphas, epsilon, delta, kind)


def certify_losses(losses: list[int], n: int, alphas: torch.Tensor, epsilon: float, delta: float,
                   kind: str = "binomial") -> Certified:
    """`certify` from each alpha's count of losses on n calibration samples."""
    pv = p_values(kind, losses, n, epsilon)
    order = sorted(range(len(alphas)), key=lambda i: -float(alphas[i]))  # strict (large alpha) first
    rejected = fixed_sequence([pv[i] for i in order], delta)
    return Certified(order[rejected - 1] if rejected else None, pv, [k / n for k in losses])
