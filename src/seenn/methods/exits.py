"""Exit rules. SEENN-I: stop at the first t whose score of softmax(z_t) exceeds alpha.
SEENN-II: stop at the timestep the policy picks. One implementation shared by every branch.

An exit rule is one object (`ExitRule`) with both forms: `posthoc` on saved per-timestep logits
(calibration, tables) and `stops`, one timestep at a time, for the early-exit engine; a test
checks that the two agree for every rule in `RULES`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

DYNAMIC_CONFIDENCE_DIVISOR = 30.0  # Dynamic Confidence's fixed divisor of the summed outputs (the authors' main.py)
ACCUMULATE = ("sum", "mean")  # seenn1.accumulate: score z_t, or z_t / t


def exit_scores(logits: torch.Tensor, score: str, temperature: float = 1.0, accumulate: str = "sum",
                entropy_temperature: bool = False) -> torch.Tensor:
    """Score [N, T] of accumulated logits z [N, T, K]; every score lies in [0, 1] and a sample exits
    once it exceeds the threshold alpha.

    confidence = max softmax(z_t / temperature) (SEENN-I); entropy = 1 - H(softmax(z_t)) / log K,
    with the temperature only if `entropy_temperature` (the authors' code applies it to confidence
    only; DT-SNN's rule); topk_gap = g / (1 + g) for the gap g between the two largest accumulated
    outputs (SNNCutoff's Top-K: g > beta is score > beta / (1 + beta)); dynamic_confidence = max
    softmax(z_t / 30) (Dynamic Confidence's fixed divisor, whatever `temperature` says).
    accumulate='mean' divides z_t by t first (same argmax, different scale)."""
    t = torch.arange(1, logits.shape[1] + 1).view(1, -1)
    return step_scores(logits, t, score, temperature, accumulate, entropy_temperature)


def step_scores(z: torch.Tensor, t: torch.Tensor, score: str, temperature: float = 1.0,
                accumulate: str = "sum", entropy_temperature: bool = False) -> torch.Tensor:
    """Scores of accumulated logits z [..., K] reached at 1-based timesteps t (broadcast against
    z's leading dimensions): `exit_scores` for an engine whose samples are at different t."""
    z = z.double()
    if accumulate == "mean":
        z = z / t.to(z.dtype).unsqueeze(-1)
    elif accumulate not in ACCUMULATE:
        raise ValueError(f"accumulate must be 'sum' or 'mean', got '{accumulate}'")
    if score not in SCORE_FUNCTIONS:
        raise ValueError(f"unknown exit score '{score}', expected one of {tuple(SCORE_FUNCTIONS)}")
    return SCORE_FUNCTIONS[score](z, temperature, entropy_temperature)


def _confidence(z: torch.Tensor, temperature: float, entropy_temperature: bool) -> torch.Tensor:
    """SEENN-I: max softmax(z / temperature); z / 1.0 is z exactly, so no division then."""
    return torch.log_softmax(z if temperature == 1.0 else z / temperature, dim=-1).max(-1).values.exp()


def _entropy(z: torch.Tensor, temperature: float, entropy_temperature: bool) -> torch.Tensor:
    """SEENN-I's entropy score = DT-SNN's rule: 1 - H(softmax(z)) / log K (temperature only if asked)."""
    logp = torch.log_softmax(z / temperature if entropy_temperature else z, dim=-1)
    return 1 - (-(logp.exp() * logp).sum(-1)) / math.log(z.shape[-1])


def _topk_gap(z: torch.Tensor, temperature: float, entropy_temperature: bool) -> torch.Tensor:
    """SNNCutoff's Top-K: the gap g between the two largest outputs, as g / (1 + g)."""
    top = z.topk(2, dim=-1).values
    gap = top[..., 0] - top[..., 1]
    return gap / (1 + gap)


def _dynamic_confidence(z: torch.Tensor, temperature: float, entropy_temperature: bool) -> torch.Tensor:
    """Dynamic Confidence: max softmax(z / 30), the authors' fixed divisor."""
    return torch.log_softmax(z / DYNAMIC_CONFIDENCE_DIVISOR, dim=-1).max(-1).values.exp()


# seenn1.scores -> score function (z [..., K] float64, temperature, entropy_temperature) -> [...] in [0, 1]:
# a new rule on the accumulated logits is one function here (see the README's recipe)
SCORE_FUNCTIONS = {"confidence": _confidence, "entropy": _entropy, "topk_gap": _topk_gap,
                   "dynamic_confidence": _dynamic_confidence}
SCORES = tuple(SCORE_FUNCTIONS)  # seenn1.scores (the schema's enum must list the same)


def seenn1_exit(scores: torch.Tensor, alpha: float) -> torch.Tensor:
    """1-based exit timestep [N]: first t with score > alpha (strict), else T."""
    n, T = scores.shape
    above = scores > alpha
    above[:, -1] = True
    return above.double().argmax(1) + 1


def seenn1_exit_many(scores: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """Exit timesteps for many thresholds at once: [len(alphas), N]."""
    above = scores[None, :, :] > alphas.view(-1, 1, 1).to(scores.dtype)
    above[:, :, -1] = True
    return above.double().argmax(2) + 1


def policy_exit(action_logits: torch.Tensor, grid: list[int] | None = None) -> torch.Tensor:
    """SEENN-II at test time: u = the timestep of action argmax pi(.|x), 1-based [N]; `grid`
    lists the timestep of each action (None: action i is u = i + 1)."""
    a = action_logits.argmax(-1)
    return a + 1 if grid is None else torch.as_tensor(grid, dtype=torch.long, device=a.device)[a]


def seenn1_stops(scores_t: torch.Tensor, alpha: float, t: int | torch.Tensor, T: int) -> torch.Tensor:
    """The SEENN-I rule one timestep at a time, for an engine that runs t = 1, 2, ...: bool [N],
    True where a sample whose score at 1-based timestep t (an int, or one per sample) is
    `scores_t` [N] stops now (score > alpha, strictly, or t = T). Stopping at the first True
    gives `seenn1_exit`'s timestep."""
    return (scores_t > alpha) | (torch.as_tensor(t) >= T)


# --- exit rules as objects ------------------------------------------------------------------------

class ExitRule:
    """Where each sample leaves: `posthoc(logits)` gives 1-based exit timesteps [N] from saved
    accumulated logits [N, T, K]; `stops(t, T, z, idx)` says, while the engine runs, which of the
    running samples (original indices `idx` [B], at 1-based timesteps `t` [B], accumulated logits
    `z` [B, K]) stop now, all on the engine's device, with no host read (the step runs as one
compiled graph). Running the engine until each sample stops gives `posthoc`'s timesteps."""

    kind: ClassVar[str]

    def posthoc(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def on(self, device: torch.device) -> "ExitRule":
        """This rule with its per-input tensors on `device` (the engine's step reads them there)."""
        return self

    def stops(self, t: torch.Tensor, T: int, z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class FixedT(ExitRule):
    """No early exit: every sample runs all T timesteps."""

    kind: ClassVar[str] = "fixed"

    def posthoc(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long)

    def stops(self, t, T, z, idx):
        return t >= T


@dataclass(frozen=True)
class Seenn1(ExitRule):
    """SEENN-I: stop at the first t whose score of the accumulated logits exceeds alpha (or at T);
    the settings are those the calibration recorded (`seenn1.json: settings`)."""

    kind: ClassVar[str] = "seenn1"
    score: str
    alpha: float
    temperature: float = 1.0
    accumulate: str = "sum"
    entropy_temperature: bool = False

    @classmethod
    def calibrated(cls, score: str, calibration: dict) -> "Seenn1":
        """The rule at the alpha a SEENN-I calibration (a seenn1.json) chose for `score`."""
        how = calibration["settings"]
        return cls(score, calibration["scores"][score]["alpha"], how["temperature"], how["accumulate"],
                   how["entropy_temperature"])

    @property
    def how(self) -> tuple:
        return self.temperature, self.accumulate, self.entropy_temperature

    def posthoc(self, logits: torch.Tensor) -> torch.Tensor:
        return seenn1_exit(exit_scores(logits, self.score, *self.how), self.alpha)

    def stops(self, t, T, z, idx):
        return seenn1_stops(step_scores(z, t, self.score, *self.how), self.alpha, t, T)


@dataclass(frozen=True, eq=False)
class ExitAt(ExitRule):
    """SEENN-II: sample i stops at u[i] (1-based), decided from the input before the SNN runs."""

    kind: ClassVar[str] = "policy"
    u: torch.Tensor

    def posthoc(self, logits: torch.Tensor) -> torch.Tensor:
        return self.u.clone()

    def on(self, device: torch.device) -> "ExitAt":
        return ExitAt(self.u.to(device))

    def stops(self, t, T, z, idx):
        return self.u[idx] == t


RULES = {rule.kind: rule for rule in (FixedT, Seenn1, ExitAt)}
