"""The networks: one class per layout, one builder per `model.arch` in `ARCHITECTURES`
(`registry`): the paper's Table 6 ResNets and ResNet-34 (`resnet`), SEW-ResNet-34 (`sew`),
VGG-16 and VGGSNN (`vgg`), all on the interface of `base.SpikingNetwork`; the SEENN-II policy
ResNet-8 (`policy`) and the QCFS ANN (`qcfs`); `registry.build_relu_ann` the plain ReLU ANN."""

from seenn.models.base import SpikingNetwork, TimeFold  # noqa: F401
from seenn.models.registry import (  # noqa: F401
                                   ARCHITECTURES,
                                   ann_twin,
                                   arch_config,
                                   build_if_snn,
                                   build_network,
                                   build_relu_ann,
                                   build_resnet,
                                   build_snn,
)
from seenn.models.resnet import SpikingResNet  # noqa: F401
