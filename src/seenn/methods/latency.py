"""Wall-clock timing of fixed T, SEENN-I, SEENN-II and the ANN of the same architecture.

What is timed: the network on the first `engine.latency_samples` test inputs (0: the whole
split, paper Eq. 14 "test set inference time / number of test samples"; already normalized
tensors, so data loading is excluded), one method after another in round-robin order (so slow
phases of a shared machine hit every method alike), `engine.warmup` untimed rounds (compilation,
CUDA graph capture and warm-up happen there), then `engine.repetitions` timed rounds; the median
is reported, `seconds_per_sample` is Eq. 14 and `samples_per_second` its inverse. On CUDA each
call is timed by CUDA events. Everything runs in `engine.precision` (fp32, tf32 or bf16).

Fixed T is timed two ways: the multi-step forward `model(x, T)` in plain batches and the stepwise
engine at fixed T; the faster at T is the "best fixed T", the yardstick of every speedup, and the
reachable bound t(T) / [t(1) + (avg T - 1) t(later step)] takes t(1), t(later step) and t(T)
from that same path. The early-exit methods run on the engine with continuous batching.

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

from seenn.common.runtime import cpu_model, inference_precision
from seenn.methods import engine
from seenn.methods.catalog import ANN, Method, fixed_label, multistep_label
from seenn.methods.exits import ExitAt

log = logging.getLogger("seenn")


def time_rounds(methods: dict[str, Callable[[], object]], warmup: int, repetitions: int,
                device: torch.device | None = None):
    """Run every method `warmup` untimed rounds, then `repetitions` timed rounds, round-robin.

    Returns wall-clock seconds and process CPU seconds per call of each method. On CUDA the
    wall-clock time is read from CUDA events recorded around the call (the clock stops when the
    GPU has finished). The CPU time leaves out the time this process waited for a core, so it is
    steadier than the wall-clock time when other jobs share the machine (with one torch thread
    it is the compute time)."""
    cuda = device is not None and device.type == "cuda"
    for _ in range(warmup):
        for fn in methods.values():
            fn()
    wall: dict[str, list[float]] = {name: [] for name in methods}
    cpu: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repetitions):
        for name, fn in methods.items():
            c0, t0 = time.process_time(), time.perf_counter()
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                wall[name].append(start.elapsed_time(end) / 1e3)
            else:
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


def environment(threads: int, compiled: bool, device: torch.device, precision: str = "fp32",
                channels_last: bool = False) -> dict:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"device": str(device), "gpu": gpu, "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": threads,
            "torch": torch.__version__, "fused_lif": compiled, "precision": precision, "channels_last": channels_last,
            "load_average_1min_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def fixed_paths(T: int) -> list[Method]:
    """The multi-step forward at T = 1 and at T: with the engine's fixed T = 1..T, the two ways
    fixed T is timed (the faster at T is the best fixed T)."""
    return [Method(multistep_label(t), "multistep", t) for t in sorted({1, T})]


def method_runs(model, ann, x: torch.Tensor, batch_size: int, methods: list[Method],
                policy: engine.Policy | None, cfg: dict | None = None) -> dict[str, Callable[[], list]]:
    """One callable per method of `methods.engine_methods`, each running all of `x` once and
    returning the engine results. The SNN methods run on the engine over `batch_size` slots (for
    fixed T it is the same as plain batches: every sample leaves at T), each method's Engine built
    once, so its compiled step or captured graph is reused round after round (`cfg`: the engine
    section, for sync_every, compile_step, cuda_graph); the multi-step forward (`fixed_paths`)
    and the ANN run plain batches and return their outputs [T, B, K]."""
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
        elif m.kind == "multistep":  # the merged forward of every timestep, plain batches
            runs[m.label] = lambda T=m.T: [model(x[i : i + batch_size], T) for i in range(0, x.shape[0], batch_size)]
        else:
            runs[m.label] = lambda: [ann(x[i : i + batch_size], 1) for i in range(0, x.shape[0], batch_size)]
    return runs


def measure(model, ann, x: torch.Tensor, y: torch.Tensor, T: int, methods: list[Method], cfg: dict,
            policy: engine.Policy | None, device: torch.device) -> list[dict]:
    """Rows of the latency table: every method and both fixed-T paths (`fixed_paths`) at every
    batch size, in `cfg["precision"]`; `speedup_vs_fixed_T` is over the best fixed T (`best_fixed`)."""
    methods = methods + [m for m in fixed_paths(T) if m.label not in {k.label for k in methods}]
    rows = []
    for batch_size, n in zip(cfg["batch_sizes"], cfg["latency_samples"]):
        n = x.shape[0] if n == 0 else min(n, x.shape[0])
        runs = method_runs(model, ann, x[:n].to(device), batch_size, methods, policy, cfg)
        log.info("timing %d methods at batch size %d on %d samples in %s (%d warm-up + %d timed rounds)",
                 len(runs), batch_size, n, cfg["precision"], cfg["warmup"], cfg["repetitions"])
        with torch.no_grad(), inference_precision(cfg["precision"], device):
            outcomes = {name: fn() for name, fn in runs.items()}  # also the first warm-up
            times, cpu = time_rounds(runs, cfg["warmup"] - 1, cfg["repetitions"], device)
        best = best_fixed(times, T)
        for name, ts in times.items():
            med, med_cpu = statistics.median(ts), statistics.median(cpu[name])
            row = {"method": name, "batch_size": batch_size, "samples": n, "median_s": med, "min_s": min(ts),
                   "max_s": max(ts), "seconds_per_sample": med / n, "samples_per_second": n / med,
                   "median_cpu_s": med_cpu, "repetitions": len(ts), "avg_timesteps": None, "accuracy": None,
                   "best_fixed_T": best, "speedup_vs_fixed_T": paired_ratio(times[best], ts),
                   "cpu_speedup_vs_fixed_T": paired_ratio(cpu[best], cpu[name]), "ideal_speedup": None,
                   "rounds_s": ts, "rounds_cpu_s": cpu[name]}
            row.update(outcome([] if name == ANN else outcomes[name], y[:n], T))
            rows.append(row)
    return rows


def outcome(res: list, y: torch.Tensor, T: int) -> dict:
    """Average timesteps, accuracy and the paper's ideal speedup T / avg T of one SNN method's run
    (engine results, or multi-step outputs [t, B, K]); nothing for the ANN (no result given)."""
    if not res:
        return {}
    if isinstance(res[0], engine.EngineResult):
        exit_t = torch.cat([r.exit_t for r in res])
        pred = torch.cat([r.prediction for r in res])
    else:
        pred = torch.cat([o.float().sum(0).argmax(-1).cpu() for o in res])
        exit_t = torch.full_like(pred, res[0].shape[0])
    avg = float(exit_t.double().mean())
    return {"avg_timesteps": avg, "accuracy": float((pred == y).double().mean() * 100), "ideal_speedup": T / avg}


def best_fixed(times: dict[str, list[float]], T: int) -> str:
    """The label of the faster fixed-T path at T (median wall clock): the engine's fixed T or the
    multi-step forward, whichever was timed."""
    paths = [label for label in (fixed_label(T), multistep_label(T)) if label in times]
    return min(paths, key=lambda label: statistics.median(times[label]))


def reachable_speedup(t1: list[float], tT: list[float], T: int, avg_timesteps: float) -> float:
    """The speedup over fixed T that early exit at `avg_timesteps` can reach on this machine:
    t(T) / [t(1) + (avg T - 1) * t(later step)], t(later step) = (t(T) - t(1)) / (T - 1), from the
    same rounds' timings of fixed T = 1 and fixed T (median of the per-round bounds). The stem and
    input work run once per sample, so it is below the paper's ideal T / avg T whenever t(1) costs
    more than a later step."""
    if T == 1:
        return 1.0
    return statistics.median(b / (a + (avg_timesteps - 1) * (b - a) / (T - 1)) for a, b in zip(t1, tT))


def path_labels(label: str, T: int) -> tuple[str, str]:
    """(T = 1, T) labels of the fixed-T path that `label` (fixed T at T) names."""
    multi = label == multistep_label(T)
    return (multistep_label(1), label) if multi else (fixed_label(1), label)


def summarize(rows: list[dict], T: int) -> list[dict]:
    """Per batch size: the best fixed T (the faster of the engine's fixed T and the multi-step
    forward, when both were timed); SEENN speedups over it against the ideal T / average
    timesteps and the reachable bound (`reachable_speedup`, with t(1) and t(T) from the same path)
    and the fraction of that bound each reaches; the same on the engine's own fixed-T rows
    (`engine_*`: the engine against itself); fixed T over fixed T = 1; and the cost of one SNN
    timestep relative to one ANN forward (T = 1 on the best path, and on the engine; the marginal
    cost of a later timestep, (t(T) - t(1)) / (T - 1)). Ratios are paired within rounds, on
    wall-clock and on CPU time; `fastest_speedup` compares the fastest rounds (contention only
    ever slows a round down, so the minimum is the least disturbed figure)."""
    out = []
    not_early = {ANN} | {fixed_label(t) for t in range(1, T + 1)} | {multistep_label(t) for t in range(1, T + 1)}
    early_exit = [r["method"] for r in rows if r["method"] not in not_early]
    for bs in sorted({r["batch_size"] for r in rows}):
        by = {r["method"]: r for r in rows if r["batch_size"] == bs}
        best = best_fixed({m: by[m]["rounds_s"] for m in (fixed_label(T), multistep_label(T)) if m in by}, T)
        one, full = path_labels(best, T)
        entry = {"batch_size": bs, "best_fixed_T": best,
                 "best_fixed_path": "multi-step" if best == multistep_label(T) else "engine",
                 "best_fixed_t1_ms": by[one]["seconds_per_sample"] * 1e3, "best_fixed_tT_ms": by[full]["seconds_per_sample"] * 1e3}
        for clock, key in (("", "rounds_s"), ("cpu_", "rounds_cpu_s")):
            ann, t1, tT = (by[m][key] for m in (ANN, one, full))
            entry[f"{clock}snn_t1_over_ann"] = paired_ratio(t1, ann)
            entry[f"{clock}engine_t1_over_ann"] = paired_ratio(by[fixed_label(1)][key], ann)
            if T > 1:
                entry[f"{clock}snn_later_timestep_over_ann"] = paired_ratio([(b - a) / (T - 1) for a, b in zip(t1, tT)], ann)
        t1, tT = by[one]["rounds_s"], by[full]["rounds_s"]
        e1, eT = by[fixed_label(1)]["rounds_s"], by[fixed_label(T)]["rounds_s"]
        entry["fixed_T_over_T1"] = paired_ratio(tT, t1)
        early = {}
        for name in (n for n in early_exit if n in by):
            r = by[name]
            reach, e_reach = (reachable_speedup(a, b, T, r["avg_timesteps"]) for a, b in ((t1, tT), (e1, eT)))
            e_speed = paired_ratio(eT, r["rounds_s"])
            early[name] = {"speedup": r["speedup_vs_fixed_T"], "cpu_speedup": r["cpu_speedup_vs_fixed_T"],
                           "fastest_speedup": by[full]["min_s"] / r["min_s"], "ideal": r["ideal_speedup"],
                           "reachable": reach, "of_reachable": r["speedup_vs_fixed_T"] / reach,
                           "fraction_of_ideal": r["speedup_vs_fixed_T"] / r["ideal_speedup"],
                           "cpu_fraction_of_ideal": r["cpu_speedup_vs_fixed_T"] / r["ideal_speedup"],
                           "engine_speedup": e_speed, "engine_reachable": e_reach, "engine_of_reachable": e_speed / e_reach}
        entry["early_exit"] = early
        out.append(entry)
    return out
