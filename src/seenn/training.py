"""One training loop for the direct SNN, the QCFS ANN and the fine-tuning, each with its own
criterion (losses.py), in the shape of torchvision's references/classification `train_one_epoch`;
`fit` adds SGD with momentum, a per-step cosine schedule and resumable epochs (checkpoint.run_epochs),
mixed precision (`amp`) and, under torchrun, DistributedDataParallel (seenn.distributed)."""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import Callable

import torch

from . import distributed
from .checkpoint import run_epochs
from .errors import SeennError
from .data import DatasetSpec
from .data.augment import augmented_input
from .inference import batches, predict_logits
from .progress import progress
from .runtime import AMP_DTYPES

log = logging.getLogger("seenn")

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (outputs O [T, B, K], labels [B]) -> loss


class ShuffledBatches:
    """One epoch of training batches (inputs, labels): the order is drawn from `generator` when
    iteration starts, then each batch's augmentation from the same generator, batch by batch.
    With `world` > 1 (DDP) rank `rank` gets the slice [rank::world] of every global batch, taken
    after the whole batch is augmented, so every rank draws the same numbers from its generator."""

    def __init__(self, spec: DatasetSpec, x: torch.Tensor, y: torch.Tensor, batch_size: int, augment: str,
                 generator: torch.Generator, rank: int = 0, world: int = 1):
        self.spec, self.x, self.y, self.batch_size, self.augment, self.generator = spec, x, y, batch_size, augment, generator
        self.rank, self.world = rank, world

    def __len__(self) -> int:
        return math.ceil(self.x.shape[0] / self.batch_size)

    def __iter__(self):
        for idx in batches(self.x.shape[0], self.batch_size, self.generator):
            xb, yb = augmented_input(self.augment, self.spec, self.x[idx], self.generator), self.y[idx]
            yield (xb, yb) if self.world == 1 else (xb[self.rank::self.world], yb[self.rank::self.world])


def autocast(device: torch.device, amp: str):
    """Mixed precision for the forward pass and the loss (`amp`: none | bf16 | fp16)."""
    if AMP_DTYPES[amp] is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AMP_DTYPES[amp])


def grad_scaler(device: torch.device, amp: str):
    """A gradient scaler for fp16 (its narrow range underflows small gradients); None otherwise."""
    return torch.amp.GradScaler(device.type) if amp == "fp16" else None


def train_one_epoch(model, criterion: Criterion, optimizer: torch.optim.Optimizer, data, device: torch.device, *,
                    timesteps: int, scheduler=None, desc: str | None = None, amp: str = "none", scaler=None) -> dict:
    """One pass over `data` (batches of inputs and labels), stepping `scheduler` after every batch;
    returns the epoch's learning rate, mean loss and accuracy of the mean output (%), over all
    ranks under DDP. `amp` autocasts the forward pass and loss; `scaler` (fp16) scales the loss."""
    model.train()
    total, correct, loss_sum = 0, 0, 0.0
    bar = progress(data, desc=desc)
    lr = optimizer.param_groups[0]["lr"]
    for xb, yb in bar:
        xb, yb = xb.to(device), yb.to(device)
        with autocast(device, amp):
            out = model(xb, timesteps)
            loss = criterion(out, yb)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        if scheduler is not None:
            scheduler.step()
        loss_sum += float(loss.detach()) * yb.shape[0]
        correct += int((out.mean(0).argmax(-1) == yb).sum())
        total += yb.shape[0]
        bar.set_postfix(loss=f"{loss_sum / total:.4f}", acc=f"{100 * correct / total:.1f}")
    if distributed.active():
        loss_sum, correct, total = distributed.sum_over_ranks(loss_sum, correct, total)
    return {"lr": lr, "train_loss": loss_sum / total, "train_acc": 100 * correct / total}


def val_accuracy(model, spec: DatasetSpec, x: torch.Tensor, y: torch.Tensor, timesteps: int, device: torch.device) -> float:
    """Accuracy (%) of the accumulated output after `timesteps` steps (under DDP each rank scores
    its slice [rank::world] of the samples with rank 0's BatchNorm statistics; counts are summed)."""
    if not distributed.active():
        z = predict_logits(model, spec, x, timesteps, 500, device)
        return float((z[:, -1].argmax(-1) == y).double().mean() * 100)
    distributed.sync_buffers(model)
    xs, ys = distributed.rank_slice(x), distributed.rank_slice(y)
    z = predict_logits(model, spec, xs, timesteps, 500, device) if len(ys) else torch.zeros(0, timesteps, 1)
    correct, total = distributed.sum_over_ranks(int((z[:, -1].argmax(-1) == ys).sum()) if len(ys) else 0, len(ys))
    return float(correct / total * 100)


def _check_rank_batches(n: int, batch_size: int, world: int) -> None:
    """Under DDP every rank needs at least one sample of every global batch (BatchNorm, DDP's all-reduce)."""
    last = n % batch_size
    if world > 1 and (batch_size < world or 0 < last < world):
        raise SeennError(f"batch_size {batch_size} over {n} training samples leaves a batch of "
                         f"{last if 0 < last < world else batch_size} samples for {world} processes: choose a "
                         f"'batch_size' (train, finetune or conversion) of at least {world} whose last batch has too")


def fit(model, criterion: Criterion, spec: DatasetSpec, x, y, xv, yv, *, timesteps: int, cfg: dict, seed: int,
        device: torch.device, ckpt_dir: Path, fp: str, desc: str, amp: str = "none") -> list[dict]:
    """Train `model` for cfg['epochs'] epochs (cfg: epochs, batch_size, lr, momentum, weight_decay,
    augment) with SGD + cosine, resumable, under `amp`, data-parallel under torchrun; returns one
    log row per epoch (artifacts.TRAIN_LOG_COLUMNS)."""
    model.to(device)
    _check_rank_batches(x.shape[0], cfg["batch_size"], distributed.world_size())
    net = distributed.wrap(model, device)  # DDP around the model under torchrun, the model itself otherwise
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    data = ShuffledBatches(spec, x, y, cfg["batch_size"], cfg["augment"], torch.Generator().manual_seed(seed),
                           rank=distributed.rank(), world=distributed.world_size())
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"] * len(data))
    scaler = grad_scaler(device, amp)

    def epoch_fn(epoch: int) -> dict:
        m = train_one_epoch(net, criterion, opt, data, device, timesteps=timesteps, scheduler=sched,
                            desc=f"{desc} epoch {epoch}/{cfg['epochs']}", amp=amp, scaler=scaler)
        row = {"epoch": epoch, **m, "val_acc": val_accuracy(model, spec, xv, yv, timesteps, device)}
        log.info("%s epoch %d: loss %.4f train acc %.2f %% val acc (T=%d) %.2f %%",
                 desc, epoch, row["train_loss"], row["train_acc"], timesteps, row["val_acc"])
        return row

    return run_epochs(name=desc, ckpt_dir=ckpt_dir, fp=fp, epochs=cfg["epochs"], model=model, optimizer=opt,
                      scheduler=sched, generator=data.generator, epoch_fn=epoch_fn, scaler=scaler)
