"""A training loop's health, watched without a host read per step: the first non-finite loss or
gradient norm, and (fp16) the optimizer steps the gradient scaler skipped.

Every step records on the device whether its loss and gradient norm are finite, keeping the
first bad step's index and loss; the host reads the record every `log_every` steps and at the
end of an epoch (`read`), and stops the loop there with one line naming the stage, epoch, step,
loss, learning rate and precision. Steps between the bad one and the read still run (skipping
them on the device would need the optimizer's cooperation: SGD's momentum and weight decay move
the weights even with zeroed gradients), but nothing of them is kept: the stop comes before the
epoch's checkpoint is written, so the last complete checkpoint stays as it was.

With fp16 a step whose gradients overflow is the gradient scaler's business: it skips the
update and lowers its scale. Such steps are counted, not stopped on, unless more than
`max_skips` come in a row."""

from __future__ import annotations

import torch

from seenn.common import distributed
from seenn.common.errors import SeennError


class NonFiniteError(SeennError):
    """A training loop met a non-finite loss or gradient, or too many skipped fp16 steps."""


def grad_norm(params) -> torch.Tensor:
    """The 2-norm over every gradient of `params` (a device scalar; 0 when none has one)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


class TrainingWatch:
    """One loop's record: `step(loss, params)` after each backward pass (before the optimizer
    step), `skipped(scale_before, scale_after)` after an fp16 scaler update, `read(epoch)` at
    each log point; `due(k)` says whether step k (1-based within the epoch) is a log point."""

    def __init__(self, stage: str, device: torch.device, log_every: int, precision: str, max_skips: int = 50):
        if log_every < 1:
            raise SeennError(f"{stage}: log_every must be at least 1, got {log_every}")
        self.stage, self.log_every, self.precision, self.max_skips = stage, int(log_every), precision, max_skips
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self.bad_loss = torch.zeros((), dtype=torch.float64, device=device)
        self.skips = torch.zeros((), dtype=torch.long, device=device)  # fp16 steps skipped in total
        self.run = torch.zeros((), dtype=torch.long, device=device)  # ... in a row, now
        self.longest = torch.zeros((), dtype=torch.long, device=device)  # ... in a row, at most
        self.steps = 0
        self.lrs: dict[int, float] = {}  # learning rate of each step since the last read

    def begin_epoch(self) -> None:
        """Steps count from 1 in each epoch (the stop names epoch and step)."""
        self.steps = 0
        self.lrs.clear()

    def due(self, k: int) -> bool:
        return k % self.log_every == 0

    def step(self, loss: torch.Tensor, params=None, lr: float | None = None) -> None:
        """Record step `self.steps + 1`: its loss and, unless fp16 scales them, its gradients."""
        self.steps += 1
        if lr is not None:
            self.lrs[self.steps] = lr
        ok = torch.isfinite(loss.detach()).all()
        if params is not None and self.precision != "fp16":
            ok = ok & torch.isfinite(grad_norm(params).to(ok.device))
        first = (self.first_bad < 0) & ~ok
        self.first_bad.copy_(torch.where(first, self.steps, self.first_bad))
        self.bad_loss.copy_(torch.where(first, loss.detach().double().reshape(()).to(self.bad_loss.device),
                                        self.bad_loss))

    def skipped(self, scale_before: torch.Tensor, scale_after: torch.Tensor) -> None:
        """An fp16 scaler update: a lowered scale means the step was skipped."""
        skip = (scale_after < scale_before).to(torch.long).reshape(())
        self.skips.add_(skip)
        self.run.copy_((self.run + 1) * skip)
        self.longest.copy_(torch.maximum(self.longest, self.run))

    def read(self, epoch: int, where: str = "") -> None:
        """The host reads the record (summed over ranks under torchrun, so every rank stops
        together) and raises NonFiniteError at the first bad step."""
        bad, loss, longest = int(self.first_bad), float(self.bad_loss), int(self.longest)
        if distributed.active():
            flags = distributed.sum_over_ranks(int(bad >= 0), int(longest > self.max_skips))
            if flags[0] and bad < 0:
                raise NonFiniteError(f"{self.stage}: another process met a non-finite loss or gradient in epoch {epoch}")
            if flags[1] and longest <= self.max_skips:
                raise NonFiniteError(f"{self.stage}: another process skipped over {self.max_skips} fp16 steps in a row")
        if bad >= 0:
            lr = self.lrs.get(bad)
            raise NonFiniteError(
                f"{self.stage}: non-finite loss or gradient at epoch {epoch}, step {bad}{where} (loss {loss:g}, "
                f"learning rate {'?' if lr is None else f'{lr:g}'}, precision {self.precision}); stopped, the last "
                f"complete checkpoint is kept: lower the learning rate or check the inputs")
        if longest > self.max_skips:
            raise NonFiniteError(f"{self.stage}: the fp16 gradient scaler skipped {longest} steps in a row by epoch "
                                 f"{epoch} (at most {self.max_skips}): the gradients overflow at every scale; use "
                                 f"amp: bf16 or lower the learning rate")
        self.lrs.clear()

    def skipped_steps(self) -> int:
        return int(self.skips)
