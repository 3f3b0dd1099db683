"""Reference spikes, membranes and input gradients of every LIF path, for tests/test_neuron_reference.py.

`compute(inputs)` runs each path (the surrogate gradient alone, plain multi-step, plain stepwise
with autograd, stepwise with keep/admit, fused multi-step with and without a gradient, fused
stepwise; each fused one both compiled and as its plain-PyTorch fallback) on small seeded inputs
and returns the results by name. The committed fixture was written by this script from the code
before the neurons/kernels split (issue 14, point 7); the test recomputes every entry from the
stored inputs and asserts `torch.equal`. Regenerate only for a change meant to alter the numbers:

    PYTHONPATH=src python tests/neuron_reference.py

The inputs are stored, not redrawn: torch.randn's last bits depend on the CPU kernels. The
results were checked to be the same under ATen's AVX-512, AVX2 and baseline kernels (compiled
entries: AVX-512 and AVX2, each with its own inductor cache; a cache shared across
ATEN_CPU_CAPABILITY settings hands out wrong kernels)."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "neuron_reference.pt"

# (surrogate, width, decay, threshold): both surrogates, three widths; decay 0.3 makes the
# membrane's multiplication inexact, so a reordered float operation would show.
CASES = [("triangle", 1.0, 0.5, 1.0), ("triangle", 0.5, 0.3, 0.8), ("tanh", 3.0, 0.5, 1.0), ("tanh", 1.0, 0.3, 0.8)]
SHAPE = (4, 3, 4, 5)  # T, B, C, W


def make_inputs() -> dict[str, torch.Tensor]:
    """Seeded inputs per case (stored in the fixture: torch.randn's last bits depend on the CPU
    kernels, so the test reads them back rather than drawing them again)."""
    res = {}
    for i, case in enumerate(CASES):
        g = torch.Generator().manual_seed(100 + i)
        key = case_key(*case)
        res[f"{key}/x"] = torch.randn(SHAPE, generator=g) * 1.5  # membrane inputs [T, B, ...]
        res[f"{key}/go"] = torch.randn(SHAPE, generator=g)  # gradient at the spikes
        res[f"{key}/v"] = torch.cat([torch.linspace(-4, 4, 81), torch.randn(32, generator=g) * 2])  # spike() inputs
        res[f"{key}/gv"] = torch.randn(res[f"{key}/v"].shape, generator=g)
    return res


def case_key(sur: str, w: float, decay: float, thr: float) -> str:
    return f"{sur}-w{w}-d{decay}-t{thr}"


def _multistep_grad(fn, x, go):
    xr = x.clone().requires_grad_()
    s = fn(xr)
    s.backward(go)
    return s.detach(), xr.grad


def _stepwise_grad(lif, x, go):
    """Stepwise with autograd through the kept membrane (what LIF does with grad enabled)."""
    xr = x.clone().requires_grad_()
    lif.stepwise = True
    lif.reset()
    s = torch.stack([lif(xr[t]) for t in range(x.shape[0])])
    s.backward(go)
    lif.reset()
    lif.stepwise = False
    return s.detach(), xr.grad


def _stepwise_batching(lif, x):
    """The engine's slot bookkeeping without autograd (methods/slots.py): 4 slots, samples a, b, c
    in slots 0-2 run 2 steps (slot 3 empty), b leaves, 2 new samples take slots 1 and 3 from rest
    (the `fresh` mask), then 2 more steps. Returns the spikes and membranes of the real samples in
    the order a, c, new, new after the first two steps: the same entries as the engine of the
    keep/admit design this fixture was written with (issue 31), so they are compared with it."""
    out, mem = [], []
    fresh = torch.zeros(4, dtype=torch.bool)
    lif.stepwise, lif.fresh = True, fresh
    lif.reset()
    pad = torch.zeros_like(x[0, :1])  # the empty slot's input (its rows are never read)
    with torch.no_grad():
        for t in range(2):
            out.append(lif(torch.cat([x[t], pad]))[:3].flatten())
            mem.append(lif.u[:3].flatten().clone())
        fresh.copy_(torch.tensor([False, True, False, True]))
        order = [0, 2, 1, 3]  # slot of a, c, then the two new samples
        for t in range(2):
            xs = torch.stack([x[2 + t, 0], x[t, 0], x[2 + t, 2], x[t, 1]])
            s = lif(xs)
            fresh.zero_()
            out.append(s[order].flatten())
            mem.append(lif.u[order].flatten().clone())
    lif.reset()
    lif.stepwise, lif.fresh = False, None
    return torch.cat(out), torch.cat(mem)


def compute(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    from seenn.snn import kernels, neurons

    res: dict[str, torch.Tensor] = {}
    for sur, w, decay, thr in CASES:
        key = case_key(sur, w, decay, thr)
        x, go, v, gv = (inputs[f"{key}/{n}"] for n in ("x", "go", "v", "gv"))

        vr = v.clone().requires_grad_()
        neurons.make_surrogate(sur, w)(vr).backward(gv)
        res[f"{key}/spike/grad"] = vr.grad

        plain = neurons.LIF(decay, thr, sur, w)
        res[f"{key}/plain_multistep/s"], res[f"{key}/plain_multistep/gx"] = _multistep_grad(plain, x, go)
        res[f"{key}/plain_stepwise/s"], res[f"{key}/plain_stepwise/gx"] = _stepwise_grad(plain, x, go)
        res[f"{key}/plain_batching/s"], res[f"{key}/plain_batching/u"] = _stepwise_batching(plain, x)

        for mode in ("compiled", "fallback"):
            before = kernels.KERNELS.failed
            if mode == "fallback":
                kernels.KERNELS.failed = True
            elif before:
                continue  # torch.compile unavailable: no compiled entries
            try:
                lif = neurons.LIF(decay, thr, sur, w)
                kernels.set_fused(lif, True)
                p = f"{key}/fused_{mode}"
                res[f"{p}_multistep/s"], res[f"{p}_multistep/gx"] = _multistep_grad(lif, x, go)
                with torch.no_grad():
                    res[f"{p}_multistep_nograd/s"] = lif(x)
                    res[f"{p}_multistep_t1/s"] = lif(x[:1])
                res[f"{p}_stepwise_grad/s"], res[f"{p}_stepwise_grad/gx"] = _stepwise_grad(lif, x, go)
                res[f"{p}_batching/s"], res[f"{p}_batching/u"] = _stepwise_batching(lif, x)
                if mode == "compiled" and kernels.KERNELS.failed:
                    raise RuntimeError("torch.compile failed while computing the compiled entries")
            finally:
                kernels.KERNELS.failed = before
    return res


def meta() -> dict:
    return {"torch": str(torch.__version__), "machine": platform.machine(), "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def main() -> None:
    inputs = make_inputs()
    res = compute(inputs)
    FIXTURE.parent.mkdir(exist_ok=True)
    torch.save({"meta": meta(), "inputs": inputs, "results": res}, FIXTURE)
    print(f"{FIXTURE.name}: {len(res)} results, {FIXTURE.stat().st_size} bytes, {meta()}")


if __name__ == "__main__":
    main()
