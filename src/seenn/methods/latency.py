"""Wall-clock timing of fixed T, SEENN-I, SEENN-II and the ANN of the same architecture.

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

import ctypes
import logging
import os
import statistics
import time
from typing import Callable

import torch

from seenn.common.runtime import cpu_model
from seenn.methods import engine
from seenn.methods.catalog import ANN, Method, fixed_label
from seenn.methods.exits import ExitAt

log = logging.getLogger("seenn")


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


def method_runs(model, ann, x: torch.Tensor, batch_size: int, methods: list[Method],
                policy: engine.Policy | None, cfg: dict | None = None) -> dict[str, Callable[[], list]]:
    """One callable per method of `methods.engine_methods`, each running all of `x` once and
    returning the engine results. The SNN methods run on the engine over `batch_size` slots (for
    fixed T it is the same as plain batches: every sample leaves at T), each method's Engine built
    once, so its compiled step or captured graph is reused round after round (`cfg`: the engine
    section, for sync_every, compile_step, cuda_graph); the ANN runs plain batches."""
    how = {k: v for k, v in (cfg or {}).items() if k in ("sync_every", "compile_step", "cuda_graph")}
    runs: dict[str, Callable[[], list]] = {}
    for m in methods:
        if m.kind in ("fixed", "rule"):
            eng = engine.Engine(model, m.T, m.rule, batch_size, **how)
            runs[m.label] = lambda eng=eng: [eng(x)]
        elif m.kind == "seenn2":  # the policy decides every input's u first, inside the timed call
            u = torch.ones(x.shape[0], dtype=torch.long, device=x.device)
            eng = engine.Engine(model, m.T, ExitAt(u), batch_size, **how)  # reads u where it lies
            runs[m.label] = lambda eng=eng, u=u, T=m.T: [
                (u.copy_(engine.policy_exits(policy, x, T, batch_size)), eng(x))[1]]
        else:
            runs[m.label] = lambda: [ann(x[i : i + batch_size], 1) for i in range(0, x.shape[0], batch_size)]
    return runs


def measure(model, ann, x: torch.Tensor, y: torch.Tensor, T: int, methods: list[Method], cfg: dict,
            policy: engine.Policy | None, device: torch.device) -> list[dict]:
    """Rows of the latency table: every method at every batch size."""
    rows = []
    for batch_size, n in zip(cfg["batch_sizes"], cfg["latency_samples"]):
        n = x.shape[0] if n == 0 else min(n, x.shape[0])
        runs = method_runs(model, ann, x[:n].to(device), batch_size, methods, policy, cfg)
        if device.type == "cuda":  # the clock stops only when the GPU has finished
            runs = {name: (lambda fn=fn: (fn(), torch.cuda.synchronize())[0]) for name, fn in runs.items()}
        log.info("timing %d methods at batch size %d on %d samples (%d warm-up + %d timed rounds)",
                 len(runs), batch_size, n, cfg["warmup"], cfg["repetitions"])
        with torch.no_grad():
            outcomes = {name: fn() for name, fn in runs.items()}  # also the first warm-up
            times, cpu = time_rounds(runs, cfg["warmup"] - 1, cfg["repetitions"])
        fixed = fixed_label(T)
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


def reachable_speedup(t1: list[float], tT: list[float], T: int, avg_timesteps: float) -> float:
    """The speedup over fixed T that early exit at `avg_timesteps` can reach on this machine:
    t(T) / [t(1) + (avg T - 1) * t(later step)], t(later step) = (t(T) - t(1)) / (T - 1), from the
    same rounds' timings of fixed T = 1 and fixed T (median of the per-round bounds). The stem and
    input work run once per sample, so it is below the paper's ideal T / avg T whenever t(1) costs
    more than a later step."""
    if T == 1:
        return 1.0
    return statistics.median(b / (a + (avg_timesteps - 1) * (b - a) / (T - 1)) for a, b in zip(t1, tT))


def summarize(rows: list[dict], T: int) -> list[dict]:
    """Per batch size: SEENN speedups over fixed T against the ideal T / average timesteps and the
    reachable bound (`reachable_speedup`), fixed T over fixed T = 1, and
    the cost of one SNN timestep relative to one ANN forward (fixed T=1, and the marginal cost
    of a later timestep, (fixed T - fixed T=1) / (T - 1)); ratios paired within rounds, on
    wall-clock and on CPU time; `fastest_speedup` compares the fastest rounds (contention only
    ever slows a round down, so the minimum is the least disturbed figure)."""
    out = []
    not_early = {ANN} | {fixed_label(t) for t in range(1, T + 1)}
    early_exit = {r["method"] for r in rows} - not_early
    for bs in sorted({r["batch_size"] for r in rows}):
        by = {r["method"]: r for r in rows if r["batch_size"] == bs}
        entry = {"batch_size": bs}
        for clock, key in (("", "rounds_s"), ("cpu_", "rounds_cpu_s")):
            ann, t1, tT = (by[m][key] for m in (ANN, fixed_label(1), fixed_label(T)))
            entry[f"{clock}snn_t1_over_ann"] = paired_ratio(t1, ann)
            if T > 1:
                entry[f"{clock}snn_later_timestep_over_ann"] = paired_ratio([(b - a) / (T - 1) for a, b in zip(t1, tT)], ann)
        fastest_T = by[fixed_label(T)]["min_s"]
        t1, tT = by[fixed_label(1)]["rounds_s"], by[fixed_label(T)]["rounds_s"]
        entry["fixed_T_over_T1"] = paired_ratio(tT, t1)
        entry["early_exit"] = {name: {"speedup": r["speedup_vs_fixed_T"], "cpu_speedup": r["cpu_speedup_vs_fixed_T"],
                                      "fastest_speedup": fastest_T / r["min_s"], "ideal": r["ideal_speedup"],
                                      "reachable": reachable_speedup(t1, tT, T, r["avg_timesteps"]),
                                      "fraction_of_ideal": r["speedup_vs_fixed_T"] / r["ideal_speedup"],
                                      "cpu_fraction_of_ideal": r["cpu_speedup_vs_fixed_T"] / r["ideal_speedup"]}
                               for name, r in by.items() if name in early_exit}
        out.append(entry)
    return out
