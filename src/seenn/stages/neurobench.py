"""The neurobench stage: NeuroBench's Benchmark (methods/neurobench.py) on the engine's SNN at fixed
T and at the rule the engine stages run as SEENN-I, with the project's own counts on the same
samples beside it -> results/<engine branch>/neurobench.json (deterministic: counts, not times)."""

from __future__ import annotations

import torch


@torch.no_grad()
def stage_neurobench(ctx) -> None:
    from seenn.common.io import read_json, write_json
    from seenn.data.files import open_split
    from seenn.data.source import held_inputs
    from seenn.loops.predict import load_snn
    from seenn.methods import neurobench
    from seenn.methods.catalog import engine_methods

    p = ctx.params
    if p["engine"]["threads"] > 0:
        torch.set_num_threads(p["engine"]["threads"])
    src, x = held_inputs(open_split(ctx.inputs["test"]), p["engine"]["stream_samples"], p["loader"])
    n = min(p["neurobench"]["samples"] or len(src.y), len(src.y))
    x, y = x[:n].to(ctx.device), src.y[:n].to(ctx.device)
    model, ck = load_snn(ctx.inputs["model"], src.spec)
    model.to(ctx.device).eval()
    T = ck["timesteps"]
    methods = engine_methods(T, read_json(ctx.inputs["seenn1"]), False, read_json(ctx.inputs["guarantee"]),
                             p["seenn1"]["calibration"])
    chosen = [m for m in methods if m.kind == "fixed" and m.T == T] + [next(m for m in methods if m.kind == "rule")]
    out = {"neurobench": neurobench.version(), "install": neurobench.INSTALL, "samples": n, "timesteps": T, "methods": []}
    for m in chosen:
        out["methods"].append({"method": m.label, "neurobench": neurobench.run(model, x, y, T, m.rule),
                               "project": neurobench.project_counts(model, x, T, m.rule)})
    write_json(ctx.outputs["result"], out)


def declare(branch):
    from seenn.stages.declaration import Stage
    from seenn.stages.layout import engine_inputs

    inputs = {k: v for k, v in engine_inputs(branch).items() if k in ("model", "test", "seenn1", "guarantee")}
    return Stage(name="neurobench", run=stage_neurobench,
                 desc="NeuroBench's metrics (footprint, sparsities, accuracy, synaptic operations) on the engine at "
                      "fixed T and at SEENN-I, beside the project's own operation counts",
                 params=("device", "loader", "neurobench", "engine.threads", "engine.stream_samples", "seenn1.calibration"),
                 inputs=inputs, outputs={"result": f"{branch.dir}/neurobench.json"})
