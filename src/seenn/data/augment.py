"""Training augmentation on uint8 image batches, driven by an explicit torch.Generator
(so a resumed run draws the same crops, flips, policies and holes).

Modes (config key `augment` of the train, finetune and conversion sections):
- none: the stored images as they are.
- crop_flip: random crop with 4 px zero padding and a random horizontal flip (the CIFAR recipe).
- autoaugment_cutout: crop_flip, then torchvision's AutoAugment with the CIFAR-10 policy, then,
  after normalization, Cutout (DeVries & Taylor 2017: one 16 px square set to 0, i.e. to the mean
  pixel; its centre anywhere in the image, clipped at the borders). The authors' CIFAR-100 recipe."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms import AutoAugment, AutoAugmentPolicy

from . import DatasetSpec, to_input

AUGMENTATIONS = ("none", "crop_flip", "autoaugment_cutout")
CUTOUT_LENGTH = 16


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding `pad` and random horizontal flip, per sample."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def auto_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """torchvision's AutoAugment (CIFAR-10 policy), one sub-policy drawn per sample. It draws from
    torch's global generator, so it runs under a forked one seeded from `generator`."""
    policy = AutoAugment(AutoAugmentPolicy.CIFAR10)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.stack([policy(img) for img in x]) if len(x) else x.clone()


def cutout(x: torch.Tensor, generator: torch.Generator, length: int = CUTOUT_LENGTH) -> torch.Tensor:
    """One `length` px square per sample set to 0 (x normalized: 0 is the mean pixel)."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n, 1, 1), generator=generator)
    cx = torch.randint(0, w, (n, 1, 1), generator=generator)
    ys, xs = torch.arange(h).view(1, -1, 1), torch.arange(w).view(1, 1, -1)
    hole = (ys >= cy - length // 2) & (ys < cy + length // 2) & (xs >= cx - length // 2) & (xs < cx + length // 2)
    return x.masked_fill(hole.unsqueeze(1), 0.0)


def augmented_input(mode: str, spec: DatasetSpec, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A training batch of stored uint8 images -> augmented, normalized network input."""
    if mode not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation '{mode}', expected one of {', '.join(AUGMENTATIONS)}")
    if mode != "none" and spec.event:
        raise ValueError(f"augmentation '{mode}' is for static images; {spec.name} holds event frames")
    if mode != "none":
        x = random_crop_flip(x, generator)
    if mode == "autoaugment_cutout":
        x = auto_augment(x, generator)
    out = to_input(spec, x)
    if mode == "autoaugment_cutout":
        out = cutout(out, generator)
    return out
