"""Early-exit-aware fine-tuning (SEENN-II, step 1): continue training the direct SNN with the
cumulative loss mean_t CE(z_t / t, y), so that every prefix t = 1..T of the accumulated output
predicts well, not only the full-T one. Same resumable SGD + cosine loop as direct training
(`train.fit_snn`); the output is a new checkpoint beside the direct one.

`finetune.epochs: 0` switches fine-tuning off: the checkpoint is then the direct one, rewritten
unchanged, so the DAG (and every later stage) keeps its shape."""

from __future__ import annotations

from .checkpoint import fingerprint
from .data.prepared import load_split
from .io import sha256_file, write_text
from .train import fit_snn, load_snn, save_snn, write_log

LOG_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "val_acc")  # the columns of fit_snn's rows


def finetune_config(f: dict) -> dict:
    """The `finetune` section in the shape `fit_snn` expects. TET's lambda and phi do not apply:
    the fine-tuning losses are 'cumulative' (default) and 'mean'."""
    return {**f, "tet_lambda": 0.0, "tet_phi": 1.0}


def stage_finetune_snn(ctx) -> None:
    """Stage finetune_snn: direct SNN + train/val splits -> fine-tuned SNN checkpoint + CSV log."""
    p = ctx.params
    f = p["finetune"]
    spec, x, y = load_split(ctx.inputs["train"])
    _, xv, yv = load_split(ctx.inputs["val"])
    model, ck = load_snn(ctx.inputs["model"], spec)
    rows: list[dict] = []
    if f["epochs"] > 0:
        fp = fingerprint(p, sha256_file(ctx.inputs["model"]), sha256_file(ctx.inputs["train"]), sha256_file(ctx.inputs["val"]))
        rows = fit_snn(model, spec, x, y, xv, yv, timesteps=ck["timesteps"], tcfg=finetune_config(f), seed=p["seed"],
                       device=ctx.device, ckpt_dir=ctx.checkpoint_dir, fp=fp, loss_name=f["loss"], desc="finetune_snn")
    save_snn(ctx.outputs["model"], model.cpu(), model_cfg=ck["model"], neuron_cfg=ck["neuron"],
             timesteps=ck["timesteps"], spec=spec)
    if rows:
        write_log(rows, ctx.outputs["log"])
    else:  # fine-tuning off: a header-only log
        write_text(ctx.outputs["log"], ",".join(LOG_COLUMNS) + "\n")


def declare():
    from .dag import RUNTIME_KEYS, Stage, branch_dir, split_paths

    d = branch_dir("finetuned")
    return Stage(name="finetune_snn", run=stage_finetune_snn,
                 desc="early-exit-aware fine-tuning of the direct SNN (loss averaged over every cumulative timestep output)",
                 params=RUNTIME_KEYS + ("finetune",),
                 inputs={"model": f"{branch_dir('direct')}/snn.pt", **split_paths("train", "val")},
                 outputs={"model": f"{d}/snn.pt", "log": f"{d}/finetune_log.csv"}, plots=("log",), checkpoints=True,
                 threads="all")
