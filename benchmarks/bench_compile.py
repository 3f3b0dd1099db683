"""Which `train.compile` default trains the default config fastest on this machine: train_snn's
network, loss, batch and T (params.yaml) on the digits' shapes, a few epochs through
loops.fit.train_one_epoch, eager against compiled, with the compilation counted (a stage pays it:
a fresh inductor cache per run unless --warm-cache). Prints seconds per epoch and the projection
to the stage's epochs.

    PYTHONPATH=src python benchmarks/bench_compile.py --epochs 2
"""

from __future__ import annotations

import argparse
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--config", default=str(ROOT / "params.yaml"))
    ap.add_argument("--warm-cache", action="store_true", help="keep the inductor cache (a second run of a stage)")
    args = ap.parse_args(argv)
    cfg = yaml.safe_load(Path(args.config).read_text())
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
