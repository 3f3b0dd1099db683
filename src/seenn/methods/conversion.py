"""ANN-to-SNN conversion, two methods (`conversion.method`): QCFS -> IF, and RMP-SNN's ReLU -> IF.

- `qcfs` (the default): each QCFS activation (threshold lam, L levels) becomes an IF neuron with
  threshold lam, membrane starting at lam/2 and reset by subtraction (snn.neurons.IF).
- `rmp`: the stand-in for RMP-SNN (Han, Srinivasan, Roy, CVPR 2020), the conversion behind the
  TEAS paper's Table 2 rows. A plain ReLU ANN of the same architecture; threshold balancing on
  training data: each activation slot's threshold is the `conversion.percentile`-th percentile
  (99.99 by default) of that layer's positive ReLU outputs over the first
  `conversion.balance_samples` training samples (robust normalization, Rueckauer et al. 2017;
  zeros left out; numpy's linear interpolation, computed exactly from the largest values kept
  batch by batch); then each ReLU becomes an IF neuron with that threshold, reset by subtraction
  (RMP's "residual membrane potential" neuron) and membrane starting at 0 (RMP's rest potential:
  init_fraction 0). The IF spike carries the threshold as its amplitude, so thresholds need no
  weight rescaling: the rate times the threshold approaches clip(ReLU, 0, threshold). RMP-SNN
  itself balances on the SNN's input currents (the maximum, then a scaling); the percentile of the
  ANN's activations is the stated stand-in.

Every other layer is copied unchanged. BatchNorm is kept as the affine map of its running
statistics (the network only runs in eval mode), applied to each timestep's input current exactly
as the ANN applies it once: folding it into the convolution would give the same numbers up to
rounding. Max-pooling has no spike counterpart that preserves rates and is refused, and so is a
SEW block's connect function (its output is no ReLU of a current); the error names the
`model.arch` (`resnet34_avgpool` is ResNet-34 with an average pool in the stem).

The converted network is the same network class with IF neurons (models.build_if_snn), so the
evaluate stage, loops.predict.predict_logits and stepwise mode run it like the direct SNN. Input: the analog
image at every timestep (direct encoding); output: per-timestep logits O_t whose running sum
z_t = O_1 + ... + O_t is what every metric and exit rule reads (z_t / t approaches the ANN's
logits as t grows)."""

from __future__ import annotations

import copy
import logging
import math

import torch
from torch import nn

from seenn.common.artifacts import ann_method, load_ann_checkpoint, load_weights
from seenn.common.errors import SeennError
from seenn.data.source import eval_batches
from seenn.loops.predict import predict_logits
from seenn.models.base import TimeFold
from seenn.models.qcfs import QCFS, build_qcfs_ann, qcfs_layers
from seenn.models.registry import build_relu_ann
from seenn.models.sew import SEWConnect
from seenn.snn.neurons import IF

log = logging.getLogger("seenn")
MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardtanh)
METHODS = ("qcfs", "rmp")  # conversion.method
RMP_INIT_FRACTION = 0.0  # RMP: the IF membrane starts at 0 (its rest potential), not at half the threshold


def _check_layers(ann: nn.Module) -> None:
    """Refuse max-pooling and SEW connects (no rate-preserving spiking counterpart), naming the arch."""
    arch = getattr(ann, "arch", "?")
    for name, m in ann.named_modules():
        if isinstance(m, MAX_POOLS):
            raise SeennError(f"model.arch '{arch}' cannot be converted: layer '{name}' is max-pooling "
                             f"({type(m).__name__}), which has no rate-preserving spiking counterpart: use average "
                             f"pooling in the ANN before converting")
        if isinstance(m, SEWConnect):  # g(A, S) joins spikes after the neurons
            raise SeennError(f"model.arch '{arch}' cannot be converted: layer '{name}' is a spike-element-wise "
                             f"connect ({m.extra_repr()}), not a ReLU network's activation")


def check_convertible(ann: nn.Module) -> None:
    """Raise SeennError naming the arch and the first layer the QCFS conversion cannot map to IF neurons."""
    _check_layers(ann)
    for name, m in ann.named_modules():
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


def check_relu_convertible(ann: nn.Module) -> list[str]:
    """The activation slots of a ReLU ANN (RMP conversion), in forward order; SeennError naming the
    arch and the first layer it cannot map to IF neurons."""
    _check_layers(ann)
    slots = [name for name, m in ann.named_modules() if isinstance(m, TimeFold)]
    for name in slots:
        neuron = ann.get_submodule(name).neuron
        if type(neuron) is not nn.ReLU:
            raise SeennError(f"activation slot '{name}' holds {type(neuron).__name__}, not ReLU: not the ReLU ANN "
                             f"that conversion.method rmp converts")
    if not slots:
        raise SeennError("the ANN has no ReLU activation slot to convert")
    return slots


class _TopValues:
    """The largest `keep` values seen (over batches), and how many positive values were seen."""

    def __init__(self):
        self.values = torch.empty(0, dtype=torch.float64)
        self.count = 0
        self.keep = 0

    def add(self, out: torch.Tensor, total: int, percentile: float) -> None:
        if not self.keep:  # enough for the interpolation at any positive count <= total
            self.keep = min(total, math.floor((total - 1) * (1 - percentile / 100)) + 2)
        out = out.detach()
        pos = out[out > 0]
        self.count += pos.numel()
        if pos.numel() > self.keep:  # on the batch's device and dtype first: a large layer's batch is big
            pos = pos.topk(self.keep).values
        kept = torch.cat([self.values, pos.double().cpu()])
        self.values = kept.topk(self.keep).values if kept.numel() > self.keep else kept

    def percentile(self, percentile: float) -> float | None:
        """numpy's / torch.quantile's linear-interpolation percentile of the positive values seen."""
        if self.count == 0:
            return None
        top = self.values.sort(descending=True).values  # top[j] = the (count - 1 - j)-th smallest
        r = percentile / 100 * (self.count - 1)
        lo, hi = math.floor(r), math.ceil(r)
        a, b = float(top[self.count - 1 - lo]), float(top[self.count - 1 - hi])
        return a + (r - lo) * (b - a)


@torch.no_grad()
def balance_thresholds(ann: nn.Module, source, percentile: float, batch_size: int, device,
                       loader: dict | None = None) -> dict[str, float]:
    """RMP threshold balancing: per activation slot of a ReLU ANN, the `percentile`-th percentile of
    its positive outputs over every sample of `source` (a SplitSource, the ANN run once per sample)."""
    if not 0 < percentile <= 100:
        raise SeennError(f"conversion.percentile must be in (0, 100], got {percentile}")
    if len(source) == 0:
        raise SeennError("threshold balancing needs at least one training sample")
    slots = check_relu_convertible(ann)
    ann = ann.to(device).eval()
    seen = {name: _TopValues() for name in slots}

    def record(name: str):
        def hook(module, args, out) -> None:
            seen[name].add(out, len(source) * out[0].numel(), percentile)

        return hook

    handles = [ann.get_submodule(name).register_forward_hook(record(name)) for name in slots]
    try:
        for xb, _ in eval_batches(source, batch_size, loader):
            ann(xb.to(device), 1)
    finally:
        for h in handles:
            h.remove()
    out = {}
    for name in slots:
        th = seen[name].percentile(percentile)
        if th is None or not th > 0:
            raise SeennError(f"threshold balancing: ReLU layer '{name}' never activates on the {len(source)} balancing "
                             f"samples, so it has no threshold (raise conversion.balance_samples)")
        out[name] = th
    return out


def convert_rmp(ann: nn.Module, thresholds: dict[str, float]) -> nn.Module:
    """The RMP-converted SNN: a copy of the ReLU `ann` with each ReLU slot an IF neuron of the
    balanced threshold (`balance_thresholds`), reset by subtraction, membrane from 0."""
    slots = check_relu_convertible(ann)
    if sorted(thresholds) != sorted(slots):
        raise SeennError(f"RMP conversion needs one threshold per activation slot {slots}, got {sorted(thresholds)}")
    snn = copy.deepcopy(ann).eval()
    for name in slots:
        snn.get_submodule(name).neuron = IF(float(thresholds[name]), init_fraction=RMP_INIT_FRACTION)
    return snn


def load_ann(path, spec):
    """(ANN, checkpoint contents) saved by the train_ann stage: the QCFS ANN, or the ReLU ANN of
    conversion.method rmp (the checkpoint's kind says which); errors name the file."""
    ck = load_ann_checkpoint(path, spec)
    size = spec.input_shape[-1]
    if ann_method(ck) == "rmp":
        model = build_relu_ann(ck["model"], spec.input_shape[-3], spec.num_classes, image_size=size)
    else:
        model = build_qcfs_ann(ck["model"], ck["levels"], 1.0, spec.input_shape[-3], spec.num_classes, image_size=size)
    load_weights(model, ck["state_dict"], path, "ANN checkpoint")
    return model, ck


@torch.no_grad()
def ann_accuracy(ann, source, batch_size: int, device, loader: dict | None = None) -> float:
    """Test-style accuracy (%) of the ANN (QCFS or ReLU; one forward, T = 1) on a SplitSource."""
    z = predict_logits(ann.to(device), source, 1, batch_size, device, loader=loader)
    return float((z[:, 0].argmax(-1) == source.y).double().mean() * 100)
