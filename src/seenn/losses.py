"""Training losses over per-timestep outputs O [T, B, K].

tet:        (1 - lam) * mean_t CE(O_t, y) + lam * MSE(O, phi)          (TET, Deng et al. 2022)
mean:       CE(mean_t O_t, y)                                          (standard SNN loss)
cumulative: mean_t CE(z_t / t, y), z_t = O_1 + ... + O_t                (every prefix predicts; SEENN-II fine-tuning)"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def tet_loss(out: torch.Tensor, y: torch.Tensor, lam: float = 1e-3, phi: float = 1.0) -> torch.Tensor:
    T = out.shape[0]
    ce = sum(F.cross_entropy(out[t], y) for t in range(T)) / T
    mse = F.mse_loss(out, torch.full_like(out, phi)) if lam > 0 else out.new_zeros(())
    return (1 - lam) * ce + lam * mse


def mean_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out.mean(0), y)


def cumulative_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    T = out.shape[0]
    z = out.cumsum(0) / torch.arange(1, T + 1, device=out.device, dtype=out.dtype).view(T, 1, 1)
    return sum(F.cross_entropy(z[t], y) for t in range(T)) / T


def snn_loss(name: str, out: torch.Tensor, y: torch.Tensor, tet_lambda: float = 1e-3, tet_phi: float = 1.0) -> torch.Tensor:
    if name == "tet":
        return tet_loss(out, y, tet_lambda, tet_phi)
    if name == "mean":
        return mean_loss(out, y)
    if name == "cumulative":
        return cumulative_loss(out, y)
    raise ValueError(f"unknown loss '{name}'")
