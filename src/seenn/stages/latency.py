"""The latency stage: measured wall-clock time and throughput of every method (methods.latency)
at each configured batch size, written to results/measurements/ (never a deterministic output)."""

from __future__ import annotations

import logging
import os
import time

import torch

from seenn.common.io import read_json, write_json, write_table
from seenn.data.files import open_split
from seenn.data.source import held_inputs
from seenn.loops.predict import load_snn
from seenn.methods import engine
from seenn.methods.catalog import engine_methods
from seenn.methods.latency import environment, keep_freed_memory, measure, summarize
from seenn.models import ann_twin
from seenn.snn.kernels import compile_available, set_fused

log = logging.getLogger("seenn")


def stage_latency(ctx) -> None:
    """Stage latency: trained SNN + SEENN-I calibration -> results/measurements/latency.*."""

    p = ctx.params
    cfg = p["engine"]
    threads = cfg["threads"] if cfg["threads"] > 0 else torch.get_num_threads()
    torch.set_num_threads(threads)
    src, xin = held_inputs(open_split(ctx.inputs["test"]), cfg["stream_samples"], p["loader"])
    spec, y = src.spec, src.y
    model, ck = load_snn(ctx.inputs["model"], spec)
    model.to(ctx.device).eval()
    ann = ann_twin(model).to(ctx.device)
    policy = engine.load_policy(ctx.inputs["policy"], spec, ctx.device) if "policy" in ctx.inputs else None
    if cfg["compile"]:
        set_fused(model, True)
    if cfg["channels_last"] and xin.dim() == 4:  # static images (event frames are 5-D)
        xin = xin.contiguous(memory_format=torch.channels_last)
        for net in (model, ann, policy.model if policy is not None else None):
            if net is not None:
                net.to(memory_format=torch.channels_last)
    kept = keep_freed_memory() if cfg["keep_freed_memory"] else False
    start = time.perf_counter()
    env = environment(threads, cfg["compile"], ctx.device, cfg["precision"], cfg["channels_last"])
    env["malloc_keeps_freed_memory"] = kept
    methods = engine_methods(ck["timesteps"], read_json(ctx.inputs["seenn1"]), policy is not None,
                             read_json(ctx.inputs["guarantee"]), p["seenn1"]["calibration"])
    rows = measure(model, ann, xin, y, ck["timesteps"], methods, cfg, policy, ctx.device)
    env["fused_lif"] = bool(cfg["compile"] and compile_available())
    env["load_average_1min_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    env["wall_s"] = time.perf_counter() - start
    summary = summarize(rows, ck["timesteps"])
    for entry in summary:
        log.info("batch %d: best fixed T: %s; SNN T=1 / ANN %.2fx; %s", entry["batch_size"], entry["best_fixed_path"],
                 entry["snn_t1_over_ann"], "; ".join(f"{k} speedup {v['speedup']:.2f}x ({v['of_reachable']:.2f} of "
                                                     f"reachable {v['reachable']:.2f}x, ideal {v['ideal']:.2f}x)"
                                                     for k, v in entry["early_exit"].items()))
    write_json(ctx.outputs["latency"], {"environment": env, "timesteps": ck["timesteps"],
                                        "seenn1_calibration": p["seenn1"]["calibration"], "rows": rows, "summary": summary})
    write_table(latency_table(rows, summary), ctx.outputs["table_csv"], ctx.outputs["table_md"])


def latency_table(rows: list[dict], summary: list[dict] | None = None):
    """Measured latency per method and batch size: paper Eq. 14 (test time / samples) in ms,
    samples per second, and the speedup over the best fixed T beside the paper's ideal T /
    average timesteps, the reachable bound of the early-exit methods and the fraction of it
    reached (from `summary`)."""
    import pandas as pd

    early = {(name, s["batch_size"]): v for s in summary or [] for name, v in s["early_exit"].items()}
    return pd.DataFrame([{
        "method": r["method"], "batch": r["batch_size"], "samples": r["samples"],
        "ms_per_sample": r["seconds_per_sample"] * 1e3, "samples_per_s": r["samples_per_second"],
        "avg_timesteps": r["avg_timesteps"], "speedup": r["speedup_vs_fixed_T"], "ideal": r["ideal_speedup"],
        "reachable": early.get((r["method"], r["batch_size"]), {}).get("reachable"),
        "of_reachable": early.get((r["method"], r["batch_size"]), {}).get("of_reachable"),
        "best_fixed_T": r["best_fixed_T"]} for r in rows])


def declare(branch):
    from seenn.stages.declaration import Stage
    from seenn.stages.layout import MEASUREMENTS, engine_inputs

    return Stage(name="latency", run=stage_latency,
                 desc="measured wall-clock latency and throughput: fixed T, SEENN-I/II, conformal, ANN (a measurement)",
                 params=("device", "loader") + tuple(
                     f"engine.{k}" for k in ("compile", "threads", "keep_freed_memory", "batch_sizes", "latency_samples",
                                              "sync_every", "compile_step", "cuda_graph", "precision", "channels_last", "warmup",
                                              "repetitions", "stream_samples")) + ("seenn1.calibration",),
                 inputs=engine_inputs(branch),
                 outputs={"latency": f"{MEASUREMENTS}/latency.json", "table_csv": f"{MEASUREMENTS}/latency.csv",
                          "table_md": f"{MEASUREMENTS}/latency.md"},
                 threads="all")
