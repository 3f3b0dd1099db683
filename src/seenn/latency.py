"""Latency stage: measured wall-clock time and throughput of fixed T, SEENN-I, SEENN-II and the
ANN of the same architecture, at each configured batch size.

What is timed: the network on the first `engine.latency_samples` test inputs (already
normalized tensors, so data loading is excluded), one method after another in round-robin
order (so slow phases of a shared machine hit every method alike), `engine.warmup` untimed
rounds, then `engine.repetitions` timed rounds; the median is reported. Paper Eq. 14 ("test set
inference time / number of test samples") is `seconds_per_sample`; `samples_per_second` is its
inverse. Fixed T and the early-exit methods all run on the stepwise engine with continuous
batching (on CPU it is faster than the merged multi-step path; benchmarks/bench_engine.py
compares the two, and continuous batching with batches run in lockstep).

These are measurements, not results: they go to results/measurements/, never into the
deterministic outputs, and vary from run to run (the file records the machine, thread count and
load average so a reader can judge them)."""

from __future__ import annotations

import copy
import ctypes
import logging
import os
import statistics
import time
from typing import Callable

import torch
from torch import nn

from . import engine
from .artifacts import load_split
from .data import to_input
from .errors import SeennError
from .inference import load_snn
from .io import read_json, write_json, write_text
from .neurons import compile_available, set_fused
from .runtime import cpu_model

log = logging.getLogger("seenn")


def build_ann(snn: nn.Module) -> nn.Module:
    """The ANN of the same architecture: the same ResNet with ReLU in place of every spiking
    neuron, run once (T = 1). It reuses the SNN's trained weights: only its time and operation
    counts are used, never its accuracy."""
    from .models.resnet import SpikingResNet, TimeFold

    if not isinstance(snn, SpikingResNet):
        raise SeennError(f"the ANN reference needs a SpikingResNet, got {type(snn).__name__}")
    ann = copy.deepcopy(snn)
    for m in ann.modules():
        if isinstance(m, TimeFold):
            m.neuron = nn.ReLU()
    return ann.eval()


def time_rounds(methods: dict[str, Callable[[], object]], warmup: int, repetitions: int):
    """Run every method `warmup` untimed rounds, then `repetitions` timed rounds, round-robin.

    Returns wall-clock seconds and process CPU seconds per call of each method. The CPU time
    leaves out the time this process waited for a core, so it is steadier than the wall-clock
    time when other jobs share the machine (with one torch thread it is the compute time)."""
    for _ in range(warmup):
        for fn in methods.values():
            fn()
    wall: dict[str, list[float]] = {name: [] for name in methods}
    cpu: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repetitions):
        for name, fn in methods.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return wall, cpu


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to serve blocks up to 32 MB from the heap and to keep what is freed,
    as a caching allocator (jemalloc, tcmalloc, PyTorch's CUDA allocator) does. Without it every
    multi-megabyte activation is a fresh mapping whose pages fault in on first touch, which on
    this VM costs about as much as the arithmetic. It helps every method alike; False where it
    is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 * 2**20) and libc.mallopt(m_trim_threshold, 2**31 - 1)
                    and libc.mallopt(m_top_pad, 64 * 2**20))
    except (OSError, AttributeError):
        return False


def paired_ratio(reference: list[float], other: list[float]) -> float:
    """Median over rounds of reference / other, each ratio taken within one round: methods of a
    round run back to back, so a slow phase of a shared machine cancels out of the ratio."""
    return statistics.median(r / o for r, o in zip(reference, other))


def environment(threads: int, compiled: bool, device: torch.device) -> dict:
    return {"device": str(device), "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": threads,
            "torch": torch.__version__, "fused_lif": compiled,
            "load_average_1min_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def method_runs(model, ann, x: torch.Tensor, batch_size: int, T: int, seenn1: dict, temperature: float,
                accumulate: str, entropy_temperature: bool, policy: engine.Policy | None) -> dict[str, Callable[[], list]]:
    """One callable per method, each running all of `x` once and returning the engine results.
    The SNN methods run on the engine with continuous batching at `batch_size` (for fixed T it
    is the same as plain batches: every sample leaves at T); the ANN runs plain batches."""
    runs: dict[str, Callable[[], list]] = {}
    for t in range(1, T + 1):
        runs[f"Fixed T={t}"] = lambda t=t: [engine.run_fixed(model, x, t, batch_size=batch_size)]
    for score, r in seenn1["scores"].items():
        runs[f"SEENN-I ({score})"] = lambda s=score, a=r["alpha"]: [
            engine.run_seenn1(model, x, T, a, s, temperature, accumulate, entropy_temperature, batch_size=batch_size)]
    if policy is not None:
        runs["SEENN-II"] = lambda: [engine.run_policy(model, x, T, policy, batch_size=batch_size)]
    runs["ANN (same architecture)"] = lambda: [ann(x[i : i + batch_size], 1) for i in range(0, x.shape[0], batch_size)]
    return runs


def measure(model, ann, x: torch.Tensor, y: torch.Tensor, T: int, seenn1: dict, cfg: dict, temperature: float,
            accumulate: str, entropy_temperature: bool, policy: engine.Policy | None, device: torch.device) -> list[dict]:
    """Rows of the latency table: every method at every batch size."""
    rows = []
    for batch_size, n in zip(cfg["batch_sizes"], cfg["latency_samples"]):
        n = x.shape[0] if n == 0 else min(n, x.shape[0])
        runs = method_runs(model, ann, x[:n].to(device), batch_size, T, seenn1, temperature, accumulate,
                           entropy_temperature, policy)
        if device.type == "cuda":  # the clock stops only when the GPU has finished
            runs = {name: (lambda fn=fn: (fn(), torch.cuda.synchronize())[0]) for name, fn in runs.items()}
        log.info("timing %d methods at batch size %d on %d samples (%d warm-up + %d timed rounds)",
                 len(runs), batch_size, n, cfg["warmup"], cfg["repetitions"])
        with torch.no_grad():
            outcomes = {name: fn() for name, fn in runs.items()}  # also the first warm-up
            times, cpu = time_rounds(runs, cfg["warmup"] - 1, cfg["repetitions"])
        fixed = f"Fixed T={T}"
        for name, ts in times.items():
            med, med_cpu = statistics.median(ts), statistics.median(cpu[name])
            row = {"method": name, "batch_size": batch_size, "samples": n, "median_s": med, "min_s": min(ts),
                   "max_s": max(ts), "seconds_per_sample": med / n, "samples_per_second": n / med,
                   "median_cpu_s": med_cpu, "repetitions": len(ts), "avg_timesteps": None, "accuracy": None,
                   "speedup_vs_fixed_T": paired_ratio(times[fixed], ts),
                   "cpu_speedup_vs_fixed_T": paired_ratio(cpu[fixed], cpu[name]), "ideal_speedup": None,
                   "rounds_s": ts, "rounds_cpu_s": cpu[name]}
            res = outcomes[name]
            if res and isinstance(res[0], engine.EngineResult):
                exit_t = torch.cat([r.exit_t for r in res])
                pred = torch.cat([r.prediction for r in res])
                row["avg_timesteps"] = float(exit_t.double().mean())
                row["accuracy"] = float((pred == y[:n]).double().mean() * 100)
                row["ideal_speedup"] = T / row["avg_timesteps"]
            rows.append(row)
    return rows


def summarize(rows: list[dict], T: int) -> list[dict]:
    """Per batch size: SEENN speedups over fixed T against the ideal T / average timesteps, and
    the cost of one SNN timestep relative to one ANN forward (fixed T=1, and the marginal cost
    of a later timestep, (fixed T - fixed T=1) / (T - 1)); ratios paired within rounds, on
    wall-clock and on CPU time; `fastest_speedup` compares the fastest rounds (contention only
    ever slows a round down, so the minimum is the least disturbed figure)."""
    out = []
    for bs in sorted({r["batch_size"] for r in rows}):
        by = {r["method"]: r for r in rows if r["batch_size"] == bs}
        entry = {"batch_size": bs}
        for clock, key in (("", "rounds_s"), ("cpu_", "rounds_cpu_s")):
            ann, t1, tT = (by[m][key] for m in ("ANN (same architecture)", "Fixed T=1", f"Fixed T={T}"))
            entry[f"{clock}snn_t1_over_ann"] = paired_ratio(t1, ann)
            if T > 1:
                entry[f"{clock}snn_later_timestep_over_ann"] = paired_ratio([(b - a) / (T - 1) for a, b in zip(t1, tT)], ann)
        fastest_T = by[f"Fixed T={T}"]["min_s"]
        entry["early_exit"] = {name: {"speedup": r["speedup_vs_fixed_T"], "cpu_speedup": r["cpu_speedup_vs_fixed_T"],
                                      "fastest_speedup": fastest_T / r["min_s"], "ideal": r["ideal_speedup"],
                                      "fraction_of_ideal": r["speedup_vs_fixed_T"] / r["ideal_speedup"],
                                      "cpu_fraction_of_ideal": r["cpu_speedup_vs_fixed_T"] / r["ideal_speedup"]}
                               for name, r in by.items() if name.startswith("SEENN")}
        out.append(entry)
    return out


def stage_latency(ctx) -> None:
    """Stage latency: trained SNN + SEENN-I calibration -> results/measurements/latency.*."""
    from .report.tables import latency_table, write_table

    p = ctx.params
    cfg = p["engine"]
    threads = cfg["threads"] if cfg["threads"] > 0 else torch.get_num_threads()
    torch.set_num_threads(threads)
    spec, x, y = load_split(ctx.inputs["test"])
    model, ck = load_snn(ctx.inputs["model"], spec)
    model.to(ctx.device).eval()
    ann = build_ann(model).to(ctx.device)
    seenn1 = read_json(ctx.inputs["seenn1"])
    policy = engine.load_policy(ctx.inputs["policy"], spec, ctx.device) if "policy" in ctx.inputs else None
    if cfg["compile"]:
        set_fused(model, True)
    kept = keep_freed_memory() if cfg["keep_freed_memory"] else False
    start = time.perf_counter()
    env = environment(threads, cfg["compile"], ctx.device)
    env["malloc_keeps_freed_memory"] = kept
    rows = measure(model, ann, to_input(spec, x), y, ck["timesteps"], seenn1, cfg, p["seenn1"]["temperature"],
                   p["seenn1"]["accumulate"], p["seenn1"]["entropy_temperature"], policy, ctx.device)
    env["fused_lif"] = bool(cfg["compile"] and compile_available())
    env["load_average_1min_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    env["wall_s"] = time.perf_counter() - start
    summary = summarize(rows, ck["timesteps"])
    for entry in summary:
        log.info("batch %d: SNN T=1 / ANN %.2fx; %s", entry["batch_size"], entry["snn_t1_over_ann"],
                 "; ".join(f"{k} speedup {v['speedup']:.2f}x of ideal {v['ideal']:.2f}x" for k, v in entry["early_exit"].items()))
    write_json(ctx.outputs["latency"], {"environment": env, "timesteps": ck["timesteps"], "rows": rows, "summary": summary})
    table = latency_table(rows)
    write_table(table, ctx.outputs["table_csv"], ctx.outputs["table_md"])
