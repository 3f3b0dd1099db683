"""A prepared GPU check: no dataset (generated inputs of the real shapes), each section under its
own time limits, the whole under 4 minutes on one GPU with the default rows; prints one table.

Sections:
- train: per paper row (config/paper/<row>.yaml, `--rows`; default the two target rows, `--rows
  all` every row that trains an SNN), its training step as the stage runs it (the overlay's T,
  per-GPU batch, amp, train.compile, train.tf32, deterministic algorithms): step ms (warm-up and
  compilation under a limit of their own), data ms (a batch through the data path), achieved
  TFLOP/s and its share of the bf16 matmul rate measured first, peak memory, projected hours,
  and the targets beside the rows (ResNet-19 CIFAR-10 >= 35 % of the matmul rate; resnet20 at
  batch 64 <= 10 ms per step; data <= 5 % of a step);
- determinism: a small network trained twice with the compiled bf16 step, weights compared byte
  for byte;
- lif: the fused LIF (`seenn.snn.kernels`) against SpikingJelly's `LIFNode` on the same input
  (spikes compared, fwd+bwd time);
- engine: the early-exit engine against the best fixed-T path (multi-step forward or engine) at
  batch 1 to 1024 in fp32, tf32 and bf16, exits driven by two fixed exit histograms (the paper's
  AET 1.09 at T = 4, and a heavier 1.50: untrained weights on generated inputs say nothing about
  exits), with the reachable bound, the fraction of it reached, the targets beside each row, and
  a check that the engine's exits equal the post-hoc rule (`section_engine`); its limit includes
  warm-up and CUDA graph capture.
Needs only torch and the project (PYTHONPATH=src); SpikingJelly is taken from
benchmarks/wheels/*.whl (pure-Python wheels, imported from the zip) when it is not installed.

    PYTHONPATH=src python benchmarks/gpu_check.py                 # on the GPU (device cuda)
    PYTHONPATH=src python benchmarks/gpu_check.py --rows all      # every paper row (more than 4 minutes)
    PYTHONPATH=src python benchmarks/gpu_check.py --quick --device cpu   # a minute: that it works
    ... --json out.json                                          # the rows as JSON too
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import glob
import json
import math
import os
import signal
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
if "--quick" in sys.argv:  # no compiled fused LIF in the quick check (the training rows compile a narrow network)
    os.environ.setdefault("SEENN_NO_COMPILE", "1")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, as `seenn run` sets it

from seenn.common.runtime import set_tf32  # noqa: E402
from seenn.data.registry import get_spec  # noqa: E402
from seenn.data.spec import to_input  # noqa: E402
from seenn.methods.engine import Engine  # noqa: E402
from seenn.methods.exits import ExitAt, FixedT  # noqa: E402
from seenn.models import build_snn  # noqa: E402
from seenn.snn.kernels import compile_available, fused_lif_multistep, set_fused  # noqa: E402
from seenn.snn.neurons import Triangle, lif_multistep  # noqa: E402

NEURON = {"decay": 0.5, "threshold": 1.0, "surrogate": "triangle", "surrogate_width": 1.0}
# the paper's ResNet-19 (Table 6) for the configurable family; a named architecture ignores these
RESNET19 = {"stem_channels": 128, "widths": [128, 256, 512], "blocks": [3, 3, 2], "sew_connect": "add"}
NARROW = {"stem_channels": 8, "widths": [8, 16], "blocks": [1, 1], "sew_connect": "add"}
# dataset of each architecture's paper row (input shape, classes); unknown names: CIFAR-10
ARCH_DATA = {"resnet34": "imagenet", "sew_resnet34": "imagenet", "vggsnn": "cifar10dvs", "resnet20_authors": "cifar100"}
FALLBACK_SHAPES = {"imagenet": ((3, 224, 224), 1000, False), "cifar10": ((3, 32, 32), 10, False),
                   "cifar100": ((3, 32, 32), 100, False), "cifar10dvs": ((10, 2, 48, 48), 10, True)}
# exit histograms at T = 4: the paper's (mean 1.09: SEENN-I, ResNet-19, CIFAR-10) and a heavier one (mean 1.50)
EXIT_HISTOGRAMS = {"paper": (0.94, 0.04, 0.01, 0.01), "heavy": (0.70, 0.15, 0.10, 0.05)}
EXIT_HISTOGRAM = EXIT_HISTOGRAMS["paper"]
ENGINE_BATCHES = (1, 16, 64, 256, 1024)
# targets printed beside the engine rows (issue: early exit that pays on the GPU), not asserted
TARGET_OF_BOUND, TARGET_BATCH1_SPEEDUP, TARGET_CPU_T1_OVER_ANN = 0.9, 3.0, 1.1


class SectionTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise SectionTimeout in the main thread once `seconds` have passed (SIGALRM)."""
    def _alarm(signum, frame):
        raise SectionTimeout(f"over its {seconds:.0f} s limit")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def data_shape(dataset: str, quick: bool) -> tuple[tuple[int, ...], int, bool, object]:
    """(per-sample input shape, classes, event, spec or None) of a dataset; quick: small images."""
    try:
        spec = get_spec(dataset)
        shape, classes, event = tuple(spec.input_shape), spec.num_classes, spec.event
    except Exception:  # a dataset not (yet) registered: its known shape, generated as float inputs
        spec = None
        shape, classes, event = FALLBACK_SHAPES[dataset]
    if quick and not event and shape[-1] > 32:
        shape, spec = (shape[0], 32, 32), None
    return shape, classes, event, spec


def generated_batch(dataset: str, batch: int, quick: bool, gen: torch.Generator):
    """A batch of generated inputs of the dataset's shape (uint8 images through the project's normalization)."""
    shape, classes, event, spec = data_shape(dataset, quick)
    if event:
        x = torch.randint(0, 3, (batch, *shape), generator=gen).float()
    elif spec is not None:
        x = to_input(spec, torch.randint(0, 256, (batch, *shape), dtype=torch.uint8, generator=gen))
    else:
        x = torch.randn(batch, *shape, generator=gen)
    return x, torch.randint(0, classes, (batch,), generator=gen), shape, classes, event


def build(arch: str, quick: bool, in_channels: int, classes: int, event: bool):
    cfg = {"arch": arch, **(NARROW if quick else RESNET19)}
    return build_snn(cfg, NEURON, in_channels, classes, event=event)


# --- sections --------------------------------------------------------------------------------

PAPER = ROOT / "config" / "paper"
# the ResNet-20 target row: Table 6's resnet20 (16 / 32 / 64) on resnet19_cifar10's recipe, batch 64
TARGET_ROWS = {"resnet20": ("resnet19_cifar10", {"model": {"arch": "resnet20"}, "train": {"batch_size": 64}})}
DEFAULT_ROWS = ("resnet19_cifar10", "resnet20")  # the two targets: fit the check's 4 minutes with compilation
# printed beside the rows: (kind, bound); "of_matmul": achieved TFLOP/s over the measured matmul rate
TARGETS = {"resnet19_cifar10": ("of_matmul", 0.35), "resnet20": ("ms", 10.0)}
DATA_SHARE = 0.05  # target: producing a batch takes at most 5 % of a training step
ROW_GPUS = {"imagenet": 8}  # GPUs a row's training is planned on (per-GPU batch = train.batch_size / GPUs); else 1
WARM_LIMIT, TIMED_LIMIT = 300.0, 30.0  # seconds per row: warm-up with compilation, then the timed steps
STEPS = 20  # timed training steps per row (quick: 2)


def paper_rows() -> list[str]:
    """The paper rows the training section can run: every overlay that trains an SNN directly (the
    TEAS rows of converted SNNs train an ANN alone), and the target rows."""
    from paper_costs import row_config

    rows = []
    with contextlib.chdir(ROOT):  # the config check reads config/paper/numbers.yaml from the project root
        for p in sorted(PAPER.glob("*.yaml")):
            if p.name != "numbers.yaml" and not row_config(p)["teas"]["only"]:
                rows.append(p.stem)
    return rows + list(TARGET_ROWS)


def row_cfg(name: str) -> dict:
    """The composed, validated config of a paper row (a target row: its base row with its changes)."""
    from paper_costs import row_config

    base, changes = TARGET_ROWS.get(name, (name, {}))
    with contextlib.chdir(ROOT):
        cfg = row_config(PAPER / f"{base}.yaml")
    for section, values in changes.items():
        cfg[section].update(values)
    return cfg


def matmul_tflops(device, quick: bool) -> float:
    """The device's bf16 rate on a large square matmul (TFLOP/s): the yardstick of the rows."""
    n, reps = (256, 3) if quick else (8192, 20)
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12


def data_ms(cfg: dict, spec, shape, batch: int, quick: bool, device: torch.device) -> float:
    """ms to produce one training batch on `device` through the project's data path as the row's
    training stage takes it (loops.synthetic.training_batches: loops.fit.ShuffledBatches, the
    row's augmentation on the device or in `loader.workers`, per-sample generators), on generated
    samples of `shape`; the first batch (worker start, the split's move to the device) is not counted."""
    from seenn.loops.synthetic import PHOTO, training_batches

    batches = 2 if quick else 4
    loader = {**cfg["loader"], **({"workers": 0} if quick else {})}
    resize = shape[-1] + 4 if quick else cfg["data"]["resize_size"]
    it = training_batches(spec, batch, device, cfg["train"]["augment"], loader=loader,
                          batches=batches, image_size=shape[-1], resize_size=resize, photo=(40, 48) if quick else PHOTO)
    try:
        next(it)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(batches - 1):
            next(it)
        sync(device)
        return (time.perf_counter() - t0) / (batches - 1) * 1e3
    finally:
        it.close()


@contextlib.contextmanager
def run_settings(deterministic: bool, tf32: bool):
    """A training stage's switches (the row's `deterministic` and `train.tf32`), restored after."""
    from seenn.common.runtime import tf32_enabled

    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
              torch.backends.cudnn.deterministic)
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = not deterministic, deterministic
    try:
        with tf32_enabled(tf32):
            yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[1:3]


def section_train(device, quick, rows, names=None, gpus=None, compile_mode: str = "row") -> None:
    """Per paper row (`names`; default DEFAULT_ROWS), as its training stage runs: the overlay's T,
    per-GPU batch, precision, compile and TF32 settings, deterministic algorithms as configured.
    Warm-up and compilation have a limit of their own (WARM_LIMIT), the timed steps theirs
    (TIMED_LIMIT). Prints step ms, data ms (one batch through the data path), achieved TFLOP/s
    (3 forward passes per step, 2 FLOPs per MAC of seenn.snn.ops.snn_macs) and its share of the
    matmul rate measured here, peak memory, projected hours of the row's DAG (train_snn's steps at
    this step time, scaled by benchmarks/paper_costs.py's FLOPs of every stage over train_snn's),
    and the targets.
    `compile_mode`: row (the overlay's train.compile), on or off. Quick: each row's network is the
    narrow ResNet at 2 steps of batch 2, images of at most 32 px."""
    from dataclasses import replace

    from paper_costs import POOL, row_costs

    from seenn.loops.fit import ForwardLoss, grad_scaler, train_one_epoch
    from seenn.snn.losses import snn_criterion
    from seenn.snn.ops import snn_macs

    peak = matmul_tflops(device, quick)
    rows.append({"section": "train", "what": "bf16 matmul " + ("256" if quick else "8192") + "^3 (the yardstick)",
                 "tflops": peak, "ok": peak > 0, "note": "TFLOP/s of the device on a large bf16 matmul"})
    for name in names or DEFAULT_ROWS:
        row = {"section": "train", "what": name}
        try:
            cfg = row_cfg(name)
            t, spec = cfg["train"], get_spec(cfg["data"]["name"])
            n_gpus = gpus or ROW_GPUS.get(spec.name, 1)
            batch, T = (2, 2) if quick else (t["batch_size"] // n_gpus, t["timesteps"])
            shape = tuple(spec.input_shape)
            if spec.name == "imagenet":
                shape = (3, cfg["data"]["image_size"], cfg["data"]["image_size"])
            model_cfg = cfg["model"]
            if quick:
                shape = (T, *shape[1:-2], 16, 16) if spec.event else (shape[0], *(min(s, 32) for s in shape[1:]))
                model_cfg = {"arch": "resnet", **NARROW}
            spec = replace(spec, input_shape=shape)
            amp, compile = cfg["amp"], t["compile"] if compile_mode == "row" else compile_mode == "on"
            row.update(what=f"{name} ({spec.name}) amp={amp} compile={compile} tf32={t['tf32']}" +
                       ("" if compile_mode == "row" else f" (--compile {compile_mode})"), batch=batch, T=T,
                       gpus=n_gpus)
            gen = torch.Generator().manual_seed(0)
            row["data_ms"] = data_ms(cfg, spec, shape, batch, quick, device)
            x, y = generated_batch(spec.name, batch, quick, gen)[:2] if not quick else _quick_batch(spec, batch, gen)
            torch.manual_seed(0)
            torch._dynamo.reset()  # one row's compiled graphs never count against the next one's recompile limit
            model = build_snn(model_cfg, cfg["neuron"], shape[-3], spec.num_classes, event=spec.event,
                              image_size=shape[-1]).to(device)
            opt = torch.optim.SGD(model.parameters(), lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"])
            crit = snn_criterion(t["loss"], t["tet_lambda"], t["tet_phi"])
            scaler = grad_scaler(device, amp)
            data = [(x.to(device), y.to(device))]
            reset_peak(device)
            with run_settings(cfg["deterministic"], t["tf32"]):
                step = ForwardLoss(model, crit, T, device, amp, compile)
                with time_limit(WARM_LIMIT if not quick else 240.0):  # compilation and warm-up: a limit of their own
                    w0 = time.perf_counter()
                    train_one_epoch(model, crit, opt, data * 2, device, timesteps=T, amp=amp, scaler=scaler, step=step)
                    sync(device)
                    warm = time.perf_counter() - w0
                steps = 2 if quick else STEPS
                with time_limit(TIMED_LIMIT if not quick else 60.0):
                    t0 = time.perf_counter()
                    m = train_one_epoch(model, crit, opt, data * steps, device, timesteps=T, amp=amp, scaler=scaler,
                                        step=step)
                    sync(device)
                    ms = (time.perf_counter() - t0) / steps * 1e3
            macs = snn_macs(model.cpu(), shape)
            flops = 3 * 2 * (macs["fixed"] + T * macs["per_timestep"]) * batch
            tflops = flops / (ms / 1e3) / 1e12
            costs = row_costs(cfg)
            n_train = POOL[spec.name][0] - (0 if cfg["data"]["protocol"] == "authors" else cfg["data"]["val_size"])
            train_h = t["epochs"] * math.ceil(n_train / t["batch_size"]) * ms / 1e3 / 3600
            # the whole DAG (every training stage at its epochs, and the evaluations): paper_costs'
            # FLOPs at the rate train_snn's step achieves here
            dag_h = train_h * costs["total_flops"] / costs["flops"]["train_snn"]
            row.update(ms=ms, tflops=tflops, of_matmul=tflops / peak, peak_mb=peak_mb(device),
                       hours=dag_h, ok=math.isfinite(m["train_loss"]),
                       target=_targets(name, ms, tflops / peak, row["data_ms"]),
                       note=(f"warm-up {warm:.1f} s; hours: the DAG on {n_gpus} GPU(s) (paper_costs FLOPs at this "
                             f"step's rate), train_snn alone {train_h:.1f} h"
                             + ("; quick: narrow network" if quick else "") + f"; loss {m['train_loss']:.3f}"))
            del model, opt, step
        except Exception as exc:  # noqa: BLE001 - a failed row is reported, the check goes on
            row.update(ok=False, note=_short(exc))
        rows.append(row)


def _quick_batch(spec, batch: int, gen: torch.Generator):
    """A batch of the (shrunk) quick shape through the project's normalization."""
    if spec.event:
        return torch.randint(0, 3, (batch, *spec.input_shape), generator=gen).float(), \
            torch.randint(0, spec.num_classes, (batch,), generator=gen)
    x = to_input(spec, torch.randint(0, 256, (batch, *spec.input_shape), dtype=torch.uint8, generator=gen))
    return x, torch.randint(0, spec.num_classes, (batch,), generator=gen)


def _targets(name: str, ms: float, of_matmul: float, data: float) -> str:
    """The targets beside a row: data at most DATA_SHARE of a step; the row's own (TARGETS)."""
    out = [f"data {data / ms:.1%} of step (<= {DATA_SHARE:.0%}: {'met' if data <= DATA_SHARE * ms else 'MISSED'})"]
    kind, bound = TARGETS.get(name, (None, None))
    if kind == "of_matmul":
        out.append(f"{of_matmul:.1%} of matmul (>= {bound:.0%}: {'met' if of_matmul >= bound else 'MISSED'})")
    elif kind == "ms":
        out.append(f"{ms:.1f} ms/step (<= {bound:g} ms: {'met' if ms <= bound else 'MISSED'})")
    return "; ".join(out)


def section_determinism(device, quick, rows) -> None:
    """A small network trained twice for a few steps with the compiled bf16 step from the same
    seed, deterministic algorithms on: the weights compared byte for byte. On the GPU each run
    compiles afresh; quick (CPU), the second run reuses the first one's compiled step (the same
    module, its initial weights loaded back), so the check compiles once."""
    from seenn.loops.fit import ForwardLoss, train_one_epoch
    from seenn.snn.losses import mean_loss

    steps, batch, T = (3, 4, 2) if quick else (10, 64, 4)

    made: dict = {}

    def train():
        gen = torch.Generator().manual_seed(0)
        x, y, shape, classes, event = generated_batch("cifar10", batch * steps, quick, gen)
        torch.manual_seed(0)
        fresh = build("resnet", True, shape[-3], classes, event).to(device)
        if quick and made:  # the same module and compiled step, its initial weights back
            model, step = made["model"], made["step"]
            model.load_state_dict(fresh.state_dict())
        else:
            torch._dynamo.reset()
            model = fresh
            step = made["step"] = ForwardLoss(model, mean_loss, T, device, "bf16", compile=True)
            made["model"] = model
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        data = [(x[i : i + batch].to(device), y[i : i + batch].to(device)) for i in range(0, batch * steps, batch)]
        train_one_epoch(model, mean_loss, opt, data, device, timesteps=T, amp="bf16", step=step)
        sync(device)
        return b"".join(v.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()
                        for v in model.state_dict().values())

    row = {"section": "determinism", "what": "narrow ResNet, compiled bf16 step, same seed twice", "batch": batch, "T": T}
    try:
        with run_settings(True, False):
            t0 = time.perf_counter()
            a, b = train(), train()
        same = a == b
        row.update(ms=(time.perf_counter() - t0) * 1e3, ok=same,
                   note=f"{steps} steps; weights {'byte-identical' if same else 'DIFFER'} ({len(a)} bytes)")
    except Exception as exc:  # noqa: BLE001
        row.update(ok=False, note=_short(exc))
    rows.append(row)


def _load_spikingjelly():
    try:
        from spikingjelly.activation_based import functional, neuron, surrogate
    except ImportError:
        sys.path[:0] = sorted(glob.glob(str(ROOT / "benchmarks" / "wheels" / "*.whl")))
        from spikingjelly.activation_based import functional, neuron, surrogate
    return functional, neuron, surrogate


def section_lif(device, quick, rows) -> None:
    """Fused LIF vs SpikingJelly's LIFNode (same neuron: u = 0.5 u + x, hard reset 0, threshold 1,
    triangle surrogate) on one input: spikes compared with the plain loop, fwd+bwd timed."""
    shape = (4, 2, 8, 8, 8) if quick else (4, 64, 128, 32, 32)
    x0 = torch.randn(shape, generator=torch.Generator().manual_seed(0)).mul(1.5).to(device)
    ref = lif_multistep(x0, 0.5, 1.0, Triangle(1.0))
    impls = {"plain LIF (PyTorch ops)": lambda x: lif_multistep(x, 0.5, 1.0, Triangle(1.0)),
             "fused LIF": lambda x: fused_lif_multistep(x, 0.5, 1.0, Triangle(1.0))}
    try:
        functional, neuron, surrogate = _load_spikingjelly()
        node = neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=0.0, detach_reset=False,
                              surrogate_function=surrogate.PiecewiseQuadratic(alpha=1.0), step_mode="m").to(device)

        def sj(x):
            functional.reset_net(node)
            return node(x)

        impls["SpikingJelly LIFNode (torch backend)"] = sj
    except Exception as exc:  # noqa: BLE001
        rows.append({"section": "lif", "what": "SpikingJelly LIFNode", "ok": False, "note": f"not loaded: {_short(exc)}"})
    reps = 2 if quick else 20
    for name, fn in impls.items():
        row = {"section": "lif", "what": name, "batch": shape[1], "T": shape[0]}
        try:
            x = x0.clone().requires_grad_(True)
            s = fn(x)
            s.sum().backward()
            mismatch = int((s.detach() != ref).sum())
            reset_peak(device)
            sync(device)
            t0 = time.perf_counter()
            for _ in range(reps):
                x.grad = None
                fn(x).sum().backward()
            sync(device)
            kind = "" if name != "fused LIF" else ("torch.compile; " if compile_available() else "plain fallback; ")
            row.update(ms=(time.perf_counter() - t0) / reps * 1e3, peak_mb=peak_mb(device), ok=mismatch == 0,
                       note=f"{kind}{mismatch} of {ref.numel()} spikes differ from the plain loop")
        except Exception as exc:  # noqa: BLE001
            row.update(ok=False, note=_short(exc))
        rows.append(row)


def histogram_exits(n: int, T: int, gen: torch.Generator, shares=EXIT_HISTOGRAM) -> torch.Tensor:
    """Exit timesteps (1-based) for n samples with the histogram's shares, in random order."""
    shares = torch.tensor(shares[:T], dtype=torch.float64)
    counts = torch.floor(shares / shares.sum() * n).long()
    counts[0] += n - int(counts.sum())
    u = torch.cat([torch.full((int(c),), t + 1) for t, c in enumerate(counts)])
    return u[torch.randperm(n, generator=gen)]


def engine_exits_match(model, x: torch.Tensor, T: int, batch: int):
    """SEENN-I (confidence) on the engine against the post-hoc rule on the multi-step path's
    logits (fp32, TF32 off): the same exit timesteps? Alpha sits between two scores at t = 2, so
    that the samples exit at several timesteps. Returns (equal, the rule, the engine's result)."""
    from seenn.methods.exits import Seenn1, exit_scores

    set_tf32(False)
    with torch.no_grad():
        z = model(x, T).float().cumsum(0).transpose(0, 1).cpu()
    s = exit_scores(z, "confidence", 1.0, "sum")[:, 1].sort().values
    mid = len(s) // 2
    rule = Seenn1("confidence", float((s[max(mid - 1, 0)] + s[mid]) / 2))
    res = Engine(model, T, rule, batch)(x)
    return torch.equal(res.exit_t, rule.posthoc(z)), rule, res


def section_engine(device, quick, rows) -> None:
    """Per precision (fp32, tf32, bf16) and batch size (1 to 1024): the multi-step forward and
    the engine at fixed T = 4 and T = 1 (the faster at T = 4 is the best fixed T), the ANN of the
    same architecture, and the engine with exits from each histogram (EXIT_HISTOGRAMS), timed as
    the latency stage times (methods/latency.time_rounds: CUDA events, an untimed warm-up round
    for compilation and graph capture); SEENN-I's speedup over the best fixed T, the reachable
    bound on that path and the fraction reached, with the targets beside them; whether the
    engine's exits equal the post-hoc rule on the same logits (fp32), and in bf16 the share of
    samples whose exit or prediction differs from fp32. On CUDA the engine's step replays as a
    CUDA graph. Quick: the same grid on a narrow network at small shapes."""
    from seenn.common.runtime import PRECISIONS, inference_precision
    from seenn.methods.latency import paired_ratio, reachable_speedup, time_rounds
    from seenn.models import ann_twin

    T = 4
    gen = torch.Generator().manual_seed(0)
    n_max = max(ENGINE_BATCHES) + 3 if quick else 4 * max(ENGINE_BATCHES)
    x, _, shape, classes, event = generated_batch("cifar10", n_max, quick, gen)
    if quick:  # tiny images: the grid runs in seconds on a CPU
        x, shape = x[..., :8, :8].contiguous(), (*shape[:-2], 8, 8)
    torch.manual_seed(0)
    model = build("resnet", quick, shape[-3], classes, event).to(device).eval()
    ann = ann_twin(model).to(device).eval()
    fused = compile_available() and not quick
    set_fused(model, fused)
    graph = device.type == "cuda"
    cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)  # engine.channels_last, timed at batch 256
    set_fused(cl_model, fused)
    what = "narrow ResNet" if quick else "ResNet-19"
    n_check = 32 if quick else 512
    same, check_rule, fp32_check = engine_exits_match(model, x[:n_check].to(device), T, 16)
    for precision in PRECISIONS:
        for batch in ENGINE_BATCHES:
            n = min(n_max, max(batch + 3, 24) if quick else max(4 * batch, 256))  # quick: a refill at least
            xb = x[:n].to(device)
            hists = {name: histogram_exits(n, T, gen, shares) for name, shares in EXIT_HISTOGRAMS.items()}
            fixed = {"multi-step T=4": lambda: [model(xb[i : i + batch], T) for i in range(0, n, batch)],
                     "multi-step T=1": lambda: [model(xb[i : i + batch], 1) for i in range(0, n, batch)],
                     "ANN": lambda: [ann(xb[i : i + batch], 1) for i in range(0, n, batch)]}
            engines = {"engine T=4": Engine(model, T, FixedT(), batch, cuda_graph=graph),
                       "engine T=1": Engine(model, 1, FixedT(), batch, cuda_graph=graph)}
            engines.update({f"SEENN-I {h}": Engine(model, T, ExitAt(u.to(device)), batch, cuda_graph=graph)
                            for h, u in hists.items()})
            runs = {**fixed, **{name: (lambda eng=eng: eng(xb)) for name, eng in engines.items()}}
            if batch == 256:  # both memory layouts: does channels_last help here?
                xcl = xb.contiguous(memory_format=torch.channels_last)
                cl_engine = Engine(cl_model, T, ExitAt(hists["paper"].to(device)), batch, cuda_graph=graph)
                runs["multi-step T=4 CL"] = lambda: [cl_model(xcl[i : i + batch], T) for i in range(0, n, batch)]
                runs["SEENN-I paper CL"] = lambda: cl_engine(xcl)
            base = {"section": "engine", "batch": batch, "T": T}
            try:
                reset_peak(device)
                with torch.no_grad(), inference_precision(precision, device):
                    wall, _ = time_rounds(runs, 1, 1 if quick else 3, device)
                    share = None
                    if precision == "bf16":
                        low = Engine(model, T, check_rule, 16)(x[:n_check].to(device))
                        share = float(((low.exit_t != fp32_check.exit_t) | (low.prediction != fp32_check.prediction))
                                      .double().mean())
                ms = {k: statistics.median(v) / n * 1e3 for k, v in wall.items()}
                best = min(("multi-step", "engine"), key=lambda p: ms[f"{p} T=4"])
                t1, tT = wall[f"{best} T=1"], wall[f"{best} T=4"]
                t1_over_ann = {p: paired_ratio(wall[f"{p} T=1"], wall["ANN"]) for p in ("multi-step", "engine")}
                fixed_note = ", ".join(f"{k} {ms[k]:.4f}" for k in ("multi-step T=4", "engine T=4", "multi-step T=1",
                                                                     "engine T=1", "ANN"))
                for h, u in hists.items():
                    name = f"SEENN-I {h}"
                    avg = float(u.double().mean())
                    speedup = paired_ratio(tT, wall[name])
                    bound = reachable_speedup(t1, tT, T, avg)
                    if batch == 1:
                        target = f"target >= {TARGET_BATCH1_SPEEDUP:.0f}x: {'met' if speedup >= TARGET_BATCH1_SPEEDUP else 'NOT met'}"
                    else:
                        target = (f"target >= {TARGET_OF_BOUND} of bound: "
                                  f"{'met' if speedup / bound >= TARGET_OF_BOUND else 'NOT met'}")
                    cpu_target = ""
                    if device.type == "cpu" and batch == 1:
                        cpu_target = (f"; SNN t(1) / ANN {t1_over_ann[best]:.2f} (engine {t1_over_ann['engine']:.2f}), "
                                      f"CPU target <= {TARGET_CPU_T1_OVER_ANN}: "
                                      f"{'met' if t1_over_ann[best] <= TARGET_CPU_T1_OVER_ANN else 'NOT met'}")
                    if f"{name} CL" in ms:
                        cpu_target += (f"; channels_last: multi-step T=4 {ms['multi-step T=4 CL']:.4f} ms (NCHW "
                                       f"{ms['multi-step T=4']:.4f}), SEENN-I {ms[name + ' CL']:.4f} ms (NCHW {ms[name]:.4f})")
                    rows.append({**base, "what": f"{what} {precision}, {h} exits (AET {avg:.2f}); ms/sample: {fixed_note}",
                                 "ms": ms[name], "samples_per_s": 1e3 / ms[name], "peak_mb": peak_mb(device), "ok": same,
                                 "note": f"{speedup:.2f}x over best fixed T ({best}); bound {bound:.2f}x; "
                                         f"{speedup / bound:.2f} of bound; {target}{cpu_target}; exits equal the rule's "
                                         f"(fp32): {same}" + (f"; bf16 vs fp32: {share:.1%} of samples differ in exit "
                                                              f"or prediction" if share is not None else "")
                                         + f"; CUDA graph {graph}, fused LIF {fused}"})
            except Exception as exc:  # noqa: BLE001
                rows.append({**base, "what": f"{what} {precision}", "ok": False, "note": _short(exc)})


def source_commit() -> str | None:
    """The checkout's commit (for the README's cost table), or SEENN_COMMIT where the tree was
    copied without its .git (a lent GPU machine); None when neither says."""
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("SEENN_COMMIT") or None


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text[:160]


def table(rows: list[dict]) -> str:
    cols = ("section", "what", "batch", "T", "ms", "data_ms", "tflops", "of_matmul", "samples_per_s", "peak_mb", "hours",
            "target", "ok", "note")
    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}"
        return str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


SECTIONS = {  # name -> (function, limit in seconds on the GPU; None: the section's rows have limits of their own)
    "train": (section_train, None),
    "determinism": (section_determinism, 120.0),
    "lif": (section_lif, 30.0),
    "engine": (section_engine, 90.0),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="tiny shapes and few steps: seconds on a CPU")
    ap.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS),
                    help=f"train section: these paper rows (config/paper/<row>.yaml; target rows: {', '.join(TARGET_ROWS)}), "
                         f"or 'all' (every paper row that trains an SNN: several minutes of compilation); default: "
                         f"{' '.join(DEFAULT_ROWS)}, the targets, within the check's 4 minutes")
    ap.add_argument("--compile", choices=("row", "on", "off"), default="row",
                    help="train section: compile each row's step as its overlay says (row), or always, or never")
    ap.add_argument("--gpus", type=int, help="train section: the GPUs each row is planned on (per-GPU batch = "
                                             "train.batch_size / GPUs); default 8 for ImageNet rows, else 1")
    args = ap.parse_args(argv)
    known = paper_rows()
    names = known if args.rows == ["all"] else args.rows
    unknown = [r for r in names if r not in known]
    if unknown:
        ap.error(f"--rows: unknown {', '.join(unknown)}; known: {', '.join(known)}, all")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # off, as `seenn run` starts a stage
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"gpu_check on {name}; torch {torch.__version__}, CUDA {torch.version.cuda}; training rows: "
          f"{', '.join(names)}{'; quick' if args.quick else ''}", flush=True)
    rows: list[dict] = []
    start = time.perf_counter()
    for sec in args.sections:
        fn, limit = SECTIONS[sec]
        t0 = time.perf_counter()
        n_before = len(rows)
        try:
            with time_limit(limit) if limit else contextlib.nullcontext():
                if sec == "train":  # each row has its limits: warm-up and compilation, then the timed steps
                    fn(device, args.quick, rows, names=names, gpus=args.gpus, compile_mode=args.compile)
                else:
                    fn(device, args.quick, rows)
        except Exception as exc:  # noqa: BLE001 - e.g. SectionTimeout: report, go on with the next section
            rows.append({"section": sec, "what": "(section stopped)", "ok": False, "note": _short(exc)})
            if not isinstance(exc, SectionTimeout):
                traceback.print_exc()
        print(f"section {sec}: {time.perf_counter() - t0:.1f} s, {len(rows) - n_before} rows", flush=True)
    print(table(rows))
    print(f"total {time.perf_counter() - start:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "torch": torch.__version__, "quick": args.quick,
                                               "commit": source_commit(), "rows": rows}, indent=2))
    return 0 if all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
