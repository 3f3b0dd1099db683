"""Which `train.compile` default trains the default config fastest on this machine: train_snn's
network, loss, batch and T (params.yaml) on the digits' shapes, a few epochs through
loops.fit.train_one_epoch, eager against compiled, with the compilation counted (a stage pays it:
a fresh inductor cache per run unless --warm-cache). Prints seconds per epoch and the projection
to the stage's epochs. `--step-variants`: the eager step with SGD's for-loop, foreach and fused
implementations and with channels_last, in ms per step (best of 3 rounds of 30 steps).

    PYTHONPATH=src python benchmarks/bench_compile.py --epochs 2
    PYTHONPATH=src python benchmarks/bench_compile.py --step-variants
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from seenn.data.registry import get_spec  # noqa: E402
from seenn.data.source import TensorSource  # noqa: E402
from seenn.loops.fit import ForwardLoss, ShuffledBatches, train_one_epoch  # noqa: E402
from seenn.models import build_snn  # noqa: E402
from seenn.snn.losses import snn_criterion  # noqa: E402


def run(cfg: dict, compile: bool, epochs: int) -> list[float]:
    """Seconds of each of `epochs` epochs (the first includes any compilation)."""
    t, spec = cfg["train"], get_spec(cfg["data"]["name"])
    n = cfg["data"]["train_size"]
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, *spec.input_shape), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, spec.num_classes, (n,), generator=gen)
    data = ShuffledBatches(TensorSource(spec, x, y, "train", "memory"), t["batch_size"], t["augment"],
                           torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    model = build_snn(cfg["model"], cfg["neuron"], spec.input_shape[-3], spec.num_classes)
    opt = torch.optim.SGD(model.parameters(), lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"])
    crit = snn_criterion(t["loss"], t["tet_lambda"], t["tet_phi"])
    device = torch.device("cpu")
    step = ForwardLoss(model, crit, t["timesteps"], device, cfg["amp"], compile)
    times = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        train_one_epoch(model, crit, opt, data, device, timesteps=t["timesteps"], amp=cfg["amp"], step=step, epoch=epoch)
        times.append(time.perf_counter() - t0)
    return times


def step_variants(cfg: dict) -> None:
    """ms per eager step of train_snn's network: SGD for-loop / foreach / fused, channels_last."""
    t, spec = cfg["train"], get_spec(cfg["data"]["name"])
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(t["batch_size"], *spec.input_shape, generator=gen)
    y = torch.randint(0, spec.num_classes, (t["batch_size"],), generator=gen)
    crit = snn_criterion(t["loss"], t["tet_lambda"], t["tet_phi"])
    variants = [("SGD for-loop (default)", {}, False), ("SGD foreach", {"foreach": True}, False),
                ("SGD fused", {"fused": True}, False), ("channels_last", {}, True)]
    for name, kw, channels_last in variants + variants[::-1]:  # both orders: drift shows as disagreement
        torch.manual_seed(0)
        model = build_snn(cfg["model"], cfg["neuron"], spec.input_shape[-3], spec.num_classes)
        xb = x
        if channels_last:
            model, xb = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"], **kw)
        train_one_epoch(model, crit, opt, [(xb, y)] * 3, torch.device("cpu"), timesteps=t["timesteps"])
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            train_one_epoch(model, crit, opt, [(xb, y)] * 30, torch.device("cpu"), timesteps=t["timesteps"])
            best = min(best, time.perf_counter() - t0)
        print(f"{name:24s} {best / 30 * 1e3:.1f} ms/step", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--config", default=str(ROOT / "params.yaml"))
    ap.add_argument("--warm-cache", action="store_true", help="keep the inductor cache (a second run of a stage)")
    ap.add_argument("--step-variants", action="store_true", help="time optimizer implementations and channels_last")
    args = ap.parse_args(argv)
    cfg = yaml.safe_load(Path(args.config).read_text())
    if args.step_variants:
        step_variants(cfg)
        return 0
    if not args.warm_cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_compile_")
    total = cfg["train"]["epochs"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; train: {cfg['model']['arch']}, batch "
          f"{cfg['train']['batch_size']}, T {cfg['train']['timesteps']}, {cfg['data']['train_size']} samples, {total} epochs")
    for compile in (False, True):
        s = run(cfg, compile, args.epochs)
        later = sum(s[1:]) / max(len(s) - 1, 1)
        print(f"compile {str(compile):5}: epochs {', '.join(f'{v:.1f}' for v in s)} s; projected train_snn "
              f"({total} epochs) {s[0] + later * (total - 1):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
