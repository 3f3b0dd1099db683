"""One training loop for the direct SNN, the QCFS ANN and the fine-tuning, each with its own
criterion (losses.py), in the shape of torchvision's references/classification `train_one_epoch`;
`fit` adds SGD with momentum, a per-step cosine schedule and resumable epochs (loops.resume.run_epochs),
mixed precision (`amp`), a compiled step (`train.compile`: ForwardLoss), TF32 in the training steps
alone (`train.tf32`) and, under torchrun, DistributedDataParallel (seenn.common.distributed)."""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import Callable

import torch

from seenn.common import distributed
from seenn.common.errors import SeennError
from seenn.common.progress import progress
from seenn.common.runtime import AMP_DTYPES, sync_compiler_determinism, tf32_enabled
from seenn.data.augment_modes import check_augmentation
from seenn.data.source import WorkerBatches, augments_on_device, sample_generator
from seenn.loops.predict import predict_logits
from seenn.loops.resume import Interrupted, run_epochs, stop_requested
from seenn.loops.watch import TrainingWatch

log = logging.getLogger("seenn")

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (outputs O [T, B, K], labels [B]) -> loss


class ShuffledBatches:
    """One epoch of training batches (inputs, labels) of a `SplitSource`: the order is drawn from
    `generator` when iteration starts; with augmentation (or a streamed split) an epoch seed is
    drawn next, and sample k of the order is augmented from its own generator
    (`source.sample_generator(epoch_seed, k)`), so `loader.workers` processes give the same
    bytes as none. `augment: none` on a split in memory draws nothing more and builds each batch
    here, as before the workers existed. Rank `rank` of `world` gets `[rank::world]` of every
    global batch's indices (DistributedDataParallel): the global batch is the same for any world.
    Where `loader.augment_on` says so (source.augments_on_device), a split in memory is moved to
    `device` once and each batch is augmented there at once from the same per-sample draws
    (data.device_augment); otherwise each sample is augmented on the CPU. The loader's workers
    persist from one epoch to the next."""

    def __init__(self, source, batch_size: int, augment: str, generator: torch.Generator, *,
                 loader: dict | None = None, rank: int = 0, world: int = 1, device: torch.device | None = None):
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside world size {world}")
        self.source, self.batch_size, self.augment, self.generator = source, batch_size, augment, generator
        self.loader, self.rank, self.world = loader, rank, world
        self.on_device = augments_on_device(loader, source, device)
        self.device = torch.device(device or "cpu")
        self.start = 0
        self._held = None  # the split on `device`, once moved
        if self.on_device:
            from seenn.data.device_augment import SampleDraws

            items, collate = SampleDraws(augment, source.spec.input_shape, source.protocol), SampleDraws.collate
        else:
            items, collate = _AugmentedSamples(source, augment), None
        self._workers = WorkerBatches(items, loader, collate, persistent=True)

    def __len__(self) -> int:
        return math.ceil(len(self.source) / self.batch_size)

    def __iter__(self):
        src, n, bs = self.source, len(self.source), self.batch_size
        start, self.start = self.start, 0  # batches of this epoch already done (a resumed epoch), once
        order = torch.randperm(n, generator=self.generator)
        if self.on_device and self._held is None:
            self._held = src.to(self.device)
        held = src if self._held is None else self._held
        if self.augment == "none" and not src.streamed:
            check_augmentation(self.augment, src.spec.name, src.spec.event)
            for i in range(start * bs, n, bs):
                idx = order[i : i + bs][self.rank :: self.world].to(held.y.device, non_blocking=True)
                yield held.eval_inputs(idx), held.y[idx]
            return
        epoch_seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
        batches = [[(int(order[k]), k, epoch_seed) for k in range(i, min(i + bs, n))][self.rank :: self.world]
                   for i in range(start * bs, n, bs)]
        if not self.on_device:
            yield from self._workers.run(batches)
            return
        from seenn.data.device_augment import augment_batch

        for idx, draws in self._workers.run(batches):
            idx = idx.to(self.device, non_blocking=True)  # never waits for the device queue
            yield augment_batch(self.augment, src.spec, held.x[idx], draws, src.protocol,
                                self._workers.dataset.policy), held.y[idx]


class _AugmentedSamples(torch.utils.data.Dataset):
    """Item (sample index, position in the epoch's order, epoch seed) -> (augmented input, label)."""

    def __init__(self, source, augment: str):
        self.source, self.augment = source, augment

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, item):
        i, position, epoch_seed = item
        g = sample_generator(epoch_seed, position)
        return self.source.train_input(i, g, self.augment), self.source.y[i]


def autocast(device: torch.device, amp: str):
    """Mixed precision for the forward pass and the loss (`amp`: none | bf16 | fp16)."""
    if AMP_DTYPES[amp] is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AMP_DTYPES[amp])


def grad_scaler(device: torch.device, amp: str):
    """A gradient scaler for fp16 (its narrow range underflows small gradients); None otherwise."""
    return torch.amp.GradScaler(device.type) if amp == "fp16" else None


class ForwardLoss:
    """The part of a training step that runs on the device without the host: the forward pass over
    `timesteps` (the LIF loop and its surrogate autograd included), the loss under `amp`'s
    autocast, and the batch's correct count; `compile` runs it through torch.compile (one graph
    for the forward and, by AOTAutograd, one for its backward, so `loss.backward()` runs the
    compiled backward too). Shapes are static: the last, smaller batch of an epoch compiles once
    more. Returns (loss, correct) as device tensors; nothing here reads a value back."""

    def __init__(self, model, criterion: Criterion, timesteps: int, device: torch.device, amp: str = "none",
                 compile: bool = False):
        self.model, self.criterion, self.timesteps, self.device, self.amp = model, criterion, timesteps, device, amp
        self.compiled = bool(compile)
        self._fn = self._step
        if self.compiled:
            sync_compiler_determinism()  # inductor follows `deterministic`, as the eager kernels do
            self._fn = torch.compile(self._step, dynamic=False)

    def _step(self, xb: torch.Tensor, yb: torch.Tensor):
        with autocast(self.device, self.amp):
            out = self.model(xb, self.timesteps)
            loss = self.criterion(out, yb)
        correct = (out.detach().mean(0).argmax(-1) == yb).sum()
        return loss, correct

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor):
        if not self.compiled:
            return self._fn(xb, yb)
        try:
            return self._fn(xb, yb)
        except Exception as exc:
            from torch._dynamo.exc import BackendCompilerFailed

            if isinstance(exc, BackendCompilerFailed):  # no C++ compiler (CPU), no triton (GPU), ...
                inner = getattr(exc, "inner_exception", None) or exc
                why = (f"{type(inner).__name__}: {inner}".strip().splitlines() or ["?"])[0][:200]
                raise SeennError(f"config 'train.compile: true' but torch.compile cannot build the training step "
                                 f"here ({why}): set train.compile: false, or install what it names") from exc
            raise


def train_one_epoch(model, criterion: Criterion, optimizer: torch.optim.Optimizer, data, device: torch.device, *,
                    timesteps: int, scheduler=None, desc: str | None = None, amp: str = "none", scaler=None,
                    watch: TrainingWatch | None = None, epoch: int = 0, resume: dict | None = None,
                    step: ForwardLoss | None = None) -> dict:
    """One pass over `data` (batches of inputs and labels), stepping `scheduler` after every batch;
    returns the epoch's learning rate, mean loss and accuracy of the mean output (%), over all
    ranks under DDP. `amp` autocasts the forward pass and loss; `scaler` (fp16) scales the loss.
    Loss and accuracy add up on the device; the host reads them, and `watch` (which stops at the
    first non-finite loss or gradient), every `watch.log_every` steps and at the end. At those
    reads a SIGTERM (`resume.stop_requested`) raises Interrupted with the running sums; `resume`
    (those sums and the step reached, from a checkpoint) goes on from there: `data` then skips
    the batches already done (a ShuffledBatches). `step` (a ForwardLoss of `model`, `criterion`,
    `timesteps` and `amp`; compiled or not) computes each batch's loss; None: an eager one."""
    model.train()
    step = step or ForwardLoss(model, criterion, timesteps, device, amp)
    watch = watch or TrainingWatch(desc or "training", device, 1, amp)
    watch.begin_epoch()
    first = 0 if resume is None else resume["step"]
    sums = {"total": 0, "loss_sum": 0.0, "correct": 0, "lr": optimizer.param_groups[0]["lr"]} if resume is None \
        else resume["sums"]
    total, lr = sums["total"], sums["lr"]
    loss_sum = torch.full((), sums["loss_sum"], dtype=torch.float64, device=device)
    correct = torch.full((), sums["correct"], dtype=torch.long, device=device)
    if first:
        data.start = first
    watch.steps = first
    bar = progress(data, desc=desc)
    for k, (xb, yb) in enumerate(bar, first + 1):
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)  # from pinned memory: overlapped
        loss, hits = step(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            watch.step(loss, model.parameters(), optimizer.param_groups[0]["lr"])
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            watch.step(loss, None, optimizer.param_groups[0]["lr"])
            before = scaler._scale.clone()
            scaler.step(optimizer)
            scaler.update()
            watch.skipped(before, scaler._scale)
        if scheduler is not None:
            scheduler.step()
        loss_sum += loss.detach().double() * yb.shape[0]
        correct += hits
        total += yb.shape[0]
        if watch.due(k):
            watch.read(epoch)
            bar.set_postfix(loss=f"{float(loss_sum) / total:.4f}", acc=f"{100 * int(correct) / total:.1f}")
            if _stop_everywhere():
                raise Interrupted(k, {"total": total, "loss_sum": float(loss_sum), "correct": int(correct), "lr": lr})
    watch.read(epoch)
    loss_host, correct_host = float(loss_sum), int(correct)
    if distributed.active():
        loss_host, correct_host, total = distributed.sum_over_ranks(loss_host, correct_host, total)
    row = {"lr": lr, "train_loss": loss_host / total, "train_acc": 100 * correct_host / total}
    if scaler is not None:
        row["skipped_steps"] = watch.skipped_steps()
    return row


def _stop_everywhere() -> bool:
    """SIGTERM seen by this process, or (under torchrun) by any rank: all stop at the same step."""
    stop = stop_requested()
    if distributed.active():
        stop = bool(distributed.sum_over_ranks(int(stop))[0])
    return stop


def val_accuracy(model, source, timesteps: int, device: torch.device, loader: dict | None = None) -> float:
    """Accuracy (%) on `source` (a SplitSource) of the accumulated output after `timesteps` steps
    (under DDP each rank scores its slice [rank::world] of the samples with rank 0's BatchNorm
    statistics; counts are summed)."""
    if not distributed.active():
        z = predict_logits(model, source, timesteps, 500, device, loader=loader)
        return float((z[:, -1].argmax(-1) == source.y).double().mean() * 100)
    distributed.sync_buffers(model)
    part = source.subset(distributed.rank_slice(torch.arange(len(source))))
    hits = int((predict_logits(model, part, timesteps, 500, device, loader=loader)[:, -1].argmax(-1) == part.y).sum()) \
        if len(part) else 0
    correct, total = distributed.sum_over_ranks(hits, len(part))
    return float(correct / total * 100)


def _check_rank_batches(n: int, batch_size: int, world: int) -> None:
    """Under DDP every rank needs at least one sample of every global batch (BatchNorm, DDP's all-reduce)."""
    last = n % batch_size
    if world > 1 and (batch_size < world or 0 < last < world):
        raise SeennError(f"batch_size {batch_size} over {n} training samples leaves a batch of "
                         f"{last if 0 < last < world else batch_size} samples for {world} processes: choose a "
                         f"'batch_size' (train, finetune or conversion) of at least {world} whose last batch has too")


def fit(model, criterion: Criterion, train, val, *, timesteps: int, cfg: dict, seed: int,
        device: torch.device, ckpt_dir: Path, fp: str, desc: str, loader: dict | None = None,
        amp: str = "none", log_every: int = 1, max_skips: int = 50, compile: bool = False,
        tf32: bool = False) -> list[dict]:
    """Train `model` on SplitSource `train` for cfg['epochs'] epochs (cfg: epochs, batch_size, lr,
    momentum, weight_decay, augment) with SGD + cosine, resumable, validating on `val`, under `amp`,
    data-parallel under torchrun; `loader`: the `loader:` section. The host reads the loss every
    `log_every` steps (train.log_every) and stops at the first non-finite loss or gradient
    (loops.watch; fp16: at more than `max_skips` scaler-skipped steps in a row). Returns one log
    row per epoch (artifacts.TRAIN_LOG_COLUMNS). `compile` (train.compile) compiles the step's
    forward, loss and backward (ForwardLoss); `tf32` (train.tf32) lets the training steps use TF32,
    never the validation."""
    model.to(device)
    _check_rank_batches(len(train), cfg["batch_size"], distributed.world_size())
    net = distributed.wrap(model, device)  # DDP around the model under torchrun, the model itself otherwise
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    data = ShuffledBatches(train, cfg["batch_size"], cfg["augment"], torch.Generator().manual_seed(seed), loader=loader,
                           rank=distributed.rank(), world=distributed.world_size(), device=device)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"] * len(data))
    scaler = grad_scaler(device, amp)
    watch = TrainingWatch(desc, device, log_every, amp, max_skips)
    step = ForwardLoss(net, criterion, timesteps, device, amp, compile)
    if compile:
        log.info("%s: the training step compiled (train.compile): torch.compile runs at its first batches", desc)

    def epoch_fn(epoch: int, partial: dict | None = None) -> dict:
        with tf32_enabled(tf32):
            m = train_one_epoch(net, criterion, opt, data, device, timesteps=timesteps, scheduler=sched,
                                desc=f"{desc} epoch {epoch}/{cfg['epochs']}", amp=amp, scaler=scaler, watch=watch,
                                epoch=epoch, resume=partial, step=step)
        skipped = m.pop("skipped_steps", None)
        if skipped:
            log.info("%s epoch %d: the fp16 gradient scaler skipped %d steps so far", desc, epoch, skipped)
        with tf32_enabled(False):  # validation in full float32, as every evaluation
            row = {"epoch": epoch, **m, "val_acc": val_accuracy(model, val, timesteps, device, loader)}
        log.info("%s epoch %d: loss %.4f train acc %.2f %% val acc (T=%d) %.2f %%",
                 desc, epoch, row["train_loss"], row["train_acc"], timesteps, row["val_acc"])
        return row

    return run_epochs(name=desc, ckpt_dir=ckpt_dir, fp=fp, epochs=cfg["epochs"], model=model, optimizer=opt,
                      scheduler=sched, generator=data.generator, epoch_fn=epoch_fn, scaler=scaler, interruptible=True)
