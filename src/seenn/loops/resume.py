"""Resumable training: one atomic, sha256-checked checkpoint per epoch holding model,
optimizer, scheduler, epoch, log rows and every RNG state; and, when SIGTERM stops a loop that
checks for it (a SLURM job at its time limit), one at the step it reached (partial.pt).

Checkpoints live in results/checkpoints/<stage>/ (format: artifacts) -- outside every declared output, so
neither Snakemake nor DVC deletes them when a stage fails. A checkpoint whose fingerprint (hash
of the stage's parameters and input hashes) differs from the current run is ignored."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import signal
import threading
from pathlib import Path
from typing import Callable

import torch

from seenn.common import distributed
from seenn.common.artifacts import (
    epoch_checkpoint_path,
    epoch_checkpoints,
    load_epoch_checkpoint,
    save_epoch_checkpoint,
)
from seenn.common.errors import SeennError
from seenn.common.io import save_checked
from seenn.common.runtime import rng_state, set_rng_state

log = logging.getLogger("seenn")


def fingerprint(*parts) -> str:
    """Stable hash of JSON-serialisable run settings (params, input hashes)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# config keys (sections, or dotted keys) that change how a run goes, never its results
RUN_ONLY_KEYS = ("loader", "train.log_every", "train.max_skipped_steps", "seenn2.log_every")


def result_settings(params: dict) -> dict:
    """A stage's params without RUN_ONLY_KEYS: what a checkpoint's fingerprint hashes, so a run
    resumed with another number of DataLoader workers, or another log interval, still finds its
    checkpoint."""
    out = {k: v for k, v in params.items() if k not in RUN_ONLY_KEYS}
    for key in RUN_ONLY_KEYS:
        section, _, name = key.partition(".")
        if name and isinstance(out.get(section), dict) and name in out[section]:
            out[section] = {k: v for k, v in out[section].items() if k != name}
            if not out[section]:
                del out[section]
    return out


class Interrupted(Exception):
    """Raised by a training loop between two steps once SIGTERM arrived (`stop_requested`):
    `step` steps of the epoch are done, `sums` the epoch's running totals so far."""

    def __init__(self, step: int, sums: dict):
        super().__init__(f"interrupted after step {step}")
        self.step, self.sums = step, sums


class Preempted(SeennError):
    """A training stage stopped by SIGTERM after writing a checkpoint at its current step."""


_STOP = {"requested": False}


def stop_requested() -> bool:
    """True once SIGTERM arrived (a plain Python flag: checking it reads nothing from a device)."""
    return _STOP["requested"]


@contextlib.contextmanager
def stop_on_sigterm():
    """While inside: SIGTERM (a SLURM job at its time limit, `kill`) only sets the flag that the
    training loop checks between steps; outside, the previous handler is back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _STOP["requested"] = False
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: _STOP.__setitem__("requested", True))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _STOP["requested"] = False


def partial_path(ckpt_dir: Path) -> Path:
    """The checkpoint written at a step inside an epoch (SIGTERM), beside the epoch checkpoints."""
    return Path(ckpt_dir) / "partial.pt"


def latest_checkpoint(ckpt_dir: Path, fp: str) -> tuple[int, dict] | None:
    """The newest checkpoint for fingerprint `fp`, or None."""
    for path in reversed(epoch_checkpoints(ckpt_dir)):
        state = load_epoch_checkpoint(path)
        if state.get("fingerprint") == fp:
            return state["epoch"], state
        log.info("ignoring checkpoint %s made with other settings", path)
    return None


def run_epochs(*, name: str, ckpt_dir: Path, fp: str, epochs: int, model: torch.nn.Module,
               optimizer: torch.optim.Optimizer, scheduler, generator: torch.Generator,
               epoch_fn: Callable[..., dict], keep: int = 2, scaler=None, interruptible: bool = False) -> list[dict]:
    """Run `epoch_fn(epoch)` for epochs 1..`epochs`, resuming from the last complete checkpoint.

    `epoch_fn` trains one epoch and returns a dict of deterministic log values. Returns all rows.
    `scaler` (fp16's GradScaler) is checkpointed too. Under torchrun every rank resumes from the
    same checkpoint (checked) and only rank 0 writes them. `interruptible`: `epoch_fn(epoch,
    partial)` checks `stop_requested` between steps and raises Interrupted; SIGTERM then writes a
    checkpoint at that step and stops with Preempted, and the next run resumes there (`partial`:
    the step and running sums to go on from)."""
    ckpt_dir = Path(ckpt_dir)
    rows: list[dict] = []
    start, partial = 1, None
    found = latest_checkpoint(ckpt_dir, fp)
    mid = partial_path(ckpt_dir)
    if mid.exists():
        state = load_epoch_checkpoint(mid)
        if state.get("fingerprint") == fp and (found is None or state["epoch"] >= found[0]):
            found = state["epoch"], state
    if found is not None:
        done, state = found
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"], generator)
        if scaler is not None and state.get("scaler") is not None:
            scaler.load_state_dict(state["scaler"])
        rows = list(state["rows"])
        start = done + 1
        partial = state.get("partial")
        if partial is not None:  # the epoch's batch order comes from the generator as it was when it began
            generator.set_state(partial["epoch_generator"])
            log.info("%s: resuming from checkpoint %s (epoch %d, step %d)", name, mid, start, partial["step"])
        else:
            log.info("%s: resuming from checkpoint %s (epoch %d of %d done)", name, epoch_checkpoint_path(ckpt_dir, done),
                     done, epochs)
    distributed.same_on_all_ranks(start, "the epoch to resume from")
    with stop_on_sigterm() if interruptible else contextlib.nullcontext():
        for epoch in range(start, epochs + 1):
            epoch_generator = generator.get_state()
            try:
                rows.append(epoch_fn(epoch, partial) if partial is not None else epoch_fn(epoch))
            except Interrupted as stop:
                path = _save(ckpt_dir, fp, epoch - 1, model, optimizer, scheduler, scaler, generator, rows,
                             {"step": stop.step, "sums": stop.sums, "epoch_generator": epoch_generator})
                raise Preempted(f"{name}: stopped by SIGTERM in epoch {epoch} after step {stop.step}; its state is in "
                                f"{path}: rerun the same command to resume from there") from None
            partial = None
            _save(ckpt_dir, fp, epoch, model, optimizer, scheduler, scaler, generator, rows, None, keep)
    return rows


def _save(ckpt_dir: Path, fp: str, epoch: int, model, optimizer, scheduler, scaler, generator, rows: list[dict],
          partial: dict | None, keep: int = 2) -> Path | None:
    """A checkpoint after `epoch` complete epochs (rank 0 only): an epoch checkpoint, or with
    `partial` (the step reached in the next epoch, its running sums and the generator state it
    began with) the mid-epoch one, removed once an epoch checkpoint supersedes it."""
    if not distributed.is_main():
        return None
    state = {
        "fingerprint": fp, "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng_state(generator), "rows": rows,
    }
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    if partial is not None:
        state["partial"] = partial
        save_checked(partial_path(ckpt_dir), state)
        return partial_path(ckpt_dir)
    save_epoch_checkpoint(ckpt_dir, epoch, state, keep)
    partial_path(ckpt_dir).unlink(missing_ok=True)
    return epoch_checkpoint_path(ckpt_dir, epoch)
