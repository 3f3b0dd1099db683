"""Direct SNN training: SGD with momentum, cosine schedule, per-timestep loss, one resumable
checkpoint per epoch, progress (a bar on a terminal, log lines elsewhere) and a deterministic CSV log."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from .artifacts import load_split, save_snn, write_train_log
from .checkpoint import fingerprint, run_epochs
from .data.augment import augmented_input
from .inference import batches, predict_logits
from .io import sha256_file
from .losses import snn_loss
from .models import build_snn
from .progress import progress

log = logging.getLogger("seenn")


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
    write_train_log(ctx.outputs["log"], rows)
