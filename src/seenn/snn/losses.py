"""Training losses over per-timestep outputs O [T, B, K].

tet:        (1 - lam) * mean_t CE(O_t, y) + lam * MSE(O, phi)          (TET, Deng et al. 2022)
mean:       CE(mean_t O_t, y)                                          (standard SNN loss)
cumulative: mean_t CE(z_t / t, y), z_t = O_1 + ... + O_t                (every prefix predicts; SEENN-II fine-tuning)
ann:        CE(O_1, y) with T = 1                                      (the QCFS ANN)
Each is a criterion(out, y) for loops.fit.train_one_epoch; `snn_criterion` picks one by config name."""

from __future__ import annotations

import functools

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


def ann_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Plain cross-entropy of an ANN run as one timestep (out [1, B, K])."""
    if out.shape[0] != 1:
        raise ValueError(f"ann_loss expects the output of one timestep, got T = {out.shape[0]}")
    return F.cross_entropy(out.mean(0), y)  # the mean of one step is that step, in earlier runs' op order


# config name -> loss (train.loss); the fine-tuning offers the losses without TET's extra terms
LOSSES = {"tet": tet_loss, "mean": mean_loss, "cumulative": cumulative_loss}
FINETUNE_LOSSES = ("cumulative", "mean")


def snn_criterion(name: str, tet_lambda: float | None = None, tet_phi: float | None = None):
    """The SNN loss `name` (`LOSSES`) as criterion(out, y); only 'tet' takes lambda and phi."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss '{name}', expected one of {', '.join(LOSSES)}")
    if name == "tet":
        if tet_lambda is None or tet_phi is None:
            raise ValueError("the 'tet' loss needs tet_lambda and tet_phi")
        return functools.partial(tet_loss, lam=tet_lambda, phi=tet_phi)
    return LOSSES[name]


def snn_loss(name: str, out: torch.Tensor, y: torch.Tensor, tet_lambda: float = 1e-3, tet_phi: float = 1.0) -> torch.Tensor:
    return snn_criterion(name, tet_lambda, tet_phi)(out, y)
