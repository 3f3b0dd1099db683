"""Operation counts of ANN and SNN layers: multiply-accumulates (MACs) and parameters of every
Conv2d and Linear layer, measured with forward hooks on the real models (nothing typed in).

These are *dense* counts: every synapse of every conv / linear layer is counted once per
execution, whether its input is a real number or a (possibly zero) spike. That is how the SEENN
paper compares the policy network with the SNN (ResNet-8 at 0.547 % of ResNet-19's operations,
per timestep). Spike-sparsity-aware energy (ACs per actual spike, pJ per op) is a different
measure and lives elsewhere (methods/energy.py). BatchNorm, pooling and neuron updates are not counted."""

from __future__ import annotations

import torch
from torch import nn


def count_macs(model: nn.Module, *args, **kwargs) -> dict:
    """Run `model(*args, **kwargs)` once (no grad, eval mode restored afterwards) and return
    {"macs": total MACs of Conv2d + Linear layers over the whole call, "params": their weights,
    "layers": [(name, macs), ...]}. MACs are summed over the batch: divide by it yourself."""
    layers: list[tuple[str, int]] = []
    hooks = []

    def hook(name):
        def fn(mod, inp, out):
            if isinstance(mod, nn.Conv2d):
                per_out = (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
            else:
                per_out = mod.in_features
            layers.append((name, int(out.numel()) * per_out))
        return fn

    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            hooks.append(mod.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*args, **kwargs)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    params = sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    return {"macs": sum(m for _, m in layers), "params": int(params), "layers": layers}


def ann_macs(model: nn.Module, input_shape) -> dict:
    """Per-sample MACs and parameters of an ANN (e.g. the SEENN-II policy) for one input of
    shape `input_shape` (without the batch dimension)."""
    r = count_macs(model, torch.zeros(1, *input_shape))
    return {"macs": r["macs"], "params": r["params"]}


def snn_macs(model: nn.Module, input_shape) -> dict:
    """Per-sample dense MACs of an SNN called as model(x, timesteps): {"per_timestep", "fixed",
    "params"}. Running T timesteps costs fixed + T * per_timestep (`fixed` is the direct-encoding
    stem, computed once on the static image; zero for event inputs). Measured from two runs,
    T = 1 and T = 2, so whatever the model computes once or per step is counted as it runs."""
    x1 = torch.zeros(1, *input_shape)
    one = count_macs(model, x1, 1)
    two = count_macs(model, x1, 2) if len(input_shape) == 3 else count_macs(model, torch.zeros(1, 2, *input_shape[1:]), 2)
    per_t = two["macs"] - one["macs"]
    return {"per_timestep": per_t, "fixed": one["macs"] - per_t, "params": one["params"]}
