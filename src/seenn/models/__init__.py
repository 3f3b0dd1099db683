"""The networks: one class per layout, one builder per `model.arch` in `ARCHITECTURES`
(`registry`): the paper's Table 6 ResNets and ResNet-34 (`resnet`), SEW-ResNet-34 (`sew`),
VGG-16 and VGGSNN (`vgg`), all on the interface of `base.SpikingNetwork`; the SEENN-II policy
ResNet-8 (`policy`) and the QCFS ANN (`qcfs`)."""

from .base import SpikingNetwork, TimeFold  # noqa: F401
from .registry import (ARCHITECTURES, ann_twin, arch_config, build_if_snn, build_network, build_resnet,  # noqa: F401
                       build_snn)
from .resnet import SpikingResNet  # noqa: F401
