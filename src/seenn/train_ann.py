"""QCFS ANN training: the first stage of the conversion branch.

The ANN is the configured ResNet with QCFS activations (models/qcfs.py), trained by the same
resumable loop as the direct SNN (train.fit_snn with T = 1 and plain cross-entropy): SGD with
momentum, cosine schedule, one checkpoint per epoch. Its hyperparameters live under
`conversion:` so that changing them reruns only the conversion branch."""

from __future__ import annotations

from pathlib import Path

from .checkpoint import fingerprint
from .data import DatasetSpec
from .data.prepared import load_split
from .errors import SeennError
from .io import check_trained_on, load_checked, load_weights, save_checked, sha256_file
from .models.qcfs import build_qcfs_ann
from .train import fit_snn, write_log

ANN_KIND = "qcfs_ann"


def require_static_images(spec: DatasetSpec, stage: str) -> None:
    """Conversion feeds the analog image at every timestep: event data has no ANN counterpart."""
    if spec.event:
        raise SeennError(f"stage {stage}: the QCFS conversion branch needs a static-image dataset, but "
                         f"'data.name: {spec.name}' holds event frames (use the direct branch for event data)")


def save_ann(path: Path, model, *, model_cfg: dict, levels: int, spec: DatasetSpec) -> None:
    """Checkpoint with everything needed to rebuild the ANN without the config."""
    save_checked(path, {"kind": ANN_KIND, "state_dict": model.state_dict(), "model": model_cfg, "levels": levels,
                        "dataset": spec.name, "num_classes": spec.num_classes})


def load_ann(path: Path, spec: DatasetSpec):
    """Rebuild the QCFS ANN saved by `save_ann`; errors name the file."""
    ck = load_checked(path, what="QCFS ANN checkpoint", producer="the train_ann stage")
    if ck.get("kind") != ANN_KIND:
        raise SeennError(f"{path} is not a QCFS ANN checkpoint (kind={ck.get('kind')!r}): delete it and rerun train_ann")
    check_trained_on(ck, spec, path, "QCFS ANN checkpoint", "rerun train_ann")
    model = build_qcfs_ann(ck["model"], ck["levels"], 1.0, spec.input_shape[-3], spec.num_classes)
    load_weights(model, ck["state_dict"], path, "QCFS ANN checkpoint")
    return model, ck


def stage_train_ann(ctx) -> None:
    """Stage train_ann: prepared train/val splits -> QCFS ANN checkpoint + CSV log."""
    p = ctx.params
    c = p["conversion"]
    spec, x, y = load_split(ctx.inputs["train"])
    _, xv, yv = load_split(ctx.inputs["val"])
    require_static_images(spec, ctx.name)
    model = build_qcfs_ann(p["model"], c["levels"], c["lambda_init"], spec.input_shape[-3], spec.num_classes)
    fp = fingerprint(p, sha256_file(ctx.inputs["train"]), sha256_file(ctx.inputs["val"]))
    # T = 1 and the 'mean' loss make fit_snn plain ANN training with cross-entropy. `c` holds
    # only the conversion keys this stage declares (stages.ANN_TRAIN_KEYS)
    tcfg = {**c, "tet_lambda": 0.0, "tet_phi": 1.0}
    rows = fit_snn(model, spec, x, y, xv, yv, timesteps=1, tcfg=tcfg, seed=p["seed"], device=ctx.device,
                   ckpt_dir=ctx.checkpoint_dir, fp=fp, loss_name="mean", desc="train_ann")
    save_ann(ctx.outputs["model"], model.cpu(), model_cfg=p["model"], levels=c["levels"], spec=spec)
    write_log(rows, ctx.outputs["log"])


# conversion keys the QCFS ANN training reads: conversion.max_timesteps reruns conversion, not training
ANN_TRAIN_KEYS = tuple(f"conversion.{k}" for k in ("levels", "lambda_init", "epochs", "batch_size", "lr", "momentum",
                                                     "weight_decay", "augment"))


def declare():
    from .dag import RUNTIME_KEYS, Stage, branch_dir, split_paths

    d = branch_dir("converted")
    return Stage(name="train_ann", run=stage_train_ann,
                 desc="QCFS ANN training (quantization-clip-floor-shift activations, trainable thresholds)",
                 params=RUNTIME_KEYS + ("model",) + ANN_TRAIN_KEYS, inputs=split_paths("train", "val"),
                 outputs={"model": f"{d}/ann.pt", "log": f"{d}/ann_train_log.csv"}, plots=("log",), checkpoints=True,
                 threads="all")
