"""Training and applying one SEENN-II policy: the resumable training loop over the correctness
table, and u = argmax pi at test time (methods.exits.policy_exit)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from seenn.common.progress import progress
from seenn.loops.resume import run_epochs
from seenn.loops.watch import TrainingWatch
from seenn.methods.exits import policy_exit
from seenn.methods.metrics import exit_histogram, exit_outcome
from seenn.methods.policy.estimators import VARIANTS, action_grid, policy_loss, reward_table, sample_weights
from seenn.models.policy import build_policy

log = logging.getLogger("seenn")

POLICY_KEYS = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "reward_base", "policy_stem_channels",
               "policy_widths", "policy_stem_stride")


@torch.no_grad()
def policy_logits(policy, x: torch.Tensor, device: torch.device, batch_size: int = 500) -> torch.Tensor:
    """Action logits [N, T] in eval mode."""
    policy.eval()
    return torch.cat([policy(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, x.shape[0], batch_size)])


def fit_policy(x: torch.Tensor, correct: torch.Tensor, *, cfg: dict, beta: float, estimator: str, weighting: bool,
               epochs: int, in_channels: int, seed: int, device: torch.device, ckpt_dir: Path, fp: str,
               desc: str, variant: str = "paper") -> tuple[torch.nn.Module, list[dict]]:
    """Train one policy on (inputs x, SNN correctness table) with SGD + cosine; resumable, and
    deterministic given `seed` (same seed: same initial weights and batch order for every beta).
    `variant` names the action grid and reward shape (`VARIANTS`)."""
    grid_name, shape = VARIANTS[variant]
    grid = action_grid(grid_name, correct.shape[1])
    torch.manual_seed(seed)
    policy = build_policy(in_channels, len(grid), cfg["policy_stem_channels"], cfg["policy_widths"],
                          cfg["policy_stem_stride"], grid).to(device)
    rewards = reward_table(correct, beta, cfg["reward_base"], shape, grid)
    w = sample_weights(correct, weighting)
    opt = torch.optim.SGD(policy.parameters(), lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    steps_per_epoch = math.ceil(x.shape[0] / cfg["batch_size"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)

    watch = TrainingWatch(desc, device, cfg.get("log_every", 1), "none")
    grid_t = None if grid is None else torch.as_tensor(grid, dtype=torch.long, device=device)

    def epoch_fn(epoch: int) -> dict:
        """One epoch; the logged greedy (u = argmax pi) reward, mean u and accuracy are those of
        each batch's forward pass before its update (no extra pass over the split). The sums
        stay on the device; the host reads them every `seenn2.log_every` steps."""
        policy.train()
        watch.begin_epoch()
        lr = opt.param_groups[0]["lr"]
        total = 0
        sums = torch.zeros(4, dtype=torch.float64, device=device)  # objective, greedy reward, u, hits
        order = torch.randperm(x.shape[0], generator=gen)
        bar = progress(range(0, x.shape[0], cfg["batch_size"]), desc=f"{desc} epoch {epoch}/{epochs}")
        for k, i in enumerate(bar, 1):
            idx = order[i : i + cfg["batch_size"]]
            logits = policy(x[idx].to(device))
            r_idx = rewards[idx].to(device)
            loss, r = policy_loss(estimator, logits, r_idx, w[idx].to(device), gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            watch.step(loss, policy.parameters(), opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
            a = logits.detach().argmax(-1)
            u = policy_exit(logits.detach(), grid_t)
            sums += torch.stack([r.sum().double(), r_idx.gather(1, a[:, None]).double().sum(),
                                 u.sum().double(), correct[idx].to(device).gather(1, (u - 1)[:, None]).sum().double()])
            total += idx.numel()
            if watch.due(k):
                watch.read(epoch)
                s_host = sums.tolist()
                bar.set_postfix(reward=f"{s_host[1] / total:.4f}", mean_u=f"{s_host[2] / total:.2f}")
        watch.read(epoch)
        obj_sum, reward_sum, u_sum, hits = sums.tolist()
        row = {"epoch": epoch, "steps": epoch * steps_per_epoch, "lr": lr, "train_reward": obj_sum / total,
               "mean_reward": reward_sum / total, "mean_u": int(u_sum) / total, "accuracy": 100 * int(hits) / total}
        log.info("%s epoch %d: estimator reward %.4f, greedy: reward %.4f mean u %.3f accuracy %.2f %%",
                 desc, epoch, row["train_reward"], row["mean_reward"], row["mean_u"], row["accuracy"])
        return row

    rows = run_epochs(name=desc, ckpt_dir=ckpt_dir, fp=fp, epochs=epochs, model=policy, optimizer=opt,
                      scheduler=sched, generator=gen, epoch_fn=epoch_fn)
    return policy.cpu(), rows


def beta_tag(beta: float) -> str:
    return f"{beta:g}".replace(".", "p").replace("-", "m")


def evaluate_policy(policy, x: torch.Tensor, correct: torch.Tensor, device: torch.device) -> dict:
    """SEENN-II at test time: u = argmax pi(u|x); accuracy, average timesteps, exit histogram."""
    u = policy_exit(policy_logits(policy.to(device), x, device), policy.grid)
    acc, avg_t = exit_outcome(correct, u)
    return {"test_accuracy": acc, "test_avg_timesteps": avg_t, "test_exit_histogram": exit_histogram(u, correct.shape[1])}
