"""Model registry: spiking ResNets (Table 6), the policy ResNet-8 and the QCFS ANN."""

from .resnet import SpikingResNet, TimeFold, build_if_snn, build_resnet, build_snn  # noqa: F401
