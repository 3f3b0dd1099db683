"""SEENN-II's reward and policy-gradient estimators.

Reward (authors' code): R(u) = reward_base^-(u-1) when the SNN is correct at u, else -beta.
For a long T (the converted SNN) that reward is nearly zero past u ~ 10, so a branch can also
train variants: an action grid of 1, 2, 4, ..., T instead of every u, and a linear reward
R(u) = 1 - (u-1)/T. Optional per-sample weighting (authors' code): w = 1 for samples the SNN
gets right at t = 1, w = r / (1 - r) for the others, r = accuracy at t = 1 on the policy's
training split; it gives the rare "hard" samples as much total weight as the easy ones.

Two estimators of the policy gradient:
- expected:  maximize the exact expected reward mean_b w_b sum_u pi(u|x_b) R_b(u), possible
             because R is known for every action (what the authors' code does);
- reinforce: sample one u_b ~ pi(.|x_b) per sample and step along w_b (R_b(u_b) - b)
             grad log pi(u_b|x_b), b = the mean of the other samples' sampled rewards in the
             batch (leave-one-out; the paper's description: reinforcement learning with a baseline).
Sampling uses the caller's seeded generator, so training is deterministic and resumable."""

from __future__ import annotations

import torch

from seenn.methods.metrics import doubling_timesteps

ESTIMATORS = ("expected", "reinforce")
ACTION_GRIDS = ("all", "powers_of_two")
REWARD_SHAPES = ("exponential", "linear")
# the SEENN-II training rules a branch can train, by name: (action grid, reward shape)
VARIANTS = {"paper": ("all", "exponential"), "pow2": ("powers_of_two", "exponential"),
            "linear": ("all", "linear"), "pow2_linear": ("powers_of_two", "linear")}


def action_grid(name: str, T: int) -> list[int]:
    """The exit timesteps a policy chooses among: every u in 1..T (the paper), or 1, 2, 4, ..., T
    (a few actions whose costs differ by a factor of two, for a long T)."""
    if name == "all":
        return list(range(1, T + 1))
    if name == "powers_of_two":
        return doubling_timesteps(T)
    raise ValueError(f"unknown action grid '{name}', expected one of {ACTION_GRIDS}")


def reward_table(correct: torch.Tensor, beta: float, base: float = 2.0, shape: str = "exponential",
                 grid: list[int] | None = None) -> torch.Tensor:
    """R [N, A] over the actions u of `grid` (default 1..T): the gain where the SNN is correct at
    u, -beta where it is wrong. Gain: base^-(u-1) (exponential, the authors') or 1 - (u-1)/T
    (linear: falls evenly over the whole window, so late exits still earn something)."""
    T = correct.shape[1]
    u = torch.tensor(list(range(1, T + 1)) if grid is None else grid, dtype=torch.long)
    if shape == "exponential":
        gain = base ** -(u - 1).to(torch.float32)
    elif shape == "linear":
        gain = 1 - (u - 1).to(torch.float32) / T
    else:
        raise ValueError(f"unknown reward shape '{shape}', expected one of {REWARD_SHAPES}")
    c = correct[:, u - 1]
    return torch.where(c, gain.expand_as(c), torch.full(c.shape, -float(beta)))


def t1_accuracy(correct: torch.Tensor) -> float:
    """r: the fraction of samples the SNN gets right at t = 1 (what the authors' weighting uses)."""
    return float(correct[:, 0].double().mean())


def sample_weights(correct: torch.Tensor, weighting: bool) -> torch.Tensor:
    """Per-sample weights [N]: all 1, or the authors' w = r/(1-r) for samples wrong at t = 1
    (r = their accuracy at t = 1 on this split)."""
    w = torch.ones(correct.shape[0])
    if not weighting:
        return w
    r = t1_accuracy(correct)
    if r <= 0.0 or r >= 1.0:  # every sample right (or wrong) at t = 1: nothing to reweight
        return w
    return torch.where(correct[:, 0], w, torch.full_like(w, r / (1 - r)))


def expected_loss(logits: torch.Tensor, rewards: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Minus the exact weighted expected reward; returns (loss, per-sample expected reward)."""
    er = (torch.softmax(logits, -1) * rewards).sum(-1)
    return -(w * er).mean(), er.detach()


def reinforce_loss(logits: torch.Tensor, rewards: torch.Tensor, w: torch.Tensor,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE with a leave-one-out baseline: one sampled action per sample, baseline b_i = the
    mean of the other samples' rewards, so it does not depend on sample i's own action (the plain
    batch mean does, biasing the gradient by O(1/batch)); a batch of one gets baseline 0. Returns
    (loss whose gradient is the estimator, per-sample sampled reward)."""
    probs = torch.softmax(logits.detach().float().cpu(), -1)
    u = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(logits.device)
    r = rewards.gather(1, u[:, None]).squeeze(1)
    n = r.numel()
    baseline = (r.sum() - r) / (n - 1) if n > 1 else torch.zeros_like(r)
    advantage = w * (r - baseline)
    logp = torch.log_softmax(logits, -1).gather(1, u[:, None]).squeeze(1)
    return -(advantage * logp).mean(), r.detach()


def policy_loss(estimator: str, logits, rewards, w, generator):
    if estimator == "expected":
        return expected_loss(logits, rewards, w)
    if estimator == "reinforce":
        return reinforce_loss(logits, rewards, w, generator)
    raise ValueError(f"unknown estimator '{estimator}', expected one of {ESTIMATORS}")
