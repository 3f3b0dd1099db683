"""LIF neuron, multi-step forward + backward on one tensor: this project's fused LIF against its
plain PyTorch loop, SpikingJelly's LIFNode (multi-step, torch backend) and snnTorch's Leaky.

All four run the same neuron (u = 0.5 u + x, spike where u > 1, hard reset to 0) on the same
input, and their spikes are compared with the plain loop's. SpikingJelly and snnTorch are
optional: a peer that is not installed is skipped with a message. Prints figures; asserts
nothing about time.

    python benchmarks/bench_lif.py                      # [T=4, B=32, 128, 16, 16], 1 thread
    python benchmarks/bench_lif.py --shape 4 32 128 16 16 --threads 2 --repetitions 21
    python benchmarks/bench_lif.py --small              # one inference step: plain ops vs compiled, by size

`--small` times what sets `kernels.CPU_SMALL_STEP`: one stepwise inference call of the fused
LIF (spikes only, as at T = 1, and an engine slot step that keeps its membrane) as the few
plain ops it runs on small CPU tensors and as the compiled kernel, at sizes from 4,096 to
262,144 elements (batch 1 of the default network is 1,024 to 16,384).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from seenn.methods.latency import keep_freed_memory  # noqa: E402
from seenn.snn import kernels  # noqa: E402
from seenn.snn.kernels import compile_available, fused_lif_multistep  # noqa: E402
from seenn.snn.neurons import Triangle, lif_multistep  # noqa: E402


def seenn_fused(x):
    return fused_lif_multistep(x, 0.5, 1.0, Triangle(1.0))


def seenn_plain(x):
    return lif_multistep(x, 0.5, 1.0, Triangle(1.0))


def spikingjelly_lif():
    """SpikingJelly's LIFNode set to the same neuron: decay_input=False, tau=2 gives
    H = V - V/2 + X = 0.5 V + X; hard reset to 0; triangle surrogate (PiecewiseQuadratic, alpha=1)."""
    try:
        from spikingjelly.activation_based import functional, neuron, surrogate
    except ImportError as exc:
        return None, f"SpikingJelly not installed ({exc}); `pip install spikingjelly` to compare"
    node = neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=0.0,
                          surrogate_function=surrogate.PiecewiseQuadratic(alpha=1.0), detach_reset=False, step_mode="m")

    def run(x):
        functional.reset_net(node)
        return node(x)

    return run, None


def snntorch_leaky():
    """snnTorch's Leaky set to the same neuron: beta 0.5, threshold 1, reset to zero applied in
    the same step (reset_delay=False), triangular surrogate; stepped over T as snnTorch does."""
    try:
        import snntorch
        from snntorch import surrogate
    except ImportError as exc:
        return None, f"snnTorch not installed ({exc}); `pip install snntorch` to compare"
    lif = snntorch.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero", reset_delay=False,
                         spike_grad=surrogate.triangular())

    def run(x):
        mem = lif.init_leaky()
        out = []
        for t in range(x.shape[0]):
            spk, mem = lif(x[t], mem)
            out.append(spk)
        return torch.stack(out)

    return run, None


def small_steps(repetitions: int) -> None:
    """Microseconds per stepwise call, plain ops against the compiled kernel, by tensor size."""
    def per_call(fn, calls=1000):
        for _ in range(20):
            fn()
        rounds = []
        for _ in range(repetitions):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            rounds.append((time.perf_counter() - t0) / calls * 1e6)
        return statistics.median(rounds)

    print(f"{'elements':>9s} {'spikes plain':>13s} {'compiled':>9s} {'slot plain':>11s} {'compiled':>9s}  (us per call)")
    for numel in (4096, 16384, 32768, 65536, 131072, 262144):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(1, numel, generator=gen) * 1.5
        u = torch.randn(1, numel, generator=gen)
        fresh, s = torch.zeros(1, 1, dtype=torch.bool), torch.empty_like(x)
        keep = fresh.logical_not() * 0.5
        row = [per_call(lambda: kernels._small_spikes(x, 1.0)),
               per_call(lambda: kernels.KERNELS.call(kernels._k_spikes, x, 1.0)),
               per_call(lambda: kernels._small_slot_step(x, u, keep, 1.0)),
               per_call(lambda: kernels.KERNELS.call(kernels._k_slot_step, x, u, fresh, s, 0.5, 1.0))]
        print(f"{numel:9d} {row[0]:13.1f} {row[1]:9.1f} {row[2]:11.1f} {row[3]:9.1f}")
    print(f"kernels.CPU_SMALL_STEP = {kernels.CPU_SMALL_STEP}: smaller tensors take the plain ops; "
          f"compiled: {compile_available()}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", type=int, nargs="+", default=[4, 32, 128, 16, 16], help="[T, B, ...]")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repetitions", type=int, default=15)
    ap.add_argument("--malloc-default", action="store_true",
                    help="leave glibc malloc as it is (default: keep freed memory, as the latency stage does)")
    ap.add_argument("--small", action="store_true", help="time one inference step by tensor size instead")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.small:
        small_steps(args.repetitions)
        return
    kept = False if args.malloc_default else keep_freed_memory()
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(*args.shape, generator=gen) * 1.5
    grad = torch.randn(*args.shape, generator=gen)

    impls = {"seenn LIF, fused (torch.compile)": seenn_fused, "seenn LIF, plain PyTorch loop": seenn_plain}
    for name, factory in (("SpikingJelly LIFNode (multi-step, torch)", spikingjelly_lif),
                          ("snnTorch Leaky (stepped over T)", snntorch_leaky)):
        fn, why = factory()
        if fn is None:
            print(f"skipped {name}: {why}")
        else:
            impls[name] = fn

    def fresh_input():
        return x0.clone().requires_grad_()

    def fwd_bwd(fn, x=None):
        x = fresh_input() if x is None else x
        s = fn(x)
        s.backward(grad)
        return s.detach(), x.grad

    t0 = time.perf_counter()
    ref_s, ref_g = fwd_bwd(seenn_plain)
    fwd_bwd(seenn_fused)
    compile_s = time.perf_counter() - t0
    for _ in range(args.warmup):
        for fn in impls.values():
            fwd_bwd(fn)
    times = {name: [] for name in impls}
    for _ in range(args.repetitions):  # round-robin: a slow phase of a shared machine hits all
        for name, fn in impls.items():
            x = fresh_input()  # copying the input is set-up, not the neuron's work: untimed
            t0 = time.perf_counter()
            fwd_bwd(fn, x)
            times[name].append(time.perf_counter() - t0)

    print(f"LIF forward+backward on {list(args.shape)} float32, {args.threads} thread(s), torch {torch.__version__}; "
          f"median of {args.repetitions} rounds after {args.warmup} warm-up")
    print(f"fused LIF compiled: {compile_available()} (first call incl. compilation {compile_s:.1f} s); "
          f"malloc keeps freed memory: {kept}")
    fused = statistics.median(times["seenn LIF, fused (torch.compile)"])
    print(f"{'implementation':44s} {'median ms':>10s} {'min ms':>8s} {'vs fused':>9s}  spikes == plain loop")
    for name, fn in impls.items():
        s, g = fwd_bwd(fn)
        same = torch.equal(s, ref_s)
        mismatch = "" if same else f" ({int((s != ref_s).sum())} of {s.numel()} differ)"
        grad_note = "" if name.startswith("seenn") is False else f", grad max |diff| {float((g - ref_g).abs().max()):.1e}"
        med = statistics.median(times[name])
        print(f"{name:44s} {med * 1e3:10.1f} {min(times[name]) * 1e3:8.1f} {med / fused:8.2f}x  {same}{mismatch}{grad_note}")


if __name__ == "__main__":
    main()
