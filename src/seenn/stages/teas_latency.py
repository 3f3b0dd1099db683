"""Stage teas_latency: measured wall-clock latency of the layer-major TEAS runs on the direct SNN
(fixed T layer-major, the initial allocation and the retrained windows at the default ratio) beside
the network's own multi-step forward at T, on the first `teas.latency_samples` test inputs, methods
interleaved round-robin (seenn.methods.latency.time_rounds), the median reported. A measurement: it goes
to results/measurements/, never into the deterministic outputs.

One footing: every TEAS row runs the same unfused, layer-major loop (each layer's window before the
next, Eq. 3 between), so they compare with one another and with fixed T run the same way
(`vs_fixed_layer_major`), not with the SEENN engine's fused, timestep-major latency (results/
measurements/latency.*), whose kernels and batching differ; the multi-step forward row shows the
gap between the two paths at equal windows."""

from __future__ import annotations

import statistics

import torch

from seenn.common.io import read_json, write_json, write_table
from seenn.data.files import open_split
from seenn.data.source import held_inputs
from seenn.loops.predict import load_snn
from seenn.methods.latency import environment, time_rounds
from seenn.stages import teas_paths as paths
from seenn.teas import layerwise
from seenn.teas.variants import ALLOCATION, RETRAINED

FOOTING = ("Every TEAS row and 'fixed T (layer-major)' run the same unfused layer-major loop; vs_fixed_layer_major is "
           "their wall time over fixed T on that path. They do not compare with the SEENN engine's latency "
           "(fused kernels, timestep-major, early exit): the multi-step forward row is the same network at fixed T "
           "on the SEENN side's path.")


def stage_teas_latency(ctx) -> None:
    import pandas as pd

    p, t = ctx.params, ctx.params["teas"]
    threads = p["engine"]["threads"]
    if threads > 0:
        torch.set_num_threads(threads)
    src = open_split(ctx.inputs["test"])
    src, x = held_inputs(src, min(t["latency_samples"], len(src)), p["loader"])
    x = x[: t["latency_samples"]].to(ctx.device)
    model, ck = load_snn(ctx.inputs["model"], src.spec)
    model.to(ctx.device).eval()
    T = int(ck["timesteps"])
    L = len(layerwise.spiking_layers(model))
    alloc = next(a for a in read_json(ctx.inputs["allocation"])["allocations"] if a["ratio"] == t["ratio"])
    from seenn.stages.teas import load_retrained

    retrained = next(e for e in load_retrained(ctx.inputs["retrained"])["entries"] if e["ratio"] == t["ratio"])
    bs = t["batch_size"]

    def batched(fn):
        return lambda: [fn(x[i : i + bs]) for i in range(0, x.shape[0], bs)]

    def layer_major(windows):
        return batched(lambda xb: layerwise.run(model, xb, windows, t["conversion"], expansion=t["expansion"]))

    fixed_lm = f"fixed T={T} (layer-major)"
    runs = {f"fixed T={T} (multi-step forward)": batched(lambda xb: model(xb, T)),
            fixed_lm: layer_major([T] * L),
            f"{ALLOCATION} {alloc['windows']}": layer_major(alloc["windows"]),
            f"{RETRAINED} {retrained['windows']}": layer_major(retrained["windows"])}
    with torch.no_grad():
        wall, cpu = time_rounds(runs, 1, t["latency_repetitions"])
    n = x.shape[0]
    base = statistics.median(wall[fixed_lm])
    rows = [{"method": name, "path": "multi-step forward" if name.endswith("(multi-step forward)") else "layer-major",
             "samples": n, "batch_size": bs, "seconds_per_sample": statistics.median(wall[name]) / n,
             "cpu_seconds_per_sample": statistics.median(cpu[name]) / n,
             "vs_fixed_layer_major": statistics.median(wall[name]) / base} for name in runs]
    env = environment(threads, False, ctx.device)
    write_json(ctx.outputs["latency"], {"environment": env, "ratio": t["ratio"], "rows": rows})
    write_table(pd.DataFrame(rows), ctx.outputs["table_csv"], ctx.outputs["table_md"], digits=6,
                notes=f"Measured on {env['cpu']} with {threads} torch thread(s) (a measurement, varies run to run). "
                      f"{FOOTING}")


def declare():
    from seenn.stages.declaration import Stage
    from seenn.stages.layout import branch_dir, split_paths

    return Stage(name="teas_latency", run=stage_teas_latency,
                 desc="TEAS: measured layer-major latency on the direct SNN (a measurement)",
                 params=("seed", "device", "loader", "engine.threads", "teas.ratio", "teas.conversion", "teas.batch_size",
                         "teas.expansion", "teas.latency_samples", "teas.latency_repetitions"),
                 inputs={"model": f"{branch_dir('direct')}/snn.pt", "test": split_paths("test")["test"],
                         "allocation": paths.allocation("direct"), "retrained": paths.retrained("direct")},
                 outputs={"latency": paths.LATENCY, "table_csv": paths.LATENCY_CSV, "table_md": paths.LATENCY_MD},
                 threads="all")
