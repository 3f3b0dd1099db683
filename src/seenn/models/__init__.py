"""The networks: spiking ResNets of the paper's Table 6 (`resnet`, one class per `model.arch` in
`ARCHITECTURES`), the SEENN-II policy ResNet-8 (`policy`) and the QCFS ANN (`qcfs`)."""

from .resnet import ARCHITECTURES, SpikingResNet, TimeFold, build_if_snn, build_resnet, build_snn  # noqa: F401
