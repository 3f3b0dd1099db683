"""Peak memory of training and of evaluation, on the default model and data.

Each case runs in a fresh Python process: after one untimed run of the work (which also
compiles the fused LIF), a thread samples the resident set size (RSS, /proc/self/statm) every
0.2 ms during a second run; the figure is the highest sample minus the RSS just before (imports,
model and data already loaded). glibc is told to return every large block to the OS on free,
so RSS follows the live tensors rather than what the allocator keeps. Cases:
one training step (forward + backward + SGD step, multi-step path, plain and fused LIF), and
evaluation at the evaluate stage's batch (merged multi-step path) and on the stepwise
early-exit engine (fixed T and SEENN-I). Prints figures; asserts nothing.

    python benchmarks/bench_memory.py
    python benchmarks/bench_memory.py --train-batch 64 --eval-batch 250 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASE = r"""
import json, os, sys, threading, time, torch
sys.path.insert(0, {src!r})
from seenn.common.io import read_json
from seenn.data.files import load_split
from seenn.data.spec import to_input
from seenn.loops.predict import load_snn
from seenn.methods import engine
from seenn.snn.kernels import set_fused
from seenn.snn.losses import snn_loss
torch.set_num_threads({threads})
case, batch = {case!r}, {batch}
spec, x, y = load_split({test!r})
model, ck = load_snn({model!r}, spec)
T = ck["timesteps"]
xb, yb = to_input(spec, x[:batch]), y[:batch]
if case.endswith("fused"):
    set_fused(model, True)
def work():
    if case.startswith("train"):
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        out = model(xb, T)
        snn_loss("tet", out, yb, 1e-3, 1.0).backward()
        opt.step()
    elif case == "eval_multistep":
        model.eval()
        with torch.no_grad():
            model(xb, T)
    elif case == "eval_engine_fixed":
        engine.run_fixed(model.eval(), xb, T)
    elif case == "eval_engine_seenn1":
        r = next(iter(read_json({seenn1!r})["scores"].values()))
        engine.run_seenn1(model.eval(), xb, T, r["alpha"], next(iter(read_json({seenn1!r})["scores"])))
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * page
work()  # warm-up (compiles the fused LIF: the compiler's own memory is not the neuron's)
peak, done = [0], threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.0002)
before = rss()
th = threading.Thread(target=sample)
th.start()
work()
done.set()
th.join()
print(json.dumps({{"before_mb": before / 2**20, "peak_rise_mb": (max(peak[0], rss()) - before) / 2**20}}))
"""


def run_case(case: str, batch: int, threads: int, results: Path, test: Path) -> dict:
    code = CASE.format(src=str(ROOT / "src"), threads=threads, case=case, batch=batch, test=str(test),
                       model=str(results / "snn.pt"), seenn1=str(results / "seenn1.json"))
    # every large block straight from / back to the OS, so RSS follows live tensor memory
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=str(ROOT / "results/direct"))
    ap.add_argument("--test", default=str(ROOT / "data/prepared/test.pt"))
    ap.add_argument("--train-batch", type=int, default=64)
    ap.add_argument("--eval-batch", type=int, default=250)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    cases = [("train_plain", args.train_batch), ("train_fused", args.train_batch),
             ("eval_multistep", args.eval_batch), ("eval_engine_fixed", args.eval_batch),
             ("eval_engine_seenn1", args.eval_batch)]
    print(f"peak RSS rise during the work (MB, sampled), {args.threads} thread(s)")
    for case, batch in cases:
        r = run_case(case, batch, args.threads, Path(args.results), Path(args.test))
        if "error" in r:
            print(f"{case:22s} batch {batch:4d}: failed: {r['error']}")
        else:
            print(f"{case:22s} batch {batch:4d}: {r['peak_rise_mb']:8.1f} MB (process before: {r['before_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
