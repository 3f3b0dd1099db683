"""QCFS activation (quantization-clip-floor-shift, Bu et al. ICLR 2022) and the QCFS ANN.

    h(x) = lam * clip( floor(x * L / lam + 0.5) / L, 0, 1 )

L quantization levels, one trainable threshold `lam` per layer; the floor passes gradients
straight through, so both the weights and `lam` learn. An IF neuron with threshold lam, reset by
subtraction and membrane starting at lam/2 fires, over T = L steps of a constant input x, exactly
L * h(x) / lam times: that is why this ANN converts to an SNN with (almost) no error.

The ANN is the configured `model.arch` network (models/registry.py) with a QCFS activation in
every neuron slot, run with T = 1 (its output is [1, B, K]). Sharing the class keeps layer and
parameter names identical between ANN and converted SNN, so conversion is a neuron swap
(methods/conversion.py). An arch the conversion cannot map (max-pooling, SEW connects) is refused here,
before any training."""

from __future__ import annotations

import torch
from torch import nn

from seenn.common.errors import SeennError
from seenn.models.base import SpikingNetwork
from seenn.models.registry import build_network, check_arch_convertible


class _FloorSTE(torch.autograd.Function):
    """floor forward, identity backward (straight-through estimator)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def qcfs(x: torch.Tensor, lam: torch.Tensor, levels: int) -> torch.Tensor:
    """lam * clip(floor(x * L / lam + 0.5) / L, 0, 1), flooring first and clamping after, as the
    authors' `MyFloor` does: the values equal clamp-then-floor, but the gradients at the edges
    follow the clamp of the rounded value, which is what the authors trained with."""
    y = _FloorSTE.apply(x / lam * levels + 0.5) / levels
    return torch.clamp(y, 0, 1) * lam


class QCFS(nn.Module):
    """QCFS activation with `levels` steps and a trainable threshold `lam` (a scalar per layer).

    Elementwise, so it can sit in a TimeFold slot of the ResNet like any neuron."""

    def __init__(self, levels: int, lambda_init: float):
        super().__init__()
        if levels < 1:
            raise ValueError(f"QCFS needs at least one level, got {levels}")
        self.levels = int(levels)
        self.lam = nn.Parameter(torch.tensor(float(lambda_init)))

    def extra_repr(self) -> str:
        return f"levels={self.levels}, lam={float(self.lam.detach()):.4f}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return qcfs(x, self.lam, self.levels)


def build_qcfs_ann(model_cfg: dict, levels: int, lambda_init: float, in_channels: int, num_classes: int,
                   image_size: int | None = None) -> SpikingNetwork:
    """The configured network (the direct SNN's layers) with QCFS activations: the ANN of the
    conversion branch. Call it with timesteps = 1."""
    check_arch_convertible(model_cfg)
    return build_network(model_cfg, lambda: QCFS(levels, lambda_init), in_channels, num_classes, image_size=image_size)


def qcfs_layers(model: nn.Module) -> dict[str, QCFS]:
    """Every QCFS activation of a model by module name, in forward order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, QCFS)}


def require_static_images(spec, stage: str) -> None:
    """The QCFS ANN takes the analog image (fed at every timestep once converted): event data has no ANN counterpart."""
    if spec.event:
        raise SeennError(f"stage {stage}: the QCFS conversion branch needs a static-image dataset, but "
                         f"'data.name: {spec.name}' holds event frames (use the direct branch for event data)")
