"""ANN training: the first stage of the conversion branch.

The ANN is the configured network with QCFS activations (models/qcfs.py; `conversion.method: qcfs`)
or with plain ReLU (`rmp`, RMP-SNN's ANN: models.build_relu_ann), trained by the same resumable
loop as the direct SNN (loops.fit.fit, run with T = 1 and plain cross-entropy): SGD with momentum,
cosine schedule, one checkpoint per epoch. Its hyperparameters live under `conversion:` so that
changing them reruns only the conversion branch."""

from __future__ import annotations

from seenn.common.artifacts import save_ann, write_train_log
from seenn.common.io import sha256_file
from seenn.data.files import open_split
from seenn.loops.fit import fit
from seenn.loops.resume import fingerprint, result_settings
from seenn.models import arch_config, build_relu_ann
from seenn.models.qcfs import build_qcfs_ann, require_static_images
from seenn.snn.losses import ann_loss


def stage_train_ann(ctx) -> None:
    """Stage train_ann: prepared train/val splits -> ANN checkpoint (QCFS or ReLU) + CSV log."""
    p = ctx.params
    c = p["conversion"]
    train, val = open_split(ctx.inputs["train"]), open_split(ctx.inputs["val"])
    spec = train.spec
    require_static_images(spec, ctx.name)
    size = spec.input_shape[-1]
    if c["method"] == "rmp":
        model = build_relu_ann(p["model"], spec.input_shape[-3], spec.num_classes, image_size=size)
    else:
        model = build_qcfs_ann(p["model"], c["levels"], c["lambda_init"], spec.input_shape[-3], spec.num_classes,
                               image_size=size)
    fp = fingerprint(result_settings(p), sha256_file(ctx.inputs["train"]), sha256_file(ctx.inputs["val"]))
    # `c` holds only the conversion keys this stage declares (stages.ANN_TRAIN_KEYS)
    rows = fit(model, ann_loss, train, val, timesteps=1, cfg=c, seed=p["seed"], device=ctx.device,
               ckpt_dir=ctx.checkpoint_dir, fp=fp, desc="train_ann", loader=p["loader"], amp=p["amp"],
               log_every=p["train"]["log_every"], max_skips=p["train"]["max_skipped_steps"],
               compile=p["train"]["compile"], tf32=p["train"]["tf32"])
    save_ann(ctx.outputs["model"], model.cpu(), model_cfg=arch_config(p["model"]), levels=c["levels"], spec=spec,
             method=c["method"])
    write_train_log(ctx.outputs["log"], rows)


# conversion keys the ANN training reads (levels and lambda_init: QCFS only): conversion.max_timesteps and the
# RMP balancing keys rerun conversion, not training
ANN_TRAIN_KEYS = tuple(f"conversion.{k}" for k in ("method", "levels", "lambda_init", "epochs", "batch_size", "lr",
                                                     "momentum", "weight_decay", "augment"))


def declare():
    from seenn.stages.declaration import FIT_LOG_KEYS, TRAINING_KEYS, Stage
    from seenn.stages.layout import branch_dir, split_paths

    d = branch_dir("converted")
    return Stage(name="train_ann", run=stage_train_ann,
                 desc="ANN training: QCFS (quantization-clip-floor-shift activations, trainable thresholds) or ReLU (RMP)",
                 params=TRAINING_KEYS + FIT_LOG_KEYS + ("loader", "model") + ANN_TRAIN_KEYS, inputs=split_paths("train", "val"),
                 outputs={"model": f"{d}/ann.pt", "log": f"{d}/ann_train_log.csv"}, plots=("log",), checkpoints=True,
                 threads="all", data_parallel=True)
