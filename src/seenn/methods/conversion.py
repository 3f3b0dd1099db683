"""ANN-to-SNN conversion (QCFS -> IF).

Each QCFS activation (threshold lam, L levels) becomes an IF neuron with threshold lam, membrane
starting at lam/2 and reset by subtraction (snn.neurons.IF); every other layer is copied unchanged.
BatchNorm is kept as the affine map of its running statistics (the network only runs in eval
mode), applied to each timestep's input current exactly as the ANN applies it once: folding it
into the convolution would give the same numbers up to rounding. Max-pooling has no spike
counterpart that preserves rates and is refused, and so is a SEW block's connect function (its
output is no ReLU of a current); the error names the `model.arch`. The other architectures use
average pooling only.

The converted network is the same network class with IF neurons (models.build_if_snn), so the
evaluate stage, loops.predict.predict_logits and stepwise mode run it like the direct SNN. Input: the analog
image at every timestep (direct encoding); output: per-timestep logits O_t whose running sum
z_t = O_1 + ... + O_t is what every metric and exit rule reads (z_t / t approaches the ANN's
logits as t grows)."""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from seenn.common.artifacts import load_ann_checkpoint, load_weights
from seenn.common.errors import SeennError
from seenn.loops.predict import predict_logits
from seenn.models.base import TimeFold
from seenn.models.qcfs import QCFS, build_qcfs_ann, qcfs_layers
from seenn.models.sew import SEWConnect
from seenn.snn.neurons import IF

log = logging.getLogger("seenn")
MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardtanh)


def check_convertible(ann: nn.Module) -> None:
    """Raise SeennError naming the arch and the first layer the conversion cannot map to IF neurons."""
    arch = getattr(ann, "arch", "?")
    for name, m in ann.named_modules():
        if isinstance(m, MAX_POOLS):
            raise SeennError(f"model.arch '{arch}' cannot be converted: layer '{name}' is max-pooling "
                             f"({type(m).__name__}), which has no rate-preserving spiking counterpart: use average "
                             f"pooling in the ANN before converting")
        if isinstance(m, SEWConnect):  # g(A, S) joins spikes after the neurons
            raise SeennError(f"model.arch '{arch}' cannot be converted: layer '{name}' is a spike-element-wise "
                             f"connect ({m.extra_repr()}), not a ReLU network's activation")
        if isinstance(m, ACTIVATIONS):
            raise SeennError(f"layer '{name}' is a {type(m).__name__} activation: only QCFS activations convert "
                             f"to IF neurons (train the ANN with QCFS in every activation slot)")
        if isinstance(m, TimeFold) and not isinstance(m.neuron, QCFS):
            raise SeennError(f"activation slot '{name}' holds {type(m.neuron).__name__}, not QCFS: not a QCFS ANN")
    layers = qcfs_layers(ann)
    if not layers:
        raise SeennError("the ANN has no QCFS activation to convert")
    for name, q in layers.items():
        lam = float(q.lam.detach())
        if not lam > 0:
            raise SeennError(f"QCFS layer '{name}' ended training with threshold lambda = {lam:.4g} <= 0, which no IF "
                             f"neuron can use: raise 'conversion.lambda_init' or lower 'conversion.lr'")


def convert(ann: nn.Module) -> nn.Module:
    """The converted SNN: a copy of `ann` with each QCFS(lam) replaced by IF(lam, init lam/2)."""
    check_convertible(ann)
    snn = copy.deepcopy(ann).eval()
    for m in snn.modules():
        if isinstance(m, TimeFold):
            m.neuron = IF(m.neuron.lam.detach().clone(), init_fraction=0.5)
    return snn


def thresholds(model: nn.Module) -> dict[str, float]:
    """Per-layer threshold lambda of a QCFS ANN, by activation slot name."""
    return {name.removesuffix(".neuron"): float(q.lam.detach()) for name, q in qcfs_layers(model).items()}


def load_ann(path, spec):
    """(QCFS ANN, checkpoint contents) saved by the train_ann stage; errors name the file."""
    ck = load_ann_checkpoint(path, spec)
    model = build_qcfs_ann(ck["model"], ck["levels"], 1.0, spec.input_shape[-3], spec.num_classes)
    load_weights(model, ck["state_dict"], path, "QCFS ANN checkpoint")
    return model, ck


@torch.no_grad()
def ann_accuracy(ann, source, batch_size: int, device, loader: dict | None = None) -> float:
    """Test-style accuracy (%) of the QCFS ANN (one forward, T = 1) on a SplitSource."""
    z = predict_logits(ann.to(device), source, 1, batch_size, device, loader=loader)
    return float((z[:, 0].argmax(-1) == source.y).double().mean() * 100)
