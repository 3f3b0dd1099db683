"""Early-exit engine on the trained SNN: measured speedup of SEENN-I and SEENN-II over fixed T
against the ideal T / average timesteps, the cost of one SNN timestep relative to one ANN
forward of the same architecture, and fixed T on the stepwise engine vs the merged multi-step
path. Uses the default pipeline's outputs (run `snakemake --cores 2` first). Prints figures;
asserts nothing about time. Wall-clock medians; process CPU time beside them (steadier when
other jobs share the cores).

    python benchmarks/bench_engine.py                          # batch 256, 1 thread, fused LIF
    python benchmarks/bench_engine.py --batch-size 1 --samples 100 --no-compile

The SNN methods run on the engine with continuous batching (the batch is refilled as samples
leave), as in the latency stage; `--lockstep` adds SEENN-I rows run as separate batches whose
stragglers finish alone, to show what continuous batching saves.

SEENN-II: the trained main-beta policy (`results/seenn2/policy.pt`, on the fine-tuned SNN it was
trained for, the default `--results`) runs first, then each sample stops at its u. Without a
policy file (or with `--stand-in`) a stand-in stops every sample at its SEENN-I exit timestep,
computed beforehand from the saved logits: same exit distribution, no policy network cost, so
it measures the engine's policy path itself.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from seenn.common.artifacts import load_logits  # noqa: E402
from seenn.common.io import read_json  # noqa: E402
from seenn.data.files import load_split  # noqa: E402
from seenn.data.spec import to_input  # noqa: E402
from seenn.loops.predict import load_snn  # noqa: E402
from seenn.methods import engine  # noqa: E402
from seenn.methods.catalog import engine_methods  # noqa: E402
from seenn.methods.exits import ExitAt, exit_scores, seenn1_exit  # noqa: E402
from seenn.methods.latency import keep_freed_memory, method_runs, paired_ratio, time_rounds  # noqa: E402
from seenn.models import ann_twin  # noqa: E402
from seenn.snn.kernels import compile_available, set_fused  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=str(ROOT / "results/finetuned"), help="SNN directory (snn.pt, seenn1.json, logits)")
    ap.add_argument("--policy", default=str(ROOT / "results/seenn2/policy.pt"), help="SEENN-II policy for that SNN")
    ap.add_argument("--stand-in", action="store_true", help="SEENN-II stand-in (u = SEENN-I exits) instead of the policy")
    ap.add_argument("--test", default=str(ROOT / "data/prepared/test.pt"))
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--samples", type=int, default=1000, help="first N test samples (0: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repetitions", type=int, default=7)
    ap.add_argument("--no-compile", action="store_true", help="plain PyTorch LIF instead of the fused one")
    ap.add_argument("--no-multistep", action="store_true", help="skip the merged multi-step fixed-T rows")
    ap.add_argument("--lockstep", action="store_true", help="add SEENN-I rows without continuous batching")
    ap.add_argument("--malloc-default", action="store_true",
                    help="leave glibc malloc as it is (default: keep freed memory, as the latency stage does)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    kept = False if args.malloc_default else keep_freed_memory()
    res_dir = Path(args.results)
    spec, x, y = load_split(args.test)
    n = x.shape[0] if args.samples == 0 else min(args.samples, x.shape[0])
    model, ck = load_snn(res_dir / "snn.pt", spec)
    model.eval()
    ann = ann_twin(model)
    if not args.no_compile:
        set_fused(model, True)
    T = ck["timesteps"]
    seenn1 = read_json(res_dir / "seenn1.json")
    z, _ = load_logits(res_dir / "logits_test.pt")
    xin = to_input(spec, x[:n])
    bs = args.batch_size
    batches = [xin[i : i + bs] for i in range(0, n, bs)]

    score, r = next(iter(seenn1["scores"].items()))
    if args.stand_in or not Path(args.policy).exists():
        runs = method_runs(model, ann, xin, bs, engine_methods(T, seenn1, False), None)
        u_all = seenn1_exit(exit_scores(z[:n], score), r["alpha"])
        runs["SEENN-II (stand-in: u = SEENN-I exits, no policy net)"] = lambda: [
            engine.run(model, xin, T, ExitAt(u_all), batch_size=bs)]
    else:
        policy = engine.load_policy(args.policy, spec, torch.device("cpu"))
        runs = method_runs(model, ann, xin, bs, engine_methods(T, seenn1, True), policy)
    if args.lockstep:
        for sc, rr in seenn1["scores"].items():
            runs[f"SEENN-I ({sc}), lockstep batches"] = lambda sc=sc, a=rr["alpha"]: [
                engine.run_seenn1(model, xb, T, a, sc) for xb in batches]
    if not args.no_multistep:
        for t in (1, T):
            runs[f"Fixed T={t}, merged multi-step path"] = lambda t=t: [model(xb, t) for xb in batches]

    with torch.no_grad():
        outcomes = {name: fn() for name, fn in runs.items()}
        wall, cpu = time_rounds(runs, args.warmup, args.repetitions)
    fixed = f"Fixed T={T}"
    print(f"engine on {n} test samples, batch {args.batch_size}, {args.threads} thread(s), fused LIF "
          f"{'on' if (not args.no_compile and compile_available()) else 'off'}, malloc keeps freed memory: {kept}, "
          f"torch {torch.__version__}; "
          f"median of {args.repetitions} rounds")
    print(f"{'method':56s} {'ms/sample':>9s} {'cpu ms/s.':>9s} {'avg T':>6s} {'speedup':>8s} {'cpu sp.':>8s} {'ideal':>6s}  "
          f"{'% of ideal (wall / cpu)':>24s}")
    for name in runs:
        res = outcomes[name]
        avg_t = ideal = None
        if res and isinstance(res[0], engine.EngineResult):
            avg_t = float(torch.cat([q.exit_t for q in res]).double().mean())
            ideal = T / avg_t
        sp, csp = paired_ratio(wall[fixed], wall[name]), paired_ratio(cpu[fixed], cpu[name])
        frac = f"{100 * sp / ideal:5.0f} % / {100 * csp / ideal:3.0f} %" if ideal and name.startswith("SEENN") else ""
        print(f"{name:56s} {statistics.median(wall[name]) / n * 1e3:9.3f} {statistics.median(cpu[name]) / n * 1e3:9.3f} "
              f"{avg_t if avg_t else float('nan'):6.3f} {sp:8.2f} {csp:8.2f} {ideal if ideal else float('nan'):6.2f}  {frac:>24s}")
    ann_name = "ANN (same architecture)"
    t1 = "Fixed T=1"
    later = [(b - a) / (T - 1) for a, b in zip(wall[t1], wall[fixed])] if T > 1 else None
    later_cpu = [(b - a) / (T - 1) for a, b in zip(cpu[t1], cpu[fixed])] if T > 1 else None
    print(f"one SNN timestep / one ANN forward: T=1 {paired_ratio(wall[t1], wall[ann_name]):.2f}x "
          f"(cpu {paired_ratio(cpu[t1], cpu[ann_name]):.2f}x)"
          + (f"; a later timestep {paired_ratio(later, wall[ann_name]):.2f}x (cpu {paired_ratio(later_cpu, cpu[ann_name]):.2f}x)"
             if later else ""))
    if not args.no_multistep:
        for t in (1, T):
            print(f"fixed T={t}: merged multi-step path / stepwise engine "
                  f"{paired_ratio(wall[f'Fixed T={t}, merged multi-step path'], wall[f'Fixed T={t}']):.2f}x")


if __name__ == "__main__":
    main()
