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
from typing import Sequence

import torch
from torch import nn

from seenn.common.errors import SeennError
from seenn.methods.energy import OpCounter, energy_pj
from seenn.teas import layerwise
from seenn.teas.allocation import timestep_equivalents


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
          conversion: str = "eq3", dense: bool = False) -> RunCost:
    """Operations of running `model` layer by layer at `windows` on inputs `x` (`dense`: every
    synapse as a MAC, whatever the spikes: the static size of each layer's step)."""
    if x.shape[0] == 0 or batch_size < 1:
        raise SeennError(f"counting needs inputs and batch_size >= 1, got {x.shape[0]} inputs, batch_size {batch_size}")
    L = len(layerwise.check_windows(model, windows))
    with OpCounter(model, dense=dense) as counter:
        for i in range(0, x.shape[0], batch_size):
            layerwise.run(model, x[i : i + batch_size], windows, conversion, on_layer=counter.set_timestep)
    n = x.shape[0]
    per = [0.0] * (L + 1)
    for (_, t), (a, m) in counter.ops.items():
        per[t] += (a + m) / n
    acs, macs = (v / n for v in counter.totals())
    return RunCost(acs, macs, energy_pj(acs, macs) / 1e6, per[1:], per[0])


def layer_costs(model: nn.Module, x: torch.Tensor, T: int, batch_size: int = 256, dense: bool = False) -> list[float]:
    """c_l: operations per inference of one step of each spiking layer's window, at uniform
    windows T, from the real spikes (a layer fed by a silent one costs 0), or `dense` synapses."""
    L = len(layerwise.spiking_layers(model))
    return [ops / T for ops in count(model, x, [T] * L, batch_size, dense=dense).layer_ops]


def summary(model: nn.Module, x: torch.Tensor, windows: Sequence[int], costs: Sequence[float],
            batch_size: int = 256) -> dict:
    """Operations, energy and timestep-equivalents of one allocation, for a table row."""
    c = count(model, x, windows, batch_size)
    return {"windows": list(windows), "acs": c.acs, "macs": c.macs, "energy_uj": c.energy_uj,
            "timestep_equivalents": timestep_equivalents(windows, costs)}
