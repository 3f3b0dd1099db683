"""Direct SNN training: SGD with momentum, cosine schedule, per-timestep loss, one resumable
checkpoint per epoch, progress (a bar on a terminal, log lines elsewhere) and a deterministic CSV log."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd
import torch

from .checkpoint import fingerprint, run_epochs
from .data import DatasetSpec, to_input
from .data.augment import augmented_input
from .data.prepared import load_split
from .errors import SeennError
from .io import check_trained_on, load_checked, load_weights, save_checked, sha256_file, write_text
from .losses import snn_loss
from .models import build_if_snn, build_snn
from .neurons import set_stepwise
from .progress import progress

log = logging.getLogger("seenn")


def batches(n: int, batch_size: int, generator: torch.Generator | None):
    """Index batches over n samples, shuffled by `generator` (None: in order)."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


@torch.no_grad()
def predict_logits(model, spec: DatasetSpec, x: torch.Tensor, timesteps: int, batch_size: int,
                   device: torch.device, desc: str | None = None, stepwise: bool = False) -> torch.Tensor:
    """Accumulated logits z [N, T, K] of an SNN (z_t = O_1 + ... + O_t).

    stepwise=True runs one timestep at a time (neurons keep their membrane between calls): the
    same numbers up to rounding, with memory for one timestep instead of T (converted SNNs, T=64)."""
    model.eval()
    outs = []
    it = list(batches(x.shape[0], batch_size, None))
    for idx in progress(it, desc=desc):
        xb = to_input(spec, x[idx]).to(device)
        if stepwise:
            set_stepwise(model, True)
            try:
                out = torch.cat([model(xb, 1) for _ in range(timesteps)])  # [T, B, K]
            finally:
                set_stepwise(model, False)
        else:
            out = model(xb, timesteps)  # [T, B, K]
        outs.append(out.cumsum(0).transpose(0, 1).float().cpu())
    return torch.cat(outs)


def fit_snn(model, spec, x, y, xv, yv, *, timesteps: int, tcfg: dict, seed: int, device: torch.device,
            ckpt_dir: Path, fp: str, loss_name: str, desc: str) -> list[dict]:
    """Train `model` on (x, y) for tcfg['epochs'] epochs with SGD + cosine; resumable."""
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=tcfg["lr"], momentum=tcfg["momentum"], weight_decay=tcfg["weight_decay"])
    steps_per_epoch = math.ceil(x.shape[0] / tcfg["batch_size"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=tcfg["epochs"] * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)

    def epoch_fn(epoch: int) -> dict:
        model.train()
        total, correct, loss_sum = 0, 0, 0.0
        bar = progress(list(batches(x.shape[0], tcfg["batch_size"], gen)), desc=f"{desc} epoch {epoch}/{tcfg['epochs']}")
        lr = opt.param_groups[0]["lr"]
        for idx in bar:
            xb = augmented_input(tcfg["augment"], spec, x[idx], gen).to(device)
            yb = y[idx].to(device)
            out = model(xb, timesteps)
            loss = snn_loss(loss_name, out, yb, tcfg["tet_lambda"], tcfg["tet_phi"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * yb.shape[0]
            correct += int((out.mean(0).argmax(-1) == yb).sum())
            total += yb.shape[0]
            bar.set_postfix(loss=f"{loss_sum / total:.4f}", acc=f"{100 * correct / total:.1f}")
        zv = predict_logits(model, spec, xv, timesteps, 500, device)
        val_acc = float((zv[:, -1].argmax(-1) == yv).double().mean() * 100)
        row = {"epoch": epoch, "lr": lr, "train_loss": loss_sum / total, "train_acc": 100 * correct / total, "val_acc": val_acc}
        log.info("%s epoch %d: loss %.4f train acc %.2f %% val acc (T=%d) %.2f %%",
                 desc, epoch, row["train_loss"], row["train_acc"], timesteps, val_acc)
        return row

    return run_epochs(name=desc, ckpt_dir=ckpt_dir, fp=fp, epochs=tcfg["epochs"], model=model, optimizer=opt,
                      scheduler=sched, generator=gen, epoch_fn=epoch_fn)


def write_log(rows: list[dict], path: Path) -> None:
    write_text(path, pd.DataFrame(rows).to_csv(index=False, float_format="%.6f"))


def save_snn(path: Path, model, *, model_cfg: dict, neuron_cfg: dict, timesteps: int, spec: DatasetSpec) -> None:
    """Checkpoint with everything needed to rebuild the network without the config."""
    save_checked(path, {"kind": "snn", "state_dict": model.state_dict(), "model": model_cfg, "neuron": neuron_cfg,
                        "timesteps": timesteps, "dataset": spec.name, "num_classes": spec.num_classes})


def _build_direct(ck: dict, spec: DatasetSpec):
    return build_snn(ck["model"], ck["neuron"], spec.input_shape[-3], spec.num_classes, event=spec.event)


def _build_converted(ck: dict, spec: DatasetSpec):
    return build_if_snn(ck["model"], spec.input_shape[-3], spec.num_classes)


# SNN checkpoint kinds the evaluate stage can rebuild: "snn" (direct training, save_snn) and
# "converted" (QCFS ANN -> IF neurons, written by convert.save_converted)
SNN_BUILDERS = {"snn": _build_direct, "converted": _build_converted}


def load_snn(path: Path, spec: DatasetSpec):
    """Rebuild an SNN from `save_snn` or a converted checkpoint; errors name the file if it does
    not fit the dataset."""
    ck = load_checked(path, what="SNN checkpoint", producer="the training stage")
    if ck.get("kind") not in SNN_BUILDERS:
        raise SeennError(f"{path} is not an SNN checkpoint (kind={ck.get('kind')!r}): delete it and rerun its stage")
    check_trained_on(ck, spec, path, "SNN checkpoint", "rerun training")
    model = SNN_BUILDERS[ck["kind"]](ck, spec)
    load_weights(model, ck["state_dict"], path, "SNN checkpoint")
    return model, ck


def stage_train_snn(ctx) -> None:
    """Stage train_snn: prepared train/val splits -> trained SNN checkpoint + CSV log."""
    p = ctx.params
    spec, x, y = load_split(ctx.inputs["train"])
    _, xv, yv = load_split(ctx.inputs["val"])
    model = build_snn(p["model"], p["neuron"], spec.input_shape[-3], spec.num_classes, event=spec.event)
    fp = fingerprint(p, sha256_file(ctx.inputs["train"]), sha256_file(ctx.inputs["val"]))
    rows = fit_snn(model, spec, x, y, xv, yv, timesteps=p["train"]["timesteps"], tcfg=p["train"], seed=p["seed"],
                   device=ctx.device, ckpt_dir=ctx.checkpoint_dir, fp=fp, loss_name=p["train"]["loss"], desc="train_snn")
    save_snn(ctx.outputs["model"], model.cpu(), model_cfg=p["model"], neuron_cfg=p["neuron"],
             timesteps=p["train"]["timesteps"], spec=spec)
    write_log(rows, ctx.outputs["log"])


def declare():
    from .dag import RUNTIME_KEYS, Stage, branch_dir, split_paths

    d = branch_dir("direct")
    return Stage(name="train_snn", run=stage_train_snn, desc="direct SNN training (surrogate gradients, per-timestep loss)",
                 params=RUNTIME_KEYS + ("model", "neuron", "train"), inputs=split_paths("train", "val"),
                 outputs={"model": f"{d}/snn.pt", "log": f"{d}/train_log.csv"}, plots=("log",), checkpoints=True,
                 threads="all")
