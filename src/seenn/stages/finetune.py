"""Early-exit-aware fine-tuning (SEENN-II, step 1): continue training the direct SNN with the
cumulative loss mean_t CE(z_t / t, y), so that every prefix t = 1..T of the accumulated output
predicts well, not only the full-T one. Same resumable SGD + cosine loop as direct training
(`loops.fit.fit`); the output is a new checkpoint beside the direct one.

`finetune.epochs: 0` switches fine-tuning off: the checkpoint is then the direct one, rewritten
unchanged, so the DAG (and every later stage) keeps its shape."""

from __future__ import annotations

from seenn.common.artifacts import save_snn, write_train_log
from seenn.common.io import sha256_file
from seenn.data.files import open_split
from seenn.loops.fit import fit
from seenn.loops.predict import load_snn
from seenn.loops.resume import fingerprint, result_settings
from seenn.snn.losses import snn_criterion


def stage_finetune_snn(ctx) -> None:
    """Stage finetune_snn: direct SNN + train/val splits -> fine-tuned SNN checkpoint + CSV log."""
    p = ctx.params
    f = p["finetune"]
    train, val = open_split(ctx.inputs["train"]), open_split(ctx.inputs["val"])
    spec = train.spec
    model, ck = load_snn(ctx.inputs["model"], spec)
    rows: list[dict] = []
    if f["epochs"] > 0:
        fp = fingerprint(result_settings(p), sha256_file(ctx.inputs["model"]), sha256_file(ctx.inputs["train"]), sha256_file(ctx.inputs["val"]))
        # the fine-tuning losses are 'cumulative' (default) and 'mean': no TET lambda and phi
        rows = fit(model, snn_criterion(f["loss"]), train, val, timesteps=ck["timesteps"], cfg=f, seed=p["seed"],
                   device=ctx.device, ckpt_dir=ctx.checkpoint_dir, fp=fp, desc="finetune_snn", loader=p["loader"], amp=p["amp"],
                   log_every=p["train"]["log_every"], max_skips=p["train"]["max_skipped_steps"],
                   compile=p["train"]["compile"], tf32=p["train"]["tf32"])
    save_snn(ctx.outputs["model"], model.cpu(), model_cfg=ck["model"], neuron_cfg=ck["neuron"],
             timesteps=ck["timesteps"], spec=spec)
    write_train_log(ctx.outputs["log"], rows)  # fine-tuning off: the header alone


def declare():
    from seenn.stages.declaration import FIT_LOG_KEYS, TRAINING_KEYS, Stage
    from seenn.stages.layout import branch_dir, split_paths

    d = branch_dir("finetuned")
    return Stage(name="finetune_snn", run=stage_finetune_snn,
                 desc="early-exit-aware fine-tuning of the direct SNN (loss averaged over every cumulative timestep output)",
                 params=TRAINING_KEYS + FIT_LOG_KEYS + ("loader", "finetune"),
                 inputs={"model": f"{branch_dir('direct')}/snn.pt", **split_paths("train", "val")},
                 outputs={"model": f"{d}/snn.pt", "log": f"{d}/finetune_log.csv"}, plots=("log",), checkpoints=True,
                 threads="all", data_parallel=True)
