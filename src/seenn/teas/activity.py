"""Spiking activity per layer (TEAS Eq. 2) and the noise-sensitivity probe (the paper's Fig. 3).

#Act(l) = fired spikes / time steps, measured on a spiking layer (a `TimeFold` neuron slot) over
a split, two ways (both reported; `teas.activity` picks the one allocation and adjustment use):

- `raw` (`layer`): the whole layer's spikes per inference per time step (Eq. 2 as printed, a
  per-layer total: larger layers count more);
- `rate` (`neuron`): `raw` divided by the layer's neurons, the firing probability per neuron per
  step in [0, 1], so layers of different sizes compare.

Any nonzero neuron output counts as one spike (IF neurons emit their threshold). Measured with
forward hooks during the network's ordinary multi-step `forward(x, T)`, or from a layer-major run
(`from_result`: each layer over its own window).

Noise probe: noise is added to the input current of one spiking layer at a time (a forward
pre-hook on its slot), and the accuracy of the summed logits is measured. Choices: uniform noise
in [-u, u] (or Gaussian with std u), scaled by the layer's threshold by default so that layers
with different thresholds (converted IF layers) see the same relative perturbation; drawn from a
generator seeded with `seed + layer index`, so every probe is reproducible."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seenn.common.errors import SeennError
from seenn.models.resnet import TimeFold
from seenn.teas.layerwise import LayerwiseResult, spiking_layers


@dataclass
class LayerActivity:
    """One spiking layer's activity over `samples` inferences of `steps` time steps each."""

    name: str
    spikes: float
    neurons: int
    samples: int
    steps: int

    @property
    def raw(self) -> float:
        """Eq. 2: the layer's spikes per inference / time steps."""
        return self.spikes / (self.samples * self.steps) if self.samples else 0.0

    @property
    def rate(self) -> float:
        """`raw` per neuron: firing probability per neuron per step."""
        return self.raw / self.neurons if self.neurons else 0.0

    def value(self, kind: str) -> float:
        """#Act(l) as `teas.activity` reads it: 'layer' (Eq. 2 as printed) or 'neuron'."""
        return {"layer": self.raw, "neuron": self.rate}[check_kind(kind)]


ACTIVITY = ("layer", "neuron")  # teas.activity


def check_kind(kind: str) -> str:
    if kind not in ACTIVITY:
        raise SeennError(f"teas.activity must be one of {ACTIVITY}, got {kind!r}")
    return kind


def per_layer(rates, neurons, kind: str) -> list[float]:
    """Per-neuron firing rates as #Act(l) of `kind`: times each layer's neurons for 'layer'."""
    check_kind(kind)
    return [float(r) * (n if kind == "layer" else 1) for r, n in zip(rates, neurons)]


class ActivityRecorder:
    """Forward hooks on every TimeFold slot of `model` that add up spikes while attached."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.layers = {name: LayerActivity(name, 0.0, 0, 0, 0) for name in spiking_layers(model)}
        self._handles: list = []

    def __enter__(self) -> "ActivityRecorder":
        for name, m in self.model.named_modules():
            if isinstance(m, TimeFold):
                self._handles.append(m.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def hook(module, args, out) -> None:
            if getattr(module.neuron, "stepwise", False):
                raise SeennError("the activity profile needs multi-step forward(x, T), not stepwise mode")
            T = module.T
            a = self.layers[name]
            b = out.shape[0] // T
            a.spikes += float((out.detach() != 0).sum(dtype=torch.float64))
            a.neurons = out[0].numel()
            a.samples += b
            a.steps = T

        return hook

    def profile(self) -> list[LayerActivity]:
        return list(self.layers.values())


def from_result(result: LayerwiseResult) -> list[LayerActivity]:
    """Activity of a layer-major run, each layer over its own window."""
    out = []
    for name, s in result.spikes.items():
        out.append(LayerActivity(name, float((s.detach() != 0).sum(dtype=torch.float64)), s[0, 0].numel(),
                                 s.shape[1], s.shape[0]))
    return out


@torch.no_grad()
def profile(model: nn.Module, x: torch.Tensor, T: int, batch_size: int = 256) -> list[LayerActivity]:
    """Activity of every spiking layer of `model` on inputs `x` at T time steps."""
    if x.shape[0] == 0:
        raise SeennError("the activity profile needs at least one input")
    with ActivityRecorder(model) as rec:
        for i in range(0, x.shape[0], batch_size):
            model(x[i : i + batch_size], T)
    return rec.profile()


def _threshold(slot: TimeFold) -> float:
    th = getattr(slot.neuron, "threshold", None)
    if th is None:
        raise SeennError(f"noise scaled by threshold needs a neuron with one, got {type(slot.neuron).__name__}")
    return float(th)


NOISE = ("uniform", "gaussian")
NOISE_SCALE = ("threshold", "absolute")


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, T: int, batch_size: int) -> float:
    correct = 0
    for i in range(0, x.shape[0], batch_size):
        z = model(x[i : i + batch_size], T).sum(0)
        correct += int((z.argmax(-1) == y[i : i + batch_size].to(z.device)).sum())
    return 100.0 * correct / x.shape[0]


@torch.no_grad()
def noise_sensitivity(model: nn.Module, x: torch.Tensor, y: torch.Tensor, T: int, u: float = 0.1,
                      noise: str = "uniform", scale: str = "threshold", seed: int = 0,
                      batch_size: int = 256) -> tuple[float, dict[str, float]]:
    """(accuracy without noise, {layer: accuracy with noise of magnitude u on that layer's input})."""
    if noise not in NOISE or scale not in NOISE_SCALE:
        raise SeennError(f"noise must be one of {NOISE} and scale one of {NOISE_SCALE}, got '{noise}', '{scale}'")
    if u < 0:
        raise SeennError(f"noise magnitude u must be >= 0, got {u}")
    slots = {name: m for name, m in model.named_modules() if isinstance(m, TimeFold)}
    clean = _accuracy(model, x, y, T, batch_size)
    out = {}
    for i, (name, slot) in enumerate(slots.items()):
        gen = torch.Generator().manual_seed(seed + i)
        mag = u * (_threshold(slot) if scale == "threshold" else 1.0)

        def add_noise(module, args):
            cur = args[0]
            r = torch.rand(cur.shape, generator=gen) * 2 - 1 if noise == "uniform" else torch.randn(cur.shape, generator=gen)
            return (cur + mag * r.to(cur.device, cur.dtype),)

        handle = slot.register_forward_pre_hook(add_noise)
        try:
            out[name] = _accuracy(model, x, y, T, batch_size)
        finally:
            handle.remove()
    return clean, out
