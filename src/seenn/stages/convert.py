"""The convert_snn stage: the trained QCFS ANN becomes an IF SNN (methods.conversion); the ANN's
accuracy and learned thresholds go to ann_metrics.json."""

from __future__ import annotations

import logging

from seenn.common.artifacts import save_converted
from seenn.common.io import write_json
from seenn.data.files import open_split
from seenn.methods.conversion import ann_accuracy, convert, load_ann, thresholds
from seenn.models.qcfs import require_static_images

log = logging.getLogger("seenn")


def stage_convert_snn(ctx) -> None:
    """Stage convert_snn: QCFS ANN -> converted SNN checkpoint + the ANN's own accuracy
    (ann_metrics.json: the line the converted SNN should approach)."""
    p = ctx.params
    sources = {split: open_split(ctx.inputs[split]) for split in ("val", "test")}
    spec = sources["val"].spec
    require_static_images(spec, ctx.name)
    ann, ck = load_ann(ctx.inputs["ann"], spec)
    ann.eval()
    T = p["conversion"]["max_timesteps"]
    bs = p["evaluate"]["batch_size"]
    lams = thresholds(ann)
    snn = convert(ann)
    save_converted(ctx.outputs["model"], snn.cpu(), model_cfg=ck["model"], levels=ck["levels"], timesteps=T, spec=spec)
    metrics = {"dataset": spec.name, "levels": ck["levels"], "max_timesteps": T, "thresholds": lams}
    for split, src in sources.items():
        metrics[split] = {"n": len(src), "accuracy": ann_accuracy(ann, src, bs, ctx.device, p["loader"])}
    log.info("QCFS ANN (L=%d): val %.2f %%, test %.2f %%; converted to an IF SNN for T up to %d",
             ck["levels"], metrics["val"]["accuracy"], metrics["test"]["accuracy"], T)
    write_json(ctx.outputs["ann_metrics"], metrics)


def declare():
    from seenn.stages.declaration import Stage
    from seenn.stages.layout import branch_dir, split_paths

    d = branch_dir("converted")
    return Stage(name="convert_snn", run=stage_convert_snn,
                 desc="QCFS ANN -> IF SNN (threshold lambda, reset by subtraction, membrane from lambda/2); ANN accuracy",
                 params=("device", "deterministic", "loader", "conversion.max_timesteps", "evaluate"),
                 inputs={"ann": f"{d}/ann.pt", **split_paths("val", "test")},
                 outputs={"model": f"{d}/snn.pt", "ann_metrics": f"{d}/ann_metrics.json"},
                 threads="all")
