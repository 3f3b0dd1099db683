"""`model.arch` -> network builder, and the constructors every stage uses.

A builder is `(model_cfg, neuron_factory, in_channels, num_classes, event) -> SpikingNetwork`,
with `neuron_factory()` in every activation slot (LIF, IF, QCFS or ReLU): the direct SNN, the
ANN (QCFS or ReLU) and the converted SNN of one arch share layers and parameter names.
`ARCH_KEYS` says which `model.*` keys each arch reads (besides `arch`); a checkpoint records only
those (`arch_config`), so a key another arch reads does not change it. Where the caller knows the
input side (`image_size`, from the data spec), the `model_cfg` a builder receives also holds it
under "image_size" (VGG-16 sizes its classifier from it; the others ignore it)."""

from __future__ import annotations

import copy

from torch import nn

from seenn.common.errors import SeennError
from seenn.models.base import NeuronFactory, SpikingNetwork, TimeFold
from seenn.models.resnet import TABLE6, ImageNetResNet, SpikingResNet, resnet34_block
from seenn.models.sew import build_sew_resnet34
from seenn.models.vgg import build_vgg16, build_vggsnn
from seenn.snn.neurons import IF, LIF


def _configurable(m, neuron, cin, k, event):
    return SpikingResNet(cin, k, m["stem_channels"], list(m["widths"]), list(m["blocks"]), neuron, event=event)


def _table6(name: str):
    stem, widths, blocks = TABLE6[name]
    return lambda m, neuron, cin, k, event: SpikingResNet(cin, k, stem, widths, blocks, neuron, event=event)


ARCHITECTURES = {
    "resnet": _configurable,
    **{name: _table6(name) for name in TABLE6},
    "resnet34": lambda m, neuron, cin, k, event: ImageNetResNet(cin, k, neuron, resnet34_block, event=event),
    "resnet34_avgpool": lambda m, neuron, cin, k, event: ImageNetResNet(cin, k, neuron, resnet34_block, event=event,
                                                                        stem_pool="avg"),
    "sew_resnet34": lambda m, neuron, cin, k, event: build_sew_resnet34(m["sew_connect"], neuron, cin, k, event=event),
    "vgg16": lambda m, neuron, cin, k, event: build_vgg16(neuron, cin, k, event=event, image_size=m.get("image_size") or 32),
    "vggsnn": lambda m, neuron, cin, k, event: build_vggsnn(neuron, cin, k, event=event),
}

ARCH_KEYS = {"resnet": ("stem_channels", "widths", "blocks"), "sew_resnet34": ("sew_connect",)}

# Architectures the conversion branch refuses, and why (one line each).
NOT_CONVERTIBLE = {
    "resnet34": "its stem has a max-pooling layer, which has no rate-preserving spiking counterpart (model.arch "
                "resnet34_avgpool is the same network with an average pool there)",
    "sew_resnet34": "it is not a ReLU network (spike-element-wise connect after the neurons, max-pooling in the stem)",
}


def arch_config(model_cfg: dict) -> dict:
    """The `model` keys the configured arch reads, in config order (what a checkpoint records)."""
    arch = model_cfg["arch"]
    keys = {"arch", *ARCH_KEYS.get(arch, ())}
    return {k: v for k, v in model_cfg.items() if k in keys}


def build_network(model_cfg: dict, neuron: NeuronFactory, in_channels: int, num_classes: int,
                  event: bool = False, image_size: int | None = None) -> SpikingNetwork:
    """The configured `model.arch` with `neuron()` in every activation slot, for inputs of side
    `image_size` (None: the arch's own, 32 px for VGG-16)."""
    arch = model_cfg["arch"]
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown model.arch '{arch}' (known: {', '.join(ARCHITECTURES)})")
    m = model_cfg if image_size is None else {**model_cfg, "image_size": int(image_size)}
    net = ARCHITECTURES[arch](m, neuron, in_channels, num_classes, event)
    net.arch = arch
    return net


build_resnet = build_network  # the name before other architectures existed


def check_arch_convertible(model_cfg: dict, ann: str = "QCFS") -> None:
    """Refuse, before any training, an arch the ANN -> IF conversion cannot map (`ann` names the
    ANN in the message: QCFS or ReLU)."""
    arch = model_cfg["arch"]
    if arch in NOT_CONVERTIBLE:
        raise SeennError(f"model.arch '{arch}' cannot be converted from a {ann} ANN: {NOT_CONVERTIBLE[arch]} "
                         f"(switch the conversion branch off for this arch)")


def build_snn(model_cfg: dict, neuron_cfg: dict, in_channels: int, num_classes: int, event: bool = False,
              image_size: int | None = None) -> SpikingNetwork:
    """The configured network with LIF neurons (the directly trained SNN)."""

    def neuron() -> nn.Module:
        return LIF(neuron_cfg["decay"], neuron_cfg["threshold"], neuron_cfg["surrogate"], neuron_cfg["surrogate_width"])

    return build_network(model_cfg, neuron, in_channels, num_classes, event=event, image_size=image_size)


def build_if_snn(model_cfg: dict, in_channels: int, num_classes: int, init_fraction: float = 0.5,
                 image_size: int | None = None) -> SpikingNetwork:
    """The configured network with IF neurons (reset by subtraction, membrane starting at
    `init_fraction` of the threshold: 0.5 after QCFS, 0 after RMP): the shape of a converted SNN.
    Thresholds are placeholders until the converted state dict (each layer's threshold) is loaded."""
    return build_network(model_cfg, lambda: IF(1.0, init_fraction), in_channels, num_classes, image_size=image_size)


def build_relu_ann(model_cfg: dict, in_channels: int, num_classes: int, image_size: int | None = None) -> SpikingNetwork:
    """The configured network with ReLU in every activation slot, run with T = 1: the plain ANN that
    RMP conversion (methods.conversion) balances and converts; refuses what it cannot convert."""
    check_arch_convertible(model_cfg, "ReLU")
    return build_network(model_cfg, nn.ReLU, in_channels, num_classes, image_size=image_size)


def ann_twin(snn: nn.Module) -> nn.Module:
    """The ANN of the same architecture: the same network with ReLU in place of every spiking
    neuron, run once (T = 1). It reuses the SNN's trained weights: only its time and operation
    counts are used (energy, latency), never its accuracy."""
    if not isinstance(snn, SpikingNetwork):
        raise SeennError(f"the ANN reference needs a spiking network of models.ARCHITECTURES, got {type(snn).__name__}")
    ann = copy.deepcopy(snn)
    for m in ann.modules():
        if isinstance(m, TimeFold):
            m.neuron = nn.ReLU()
    return ann.eval()
