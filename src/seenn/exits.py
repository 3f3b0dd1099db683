"""Exit rules. SEENN-I: stop at the first t whose score of softmax(z_t) exceeds alpha.
SEENN-II: stop at the timestep the policy picks. One implementation shared by every branch."""

from __future__ import annotations

import math

import torch

SCORES = ("confidence", "entropy")


def exit_scores(logits: torch.Tensor, score: str, temperature: float = 1.0, accumulate: str = "sum",
                entropy_temperature: bool = False) -> torch.Tensor:
    """Score [N, T] of accumulated logits z [N, T, K].

    confidence = max softmax(z_t / temperature); entropy = 1 - H(softmax(z_t)) / log K, with the
    temperature only if `entropy_temperature` (the authors' code applies it to confidence only).
    accumulate='mean' divides z_t by t first (same argmax, different softmax scale)."""
    t = torch.arange(1, logits.shape[1] + 1).view(1, -1)
    return step_scores(logits, t, score, temperature, accumulate, entropy_temperature)


def step_scores(z: torch.Tensor, t: torch.Tensor, score: str, temperature: float = 1.0,
                accumulate: str = "sum", entropy_temperature: bool = False) -> torch.Tensor:
    """Scores of accumulated logits z [..., K] reached at 1-based timesteps t (broadcast against
    z's leading dimensions): `exit_scores` for an engine whose samples are at different t."""
    z = z.double()
    if accumulate == "mean":
        z = z / t.to(z.dtype).unsqueeze(-1)
    elif accumulate != "sum":
        raise ValueError(f"accumulate must be 'sum' or 'mean', got '{accumulate}'")
    if score == "confidence":
        return torch.log_softmax(z / temperature, dim=-1).max(-1).values.exp()
    if score == "entropy":
        logp = torch.log_softmax(z / temperature if entropy_temperature else z, dim=-1)
        h = -(logp.exp() * logp).sum(-1)
        return 1 - h / math.log(z.shape[-1])
    raise ValueError(f"unknown exit score '{score}', expected one of {SCORES}")


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
