"""What a dataset is to the pipeline (`DatasetSpec`), and the checks and transforms every split
goes through.

A dataset's `load(data_cfg, seed)` returns the raw splits {"train", "val", "test"} -> (x, y);
`prepare_splits` validates them and the data stage writes one checked file per split plus a
manifest (data.files). Later stages read only those files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from seenn.common.errors import SeennError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """What a stage needs to know about a dataset without loading it."""

    name: str
    num_classes: int
    input_shape: tuple[int, ...]  # per sample: (C, H, W) for images, (T, C, H, W) for event frames
    mean: tuple[float, ...]  # per channel, applied to uint8 images / 255
    std: tuple[float, ...]
    event: bool  # True: x holds per-timestep frames, fed one frame per timestep
    load: Callable[[dict, int], dict[str, tuple[torch.Tensor, torch.Tensor]]]
    where: str  # one line saying where the raw files must be (or that they ship in a package)
    authors_std: tuple[float, ...] | None = None  # std of the authors' code where it differs (data.protocol: authors)


def configured_spec(spec: DatasetSpec, data_cfg: dict) -> DatasetSpec:
    """`spec` with the sample shape the config sets: event frames (data.frames, data.frame_size),
    streamed image crops (data.image_size); other datasets as they are."""
    from dataclasses import replace

    if spec.event and "frames" in data_cfg:
        return replace(spec, input_shape=(int(data_cfg["frames"]), spec.input_shape[1], int(data_cfg["frame_size"]),
                                          int(data_cfg["frame_size"])))
    if spec.name == "imagenet" and "image_size" in data_cfg:
        return replace(spec, input_shape=(3, int(data_cfg["image_size"]), int(data_cfg["image_size"])))
    return spec


@dataclass(frozen=True)
class FileSplit:
    """A split as image files: paths relative to `root`, their sha256 and labels."""

    root: str
    files: list[str]
    sha256: list[str]
    y: torch.Tensor

    def __add__(self, other: "FileSplit") -> "FileSplit":
        return FileSplit(self.root, self.files + other.files, self.sha256 + other.sha256, torch.cat([self.y, other.y]))


def validate_split(spec: DatasetSpec, split: str, x: torch.Tensor, y: torch.Tensor, source: str) -> None:
    """Check shape, dtype and label range of one split; errors name the split and the source."""
    where = f"{spec.name} {split} split ({source})"
    if x.shape[0] == 0:
        raise SeennError(f"{where} is empty")
    if tuple(x.shape[1:]) != tuple(spec.input_shape):
        raise SeennError(
            f"{where}: samples have shape {tuple(x.shape[1:])}, expected {tuple(spec.input_shape)}"
        )
    expected_dtype = torch.float16 if spec.event else torch.uint8
    if x.dtype != expected_dtype:
        raise SeennError(f"{where}: samples have dtype {x.dtype}, expected {expected_dtype}")
    validate_labels(spec, split, y, x.shape[0], source)


def validate_labels(spec: DatasetSpec, split: str, y: torch.Tensor, n: int, source: str) -> None:
    """Check that `y` holds n int64 labels in the class range; errors name the split and the source."""
    where = f"{spec.name} {split} split ({source})"
    if n == 0:
        raise SeennError(f"{where} is empty")
    if y.dtype != torch.int64 or y.ndim != 1 or y.shape[0] != n:
        raise SeennError(
            f"{where}: labels must be int64 of shape ({n},), got {y.dtype} {tuple(y.shape)}"
        )
    if int(y.min()) < 0 or int(y.max()) >= spec.num_classes:
        raise SeennError(
            f"{where}: labels must lie in [0, {spec.num_classes - 1}], found [{int(y.min())}, {int(y.max())}]"
        )


def to_input(spec: DatasetSpec, x: torch.Tensor) -> torch.Tensor:
    """Stored samples -> float network input (normalized images, or event frames as float)."""
    if spec.event:
        return x.float()
    mean = torch.tensor(spec.mean).to(x.device, non_blocking=True).view(1, -1, 1, 1)  # on x's device, without
    std = torch.tensor(spec.std).to(x.device, non_blocking=True).view(1, -1, 1, 1)  # waiting for its queue
    return (x.float() / 255.0 - mean) / std


def stratified_split(y: torch.Tensor, sizes: dict[str, int], seed: int) -> dict[str, torch.Tensor]:
    """Shuffle with `seed` and split indices so each split keeps the class proportions.

    Each class contributes round(size * class_share) samples (largest remainders fix the total)."""
    g = torch.Generator().manual_seed(seed)
    classes = torch.unique(y)
    n = y.shape[0]
    total = sum(sizes.values())
    if total > n:
        raise SeennError(f"split sizes {sizes} need {total} samples but the pool holds {n}")
    per_class = {int(c): torch.nonzero(y == c).flatten() for c in classes}
    per_class = {c: idx[torch.randperm(idx.numel(), generator=g)] for c, idx in per_class.items()}
    out: dict[str, list[torch.Tensor]] = {s: [] for s in sizes}
    offsets = {c: 0 for c in per_class}
    for split, size in sizes.items():
        shares = {c: size * idx.numel() / n for c, idx in per_class.items()}
        counts = {c: int(v) for c, v in shares.items()}
        short = size - sum(counts.values())
        for c in sorted(shares, key=lambda c: (-(shares[c] - counts[c]), c))[:short]:
            counts[c] += 1
        for c, k in counts.items():
            out[split].append(per_class[c][offsets[c] : offsets[c] + k])
            offsets[c] += k
    result = {}
    for split, parts in out.items():
        idx = torch.cat(parts)
        result[split] = idx[torch.randperm(idx.numel(), generator=g)]
    return result


def require_dir(path: Path, spec_name: str, hint: str) -> None:
    """Fail early, saying where the files go, when a dataset directory is missing."""
    if not path.is_dir():
        raise SeennError(f"dataset '{spec_name}' not found: expected directory {path}. {hint}")
