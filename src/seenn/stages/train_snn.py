"""Direct SNN training: the configured SNN trained by training.fit (SGD with momentum, cosine
schedule, resumable epochs) with the configured per-timestep loss; a checkpoint and a CSV log."""

from __future__ import annotations

from seenn.common.artifacts import save_snn, write_train_log
from seenn.common.io import sha256_file
from seenn.data.files import open_split
from seenn.loops.fit import fit
from seenn.loops.resume import fingerprint, result_settings
from seenn.models import arch_config, build_snn
from seenn.snn.losses import snn_criterion


def stage_train_snn(ctx) -> None:
    """Stage train_snn: prepared train/val splits -> trained SNN checkpoint + CSV log."""
    p = ctx.params
    train, val = open_split(ctx.inputs["train"]), open_split(ctx.inputs["val"])
    spec = train.spec
    model = build_snn(p["model"], p["neuron"], spec.input_shape[-3], spec.num_classes, event=spec.event,
                      image_size=spec.input_shape[-1])
    fp = fingerprint(result_settings(p), sha256_file(ctx.inputs["train"]), sha256_file(ctx.inputs["val"]))
    t = p["train"]
    criterion = snn_criterion(t["loss"], t["tet_lambda"], t["tet_phi"])
    rows = fit(model, criterion, train, val, timesteps=t["timesteps"], cfg=t, seed=p["seed"], device=ctx.device,
               ckpt_dir=ctx.checkpoint_dir, fp=fp, desc="train_snn", loader=p["loader"], amp=p["amp"],
               log_every=t["log_every"], max_skips=t["max_skipped_steps"],
               compile=t["compile"], tf32=t["tf32"])
    save_snn(ctx.outputs["model"], model.cpu(), model_cfg=arch_config(p["model"]), neuron_cfg=p["neuron"],
             timesteps=t["timesteps"], spec=spec)
    write_train_log(ctx.outputs["log"], rows)


def declare():
    from seenn.stages.declaration import TRAINING_KEYS, Stage
    from seenn.stages.layout import branch_dir, split_paths

    d = branch_dir("direct")
    return Stage(name="train_snn", run=stage_train_snn, desc="direct SNN training (surrogate gradients, per-timestep loss)",
                 params=TRAINING_KEYS + ("loader", "model", "neuron", "train"), inputs=split_paths("train", "val"),
                 outputs={"model": f"{d}/snn.pt", "log": f"{d}/train_log.csv"}, plots=("log",), checkpoints=True,
                 threads="all", data_parallel=True)
