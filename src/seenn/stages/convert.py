"""The convert_snn stage: the trained ANN becomes an IF SNN (methods.conversion: QCFS's thresholds,
or RMP's balanced on the training split); the ANN's accuracy and the thresholds go to ann_metrics.json."""

from __future__ import annotations

import logging

from seenn.common.artifacts import ann_method, save_converted
from seenn.common.errors import SeennError
from seenn.common.io import write_json
from seenn.data.files import open_split
from seenn.methods.conversion import (
    RMP_INIT_FRACTION,
    ann_accuracy,
    balance_thresholds,
    convert,
    convert_rmp,
    load_ann,
    thresholds,
)
from seenn.models.qcfs import require_static_images

log = logging.getLogger("seenn")


def stage_convert_snn(ctx) -> None:
    """Stage convert_snn: ANN -> converted SNN checkpoint + the ANN's own accuracy
    (ann_metrics.json: the line the converted SNN should approach)."""
    p = ctx.params
    c = p["conversion"]
    sources = {split: open_split(ctx.inputs[split]) for split in ("val", "test")}
    spec = sources["val"].spec
    require_static_images(spec, ctx.name)
    ann, ck = load_ann(ctx.inputs["ann"], spec)
    if ann_method(ck) != c["method"]:
        raise SeennError(f"{ctx.inputs['ann']} holds the ANN of conversion.method {ann_method(ck)!r}, but "
                         f"'conversion.method' is {c['method']!r}: rerun train_ann")
    ann.eval()
    T = c["max_timesteps"]
    bs = p["evaluate"]["batch_size"]
    if c["method"] == "rmp":
        train = open_split(ctx.inputs["train"])
        balance = train.first(c["balance_samples"]) if c["balance_samples"] > 0 else train
        lams = balance_thresholds(ann, balance, c["percentile"], bs, ctx.device, p["loader"])
        snn = convert_rmp(ann, lams)
        save_converted(ctx.outputs["model"], snn.cpu(), model_cfg=ck["model"], levels=None, timesteps=T, spec=spec,
                       init_fraction=RMP_INIT_FRACTION)
        metrics = {"dataset": spec.name, "method": "rmp", "levels": None, "percentile": c["percentile"],
                   "balance_samples": len(balance), "init_fraction": RMP_INIT_FRACTION, "max_timesteps": T,
                   "thresholds": lams}
        what = f"ReLU ANN (RMP, thresholds at the {c['percentile']:g}th percentile of {len(balance)} training samples)"
    else:
        lams = thresholds(ann)
        snn = convert(ann)
        save_converted(ctx.outputs["model"], snn.cpu(), model_cfg=ck["model"], levels=ck["levels"], timesteps=T, spec=spec)
        metrics = {"dataset": spec.name, "levels": ck["levels"], "max_timesteps": T, "thresholds": lams}
        what = f"QCFS ANN (L={ck['levels']})"
    for split, src in sources.items():
        metrics[split] = {"n": len(src), "accuracy": ann_accuracy(ann, src, bs, ctx.device, p["loader"])}
    log.info("%s: val %.2f %%, test %.2f %%; converted to an IF SNN for T up to %d",
             what, metrics["val"]["accuracy"], metrics["test"]["accuracy"], T)
    write_json(ctx.outputs["ann_metrics"], metrics)


def declare():
    from seenn.stages.declaration import Stage
    from seenn.stages.layout import branch_dir, split_paths

    d = branch_dir("converted")
    return Stage(name="convert_snn", run=stage_convert_snn,
                 desc="ANN -> IF SNN (reset by subtraction; QCFS: threshold lambda, membrane from lambda/2; RMP: "
                      "thresholds balanced on the training split, membrane from 0); ANN accuracy",
                 params=("device", "deterministic", "loader", "conversion.max_timesteps", "conversion.method",
                         "conversion.percentile", "conversion.balance_samples", "evaluate"),
                 inputs={"ann": f"{d}/ann.pt", **split_paths("train", "val", "test")},
                 outputs={"model": f"{d}/snn.pt", "ann_metrics": f"{d}/ann_metrics.json"},
                 threads="all")
