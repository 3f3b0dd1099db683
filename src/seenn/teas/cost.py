"""Cost of a layer-wise-window run on the same footing as SEENN: operations counted from the real
spikes by `seenn.methods.energy.OpCounter` (no second counter), energy at 0.9 pJ per addition and 4.6 pJ
per multiplication (`energy.energy_pj`), and timestep-equivalents.

The counter labels each operation with the spiking layer whose window it runs in (the layer-major
run's `on_layer`): label i + 1 for layer i, 0 for the stem under direct encoding (once per
sample). A layer's cost per step c_l (the weights of allocation.scaling_ratio) is its operations
at uniform windows T divided by T; a layer whose inputs are computed once (the first spiking
layer under direct encoding) then costs nothing per step, and its window does not enter the
timestep-equivalents. Timestep-equivalents = sum_l c_l T^l / sum_l c_l; for SEENN, whose layers
share one window, that is its average exit timestep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from seenn.common.errors import SeennError
from seenn.methods.energy import OpCounter, energy_pj
from seenn.teas import layerwise


@dataclass
class RunCost:
    """Per-inference operations of a layer-wise run: ACs, MACs, energy (uJ), operations per
    spiking layer (ACs + MACs, `spiking_layers` order) and those run once per sample."""

    acs: float
    macs: float
    energy_uj: float
    layer_ops: list[float]
    once_ops: float


@torch.no_grad()
def count(model: nn.Module, x: torch.Tensor, windows: Sequence[int], batch_size: int = 256,
          conversion: str = "eq3", dense: bool = False, expansion: str = "continuous",
          on_batch: Callable[[int, layerwise.LayerwiseResult], None] | None = None) -> RunCost:
    """Operations of running `model` layer by layer at `windows` on inputs `x` (`dense`: every
    synapse as a MAC, whatever the spikes: the static size of each layer's step). `on_batch(i, result)`
    sees each batch's run (starting at input i): the profile and the evaluation read accuracy and
    activity from the very runs that are counted, so TEAS has one counting path."""
    if x.shape[0] == 0 or batch_size < 1:
        raise SeennError(f"counting needs inputs and batch_size >= 1, got {x.shape[0]} inputs, batch_size {batch_size}")
    L = len(layerwise.check_windows(model, windows))
    with OpCounter(model, dense=dense) as counter:
        for i in range(0, x.shape[0], batch_size):
            res = layerwise.run(model, x[i : i + batch_size], windows, conversion, on_layer=counter.set_timestep,
                                expansion=expansion)
            if on_batch is not None:
                on_batch(i, res)
    n = x.shape[0]
    per = [0.0] * (L + 1)
    for (_, t), (a, m) in counter.ops.items():
        per[t] += (a + m) / n
    acs, macs = (v / n for v in counter.totals())
    return RunCost(acs, macs, energy_pj(acs, macs) / 1e6, per[1:], per[0])


def per_step(run: RunCost, T: int) -> list[float]:
    """c_l from a run at uniform windows T: each layer's operations per step of its window."""
    return [ops / T for ops in run.layer_ops]
