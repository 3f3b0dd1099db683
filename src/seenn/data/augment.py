"""Training augmentation on uint8 image batches, driven by an explicit torch.Generator
(so a resumed run draws the same crops, flips, policies and holes).

Modes (config key `augment` of the train, finetune and conversion sections):
- none: the stored images as they are.
- crop_flip: random crop with 4 px zero padding and a random horizontal flip (the CIFAR recipe).
- autoaugment_cutout: crop_flip, then torchvision's AutoAugment with the CIFAR-10 policy, then,
  after normalization, Cutout (DeVries & Taylor 2017: one 16 px square set to 0, i.e. to the mean
  pixel; its centre anywhere in the image, clipped at the borders). The authors' CIFAR-100 recipe.
- flip_roll_rotate (event frames, CIFAR10-DVS): a random horizontal flip, then either a roll of
  up to 5 px in each direction or a rotation of up to 30 degrees (nearest neighbour, zeros
  outside), the same for every frame of a sample.

`protocol` (`data.protocol`, recorded in the split file): `project` as above; `authors` as the
SEENN authors' code: AutoAugment fills with grey (128) instead of black, and Cutout is applied
before normalization, its hole black (pixel 0) instead of the mean pixel."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms import AutoAugment, AutoAugmentPolicy, InterpolationMode
from torchvision.transforms import functional as TF

from seenn.data.augment_modes import AUGMENTATIONS, check_augmentation
from seenn.data.spec import DatasetSpec, to_input

__all__ = ["AUGMENTATIONS", "augmented_input", "auto_augment", "cutout", "flip_roll_rotate", "random_crop_flip"]

CUTOUT_LENGTH = 16
MAX_ROLL, MAX_ROTATION = 5, 30.0


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


AUTHORS_FILL = 128  # the authors' AutoAugment fill (grey); the project keeps torchvision's black


def auto_augment(x: torch.Tensor, generator: torch.Generator, fill: int | None = None) -> torch.Tensor:
    """torchvision's AutoAugment (CIFAR-10 policy), one sub-policy drawn per sample. It draws from
    torch's global generator, so it runs under a forked one seeded from `generator`. `fill`: the
    value of pixels moved in from outside (None: torchvision's default, black)."""
    policy = AutoAugment(AutoAugmentPolicy.CIFAR10, fill=None if fill is None else [fill] * x.shape[1])
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.stack([policy(img) for img in x]) if len(x) else x.clone()


def cutout(x: torch.Tensor, generator: torch.Generator, length: int = CUTOUT_LENGTH) -> torch.Tensor:
    """One `length` px square per sample set to 0 (x normalized: 0 is the mean pixel; x uint8, as
    the authors' protocol cuts before normalizing: a black hole)."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n, 1, 1), generator=generator)
    cx = torch.randint(0, w, (n, 1, 1), generator=generator)
    ys, xs = torch.arange(h).view(1, -1, 1), torch.arange(w).view(1, 1, -1)
    hole = (ys >= cy - length // 2) & (ys < cy + length // 2) & (xs >= cx - length // 2) & (xs < cx + length // 2)
    return x.masked_fill(hole.unsqueeze(1), 0.0)


def flip_roll_rotate(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Event frames [N, T, C, H, W]: per sample a random horizontal flip, then a roll of up to
    MAX_ROLL px or a rotation of up to MAX_ROTATION degrees (each half the time), on all frames."""
    n = x.shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    roll = torch.rand(n, generator=generator) < 0.5
    shifts = torch.randint(-MAX_ROLL, MAX_ROLL + 1, (n, 2), generator=generator)
    angles = (torch.rand(n, generator=generator) * 2 - 1) * MAX_ROTATION
    out = torch.empty_like(x)
    for i in range(n):
        v = x[i].flip(-1) if flip[i] else x[i]
        if roll[i]:
            v = torch.roll(v, shifts=(int(shifts[i, 0]), int(shifts[i, 1])), dims=(-2, -1))
        else:
            v = TF.rotate(v.float(), float(angles[i]), interpolation=InterpolationMode.NEAREST).to(x.dtype)
        out[i] = v
    return out


def augmented_input(mode: str, spec: DatasetSpec, x: torch.Tensor, generator: torch.Generator,
                    protocol: str = "project") -> torch.Tensor:
    """A training batch of stored samples -> augmented network input (`protocol`: see the module)."""
    check_augmentation(mode, spec.name, spec.event)
    authors = protocol == "authors"
    if mode == "flip_roll_rotate":
        x = flip_roll_rotate(x, generator)
    elif mode != "none":
        x = random_crop_flip(x, generator)
    if mode == "autoaugment_cutout":
        x = auto_augment(x, generator, fill=AUTHORS_FILL if authors else None)
        if authors:
            x = cutout(x, generator)
    out = to_input(spec, x)
    if mode == "autoaugment_cutout" and not authors:
        out = cutout(out, generator)
    return out
