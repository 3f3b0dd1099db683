"""One training loop for the direct SNN, the QCFS ANN and the fine-tuning, each with its own
criterion (losses.py), in the shape of torchvision's references/classification `train_one_epoch`;
`fit` adds SGD with momentum, a per-step cosine schedule and resumable epochs (checkpoint.run_epochs)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable

import torch

from .checkpoint import run_epochs
from .data import DatasetSpec
from .data.augment import augmented_input
from .inference import batches, predict_logits
from .progress import progress

log = logging.getLogger("seenn")

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (outputs O [T, B, K], labels [B]) -> loss


class ShuffledBatches:
    """One epoch of training batches (inputs, labels): the order is drawn from `generator` when
    iteration starts, then each batch's augmentation from the same generator, batch by batch."""

    def __init__(self, spec: DatasetSpec, x: torch.Tensor, y: torch.Tensor, batch_size: int, augment: str,
                 generator: torch.Generator):
        self.spec, self.x, self.y, self.batch_size, self.augment, self.generator = spec, x, y, batch_size, augment, generator

    def __len__(self) -> int:
        return math.ceil(self.x.shape[0] / self.batch_size)

    def __iter__(self):
        for idx in batches(self.x.shape[0], self.batch_size, self.generator):
            yield augmented_input(self.augment, self.spec, self.x[idx], self.generator), self.y[idx]


def train_one_epoch(model, criterion: Criterion, optimizer: torch.optim.Optimizer, data, device: torch.device, *,
                    timesteps: int, scheduler=None, desc: str | None = None) -> dict:
    """One pass over `data` (batches of inputs and labels), stepping `scheduler` after every batch;
    returns the epoch's learning rate, mean loss and accuracy of the mean output (%)."""
    model.train()
    total, correct, loss_sum = 0, 0, 0.0
    bar = progress(data, desc=desc)
    lr = optimizer.param_groups[0]["lr"]
    for xb, yb in bar:
        xb, yb = xb.to(device), yb.to(device)
        out = model(xb, timesteps)
        loss = criterion(out, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        loss_sum += float(loss.detach()) * yb.shape[0]
        correct += int((out.mean(0).argmax(-1) == yb).sum())
        total += yb.shape[0]
        bar.set_postfix(loss=f"{loss_sum / total:.4f}", acc=f"{100 * correct / total:.1f}")
    return {"lr": lr, "train_loss": loss_sum / total, "train_acc": 100 * correct / total}


def val_accuracy(model, spec: DatasetSpec, x: torch.Tensor, y: torch.Tensor, timesteps: int, device: torch.device) -> float:
    """Accuracy (%) of the accumulated output after `timesteps` steps."""
    z = predict_logits(model, spec, x, timesteps, 500, device)
    return float((z[:, -1].argmax(-1) == y).double().mean() * 100)


def fit(model, criterion: Criterion, spec: DatasetSpec, x, y, xv, yv, *, timesteps: int, cfg: dict, seed: int,
        device: torch.device, ckpt_dir: Path, fp: str, desc: str) -> list[dict]:
    """Train `model` for cfg['epochs'] epochs (cfg: epochs, batch_size, lr, momentum, weight_decay,
    augment) with SGD + cosine, resumable; returns one log row per epoch (artifacts.TRAIN_LOG_COLUMNS)."""
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    data = ShuffledBatches(spec, x, y, cfg["batch_size"], cfg["augment"], torch.Generator().manual_seed(seed))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"] * len(data))

    def epoch_fn(epoch: int) -> dict:
        m = train_one_epoch(model, criterion, opt, data, device, timesteps=timesteps, scheduler=sched,
                            desc=f"{desc} epoch {epoch}/{cfg['epochs']}")
        row = {"epoch": epoch, **m, "val_acc": val_accuracy(model, spec, xv, yv, timesteps, device)}
        log.info("%s epoch %d: loss %.4f train acc %.2f %% val acc (T=%d) %.2f %%",
                 desc, epoch, row["train_loss"], row["train_acc"], timesteps, row["val_acc"])
        return row

    return run_epochs(name=desc, ckpt_dir=ckpt_dir, fp=fp, epochs=cfg["epochs"], model=model, optimizer=opt,
                      scheduler=sched, generator=data.generator, epoch_fn=epoch_fn)
