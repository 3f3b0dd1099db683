"""Spiking VGGs: VGG-16 (configuration D, the QCFS conversion rows) and VGGSNN (CIFAR10-DVS).

Each conv unit is conv3x3 + BN + neuron; downsampling is 2x2 average pooling, never
max-pooling (ANN-to-SNN conversion refuses max-pooling: convert.check_convertible).

- `vgg16`: 13 conv units at 64, 64 | 128, 128 | 256 x 3 | 512 x 3 | 512 x 3, a pool after each
  of the five groups (32 px -> 1 px). Following QCFS's `Models/VGG.py` (the code of the QCFS ANNs
  the conversion rows come from, with its maxpool-to-avgpool replacement applied): convolutions
  with bias, and the CIFAR classifier FC 512 -> 4096 -> neuron -> FC 4096 -> 4096 -> neuron ->
  FC 4096 -> K (dropout 0, QCFS's default, so no dropout layer), instead of a single FC 512 -> K:
  the hidden FC activations are neuron slots like every other (QCFS in the ANN, IF once
  converted). The classifier is sized from the input side: 32 px (CIFAR) leaves a 1 x 1 x 512
  map after the last pool (FC 512 -> 4096, QCFS's CIFAR classifier), 224 px (ImageNet) a
  7 x 7 x 512 map (FC 25088 -> 4096, the ImageNet VGG-16 of torchvision and of QCFS's
  `Models/VGG.py`): `image_size` (default 32) is the input side the network is built for.
- `vggsnn`: TET's VGGSNN (Deng et al., ICLR 2022, `models/VGG_models.py`): 8 conv units at 64,
  128, 256, 256, 512, 512, 512, 512 (conv with bias), a 2x2 average pool after units 2, 4, 6, 8
  (48 -> 3 px) and FC 512 * 3 * 3 = 4608 -> K. The issue's "stride 2 on layers 2, 4, 6, 8" is
  this downsampling; TET's code does it with average pooling, which is what is followed here."""

from __future__ import annotations

import torch
from torch import nn

from seenn.common.errors import SeennError
from seenn.models.base import NeuronFactory, SpikingNetwork, TimeFold

VGG16_GROUPS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
VGGSNN_WIDTHS = (64, 128, 256, 256, 512, 512, 512, 512)  # an average pool after every second one


class ConvUnit(nn.Sequential):
    """conv3x3 (with bias, as QCFS's and TET's VGGs) + BN + neuron."""

    def __init__(self, cin: int, cout: int, neuron: NeuronFactory):
        super().__init__(nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), TimeFold(neuron()))


class SpikingVGG(SpikingNetwork):
    """Conv units with 2x2 average pooling where `pool_after` says, then a flattening classifier.

    The first unit's conv + BN is the stem (the encoding layer), its neuron the stem_act.
    `hidden` widths of the classifier's hidden FC layers, each followed by a neuron slot;
    `feature_size` the side of the last feature map the classifier expects."""

    def __init__(self, in_channels: int, num_classes: int, widths, pool_after, hidden, feature_size: int,
                 neuron: NeuronFactory, event: bool = False):
        super().__init__(num_classes, event)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1), nn.BatchNorm2d(widths[0]))
        self.stem_act = TimeFold(neuron())
        layers = [nn.AvgPool2d(2)] if 0 in pool_after else []
        for i in range(1, len(widths)):
            layers.append(ConvUnit(widths[i - 1], widths[i], neuron))
            if i in pool_after:
                layers.append(nn.AvgPool2d(2))
        self.layers = nn.Sequential(*layers)
        self.feature_shape = (widths[-1], feature_size, feature_size)
        fc, cin = [nn.Flatten()], widths[-1] * feature_size * feature_size
        for h in hidden:
            fc += [nn.Linear(cin, h), TimeFold(neuron())]
            cin = h
        fc.append(nn.Linear(cin, num_classes))
        self.classifier = nn.Sequential(*fc)

    def check_features(self, h: torch.Tensor) -> torch.Tensor:
        """`h` itself, once its feature-map shape is the one the classifier is built for."""
        if tuple(h.shape[1:]) != self.feature_shape:
            raise SeennError(f"model.arch '{self.arch}': the classifier expects feature maps of shape "
                             f"{list(self.feature_shape)}, got {list(h.shape[1:])} (input size not the one the "
                             f"architecture is built for)")
        return h

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.check_features(h))


def build_vgg16(neuron: NeuronFactory, in_channels: int, num_classes: int, event: bool = False,
                image_size: int = 32) -> SpikingVGG:
    """VGG-16 (configuration D) for `image_size` px inputs: FC 512 * s * s -> 4096 -> 4096 -> K,
    s the side left after the five 2x2 pools (1 at 32 px, 7 at 224 px)."""
    widths = [w for g in VGG16_GROUPS for w in g]
    ends = {sum(len(g) for g in VGG16_GROUPS[: k + 1]) - 1 for k in range(len(VGG16_GROUPS))}
    side = int(image_size)
    for _ in VGG16_GROUPS:
        side //= 2  # AvgPool2d(2) floors
    if side < 1:
        raise SeennError(f"model.arch 'vgg16' needs inputs of at least 32 px (five 2x2 poolings), got {image_size} px")
    return SpikingVGG(in_channels, num_classes, widths, ends, (4096, 4096), side, neuron, event=event)


def build_vggsnn(neuron: NeuronFactory, in_channels: int, num_classes: int, event: bool = False) -> SpikingVGG:
    """TET's VGGSNN for 48 px event frames: FC 4608 -> K."""
    return SpikingVGG(in_channels, num_classes, VGGSNN_WIDTHS, {1, 3, 5, 7}, (), 3, neuron, event=event)
