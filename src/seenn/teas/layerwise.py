"""Layer-major execution with a window per spiking layer (TEAS): each spiking layer runs its whole
window T^l before the next layer starts, because Eq. 3 needs a layer's whole train.

A spiking layer is a `TimeFold` neuron slot, in registration order (`spiking_layers`): for a
ResNet (`SpikingResNet`, the ImageNet `ImageNetResNet` of ResNet-34) `stem_act`, then each block's
`act1`, `act2`; for a VGG (`SpikingVGG`) `stem_act`, each conv unit's neuron, then the hidden FC
layers' neurons of the classifier; for `TeasMLP` `stem_act`, `out_act`. The train entering a
layer is converted to its window (`temporal.CONVERSIONS`, Eq. 3 by default) from the previous
spiking layer's train, then goes through the stateless steps between them (pooling, the stem
max- or average pool of ResNet-34, conv + BN, flatten + FC) at every step of the new window.
Choices:

- Residual additions: the block's input train is converted to the window of the block's output
  neuron (`act2`) with the same conversion, then goes through the shortcut (identity, avgpool +
  1x1 conv + BN, or 1x1 conv stride 2 + BN) and is added to the main path's current step by step.
- Logits: the head is applied to each step of the last layer's window, giving [T_L, B, K];
  `LayerwiseResult.mean_logits` averages them over the window (Eq. 7's rate, comparable between
  windows of different lengths). For `TeasMLP` the head is the output layer's spikes.
- Predictions (`LayerwiseResult.predict`): the class of the largest mean logit. Spike counts tie
  often (argmax would give the lowest tied class; class 0 when no output neuron fires): when the
  readout is spikes, ties go to the tied class whose output neuron ends with the higher membrane
  potential, and the share of tied samples is reported.
- Neurons: LIF (any decay, hard reset, from u = 0) and IF (reset by subtraction, from
  init_fraction x threshold, spikes of amplitude threshold) with the same arithmetic as
  `seenn.snn.neurons` (plain, not the fused kernel), also recording each neuron's mean membrane
  potential at its firing steps.

With every window equal and no conversion this is the network's own `forward(x, T)`, which is
already layer-major (tests/test_teas_layerwise.py checks they agree for the ResNets, ResNet-34,
VGG-16 and the MLP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from seenn.common.errors import SeennError
from seenn.models.base import SpikingNetwork, TimeFold
from seenn.models.resnet import BasicBlock
from seenn.models.vgg import SpikingVGG
from seenn.snn.neurons import IF, LIF
from seenn.teas.mlp import TeasMLP
from seenn.teas.temporal import CONVERSIONS, EXPANSIONS


@dataclass
class Fired:
    """A spiking layer's train [T, B, ...], its neurons' mean firing potential [B, ...] (0 where
    silent), threshold and spike amplitude."""

    spikes: torch.Tensor
    v_fire: torch.Tensor
    threshold: torch.Tensor | float
    amplitude: torch.Tensor | float
    v_last: torch.Tensor | None = None  # membrane potential after the window's last step

    @property
    def T(self) -> int:
        return self.spikes.shape[0]


def fire(neuron: nn.Module, current: torch.Tensor) -> Fired:
    """Run `neuron` (LIF or IF) over an input current [T, B, ...] from its rest state."""
    u_sum = torch.zeros_like(current[0], dtype=torch.float32)
    count = torch.zeros_like(u_sum)
    out = []
    if isinstance(neuron, LIF):
        th, amp = neuron.threshold, 1.0
        u = torch.zeros_like(current[0])
        for t in range(current.shape[0]):
            u = neuron.decay * u + current[t]
            s = neuron.surrogate(u - th)
            with torch.no_grad():
                u_sum += (u * s).float()
                count += s.float()
            u = u * (1 - s)
            out.append(s)
    elif isinstance(neuron, IF):
        th = amp = neuron.threshold
        u = torch.full_like(current[0], 0.0) + th * neuron.init_fraction
        for t in range(current.shape[0]):
            u = u + current[t]
            s = (u >= th).to(current.dtype)
            with torch.no_grad():
                u_sum += (u * s).float()
                count += s.float()
            u = u - th * s
            out.append(s * th)
    else:
        raise SeennError(f"layer-major execution supports LIF and IF neurons, got {type(neuron).__name__}")
    v_fire = torch.where(count > 0, u_sum / count.clamp(min=1), torch.zeros_like(u_sum))
    return Fired(torch.stack(out), v_fire, th, amp, u.detach())


@dataclass
class LayerwiseResult:
    """Per-step logits of the last window [T_L, B, K], and each spiking layer's own train
    (autograd kept: the regularizer reads them) with its spike amplitude, by layer name;
    `potential` [B, K], the output neurons' final membrane, where the readout is spikes."""

    logits: torch.Tensor
    spikes: dict[str, torch.Tensor] = field(default_factory=dict)
    amplitude: dict[str, torch.Tensor | float] = field(default_factory=dict)
    potential: torch.Tensor | None = None

    def mean_logits(self) -> torch.Tensor:
        return self.logits.mean(0)

    def predict(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted class [B], tied [B] bool: the largest mean logit is shared); ties broken by
        `potential` where there is one (see the module docstring)."""
        z = self.mean_logits().detach()
        top = z == z.max(-1, keepdim=True).values
        tied = top.sum(-1) > 1
        if self.potential is None:
            return z.argmax(-1), tied
        key = torch.where(top, self.potential.to(z.dtype), torch.full_like(z, float("-inf")))
        return key.argmax(-1), tied


def spiking_layers(model: nn.Module) -> list[str]:
    """Names of the model's TimeFold neuron slots, in execution order."""
    return [name for name, m in model.named_modules() if isinstance(m, TimeFold)]


def check_windows(model: nn.Module, windows: Sequence[int] | dict[str, int]) -> list[int]:
    """Windows as a list in `spiking_layers` order, each an integer >= 1."""
    names = spiking_layers(model)
    if isinstance(windows, dict):
        missing = [n for n in names if n not in windows]
        extra = [k for k in windows if k not in names]
        if missing or extra:
            raise SeennError(f"windows must name every spiking layer {names}: missing {missing}, unknown {extra}")
        windows = [windows[n] for n in names]
    windows = list(windows)
    if len(windows) != len(names):
        raise SeennError(f"{len(windows)} windows for {len(names)} spiking layers {names}")
    for n, w in zip(names, windows):
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise SeennError(f"window of layer '{n}' must be an integer >= 1, got {w!r}")
    return windows


def _merge(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, *x.shape[2:])


def _split(x: torch.Tensor, T: int) -> torch.Tensor:
    return x.reshape(T, -1, *x.shape[1:])


def _opened(modules) -> list:
    """The steps of `modules` in execution order, plain Sequentials (VGG's conv units, its classifier)
    opened; a BasicBlock stays whole (its two paths need their own windows)."""
    out = []
    for m in modules:
        out += _opened(m) if isinstance(m, nn.Sequential) else [m]
    return out


def _plan(model: SpikingNetwork) -> list:
    """Everything after `stem_act`, in execution order: `layers` opened, then the head (VGG's
    feature-shape check and classifier opened, since its hidden FC layers are spiking layers)."""
    if isinstance(model, SpikingVGG):
        return [*_opened(model.layers), model.check_features, *_opened(model.classifier)]
    if type(model).head is not SpikingNetwork.head:
        raise SeennError(f"layer-major execution does not know the head of {type(model).__name__} (model.arch "
                         f"'{model.arch}')")
    return [*_opened(model.layers), model.head]


def _apply(steps: list, h: torch.Tensor) -> torch.Tensor:
    for step in steps:
        h = step(h)
    return h


def run(model: nn.Module, x: torch.Tensor, windows: Sequence[int] | dict[str, int], conversion: str = "eq3",
        on_layer: Callable[[int], None] | None = None, expansion: str = "continuous") -> LayerwiseResult:
    """Run `model` on `x` layer by layer, spiking layer i over windows[i] steps, trains crossing
    between windows by `conversion` (Eq. 3 read by `expansion`: temporal.EXPANSIONS).

    `on_layer(t)` is called before the synaptic layers that run once per sample (t = 0: the stem
    under direct encoding) and before those that run at every step of spiking layer i's window
    (t = i + 1; the head counts with the last layer): an OpCounter's `set_timestep`."""
    if conversion not in CONVERSIONS:
        raise SeennError(f"unknown conversion '{conversion}', expected one of {sorted(CONVERSIONS)}")
    if expansion not in EXPANSIONS:
        raise SeennError(f"teas.expansion must be one of {EXPANSIONS}, got {expansion!r}")
    W = check_windows(model, windows)
    to_window = CONVERSIONS[conversion]
    note = on_layer or (lambda t: None)
    result = LayerwiseResult(logits=torch.empty(0))
    names = spiking_layers(model)

    def cross(f: Fired, T: int) -> torch.Tensor:
        return to_window(f.spikes, f.v_fire, f.threshold, T, f.amplitude, expansion)

    def layer(i: int, neuron: nn.Module, current: torch.Tensor) -> Fired:
        f = fire(neuron, _split(current, W[i]))
        result.spikes[names[i]], result.amplitude[names[i]] = f.spikes, f.amplitude
        return f

    if isinstance(model, TeasMLP):
        note(0)
        hidden = layer(0, model.stem_act.neuron, model.encode(x, W[0]))
        note(2)
        out = layer(1, model.out_act.neuron, model.fc(_merge(cross(hidden, W[1]))))
        result.logits = model.head(out.spikes)
        result.potential = out.v_last
        return result
    if not isinstance(model, SpikingNetwork):
        raise SeennError(f"layer-major execution supports the spiking networks of models.ARCHITECTURES and TeasMLP, "
                         f"got {type(model).__name__}")
    plan = _plan(model)
    note(1 if model.event else 0)
    prev = layer(0, model.stem_act.neuron, model.encode(x, W[0]))
    i, pending = 1, []  # pending: the stateless steps (pooling, conv, BN, FC) between prev and the next spiking layer

    def feed(T: int) -> torch.Tensor:
        """The previous spiking layer's train in a window of T steps through the pending steps, merged."""
        return _apply(pending, _merge(cross(prev, T)))

    for step in plan:
        if isinstance(step, TimeFold):
            note(i + 1)
            prev, pending, i = layer(i, step.neuron, feed(W[i])), [], i + 1
        elif isinstance(step, BasicBlock):
            note(i + 1)
            mid = layer(i, step.act1.neuron, step.bn1(step.conv1(feed(W[i]))))
            note(i + 2)
            main = step.bn2(step.conv2(_merge(cross(mid, W[i + 1]))))
            prev, pending, i = layer(i + 1, step.act2.neuron, main + step.shortcut(feed(W[i + 1]))), [], i + 2
        elif isinstance(step, nn.Module) and any(isinstance(m, TimeFold) for m in step.modules()):
            raise SeennError(f"layer-major execution knows BasicBlock residual blocks, got {type(step).__name__} "
                             f"(model.arch '{model.arch}')")
        else:
            pending.append(step)
    if i != len(W):
        raise SeennError(f"layer-major execution ran {i} of the {len(W)} spiking layers of model.arch '{model.arch}'")
    note(len(W))
    result.logits = _split(_apply(pending, _merge(prev.spikes)), W[-1])
    return result


@torch.no_grad()
def synaptic_owners(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """{Conv2d / Linear name: index of the spiking layer it belongs to}: the one whose window it
    runs in (the stem under direct encoding, which runs once, belongs to the first layer).
    Found by running one sample of `x` at windows of 1 and watching `on_layer`."""
    current = [0]
    owners: dict[str, int] = {}
    handles = []

    def watch(name: str):
        def hook(module, args) -> None:
            owners.setdefault(name, max(current[0] - 1, 0))

        return hook

    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            handles.append(m.register_forward_pre_hook(watch(name)))
    try:
        run(model, x[:1], [1] * len(spiking_layers(model)), on_layer=lambda t: current.__setitem__(0, t))
    finally:
        for h in handles:
            h.remove()
    return owners
