"""Resumable training: one atomic, sha256-checked checkpoint per epoch holding model,
optimizer, scheduler, epoch, log rows and every RNG state.

Checkpoints live in results/checkpoints/<stage>/ (format: artifacts) -- outside every declared output, so
neither Snakemake nor DVC deletes them when a stage fails. A checkpoint whose fingerprint (hash
of the stage's parameters and input hashes) differs from the current run is ignored."""

from __future__ import annotations

import hashlib
import json
import logging
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
               epoch_fn: Callable[[int], dict], keep: int = 2, scaler=None) -> list[dict]:
    """Run `epoch_fn(epoch)` for epochs 1..`epochs`, resuming from the last complete checkpoint.

    `epoch_fn` trains one epoch and returns a dict of deterministic log values. Returns all rows.
    `scaler` (fp16's GradScaler) is checkpointed too. Under torchrun every rank resumes from the
    same checkpoint (checked) and only rank 0 writes them."""
    ckpt_dir = Path(ckpt_dir)
    rows: list[dict] = []
    start = 1
    found = latest_checkpoint(ckpt_dir, fp)
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
        log.info("%s: resuming from checkpoint %s (epoch %d of %d done)", name, epoch_checkpoint_path(ckpt_dir, done), done, epochs)
    distributed.same_on_all_ranks(start, "the epoch to resume from")
    for epoch in range(start, epochs + 1):
        rows.append(epoch_fn(epoch))
        if not distributed.is_main():
            continue
        state = {
            "fingerprint": fp, "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "rng": rng_state(generator), "rows": rows,
        }
        if scaler is not None:
            state["scaler"] = scaler.state_dict()
        save_epoch_checkpoint(ckpt_dir, epoch, state, keep)
    return rows
