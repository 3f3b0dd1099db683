"""Generated data of a dataset's shape, to time the data path alone (the data ms of a GPU check):
`training_batches` yields augmented training batches on a device exactly as a training stage gets
them (loops.fit.ShuffledBatches under the `loader:` settings), from random samples held in memory,
or for a streamed dataset (ImageNet) from photo-sized JPEG files written to a temporary folder."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import torch

from seenn.data.registry import get_spec
from seenn.data.source import ImageFileSource, SplitSource, TensorSource
from seenn.data.spec import DatasetSpec

PHOTO = (375, 500)  # height, width of the generated JPEGs: a typical ImageNet photo


def _jpegs(folder: Path, n: int, classes: int, g: torch.Generator,
           photo: tuple[int, int] = PHOTO) -> tuple[list[str], list[str], torch.Tensor]:
    """n smooth random RGB JPEGs of `photo` size (noise upscaled: decodes like a photo, not like noise)."""
    from PIL import Image

    files, sha, labels = [], [], []
    for i in range(n):
        small = torch.randint(0, 256, (12, 16, 3), dtype=torch.uint8, generator=g).numpy()
        path = folder / f"{i:05d}.JPEG"
        Image.fromarray(small).resize(photo[::-1], Image.BILINEAR).save(path, quality=90)
        files.append(path.name)
        sha.append(hashlib.sha256(path.read_bytes()).hexdigest())
        labels.append(i % classes)
    return files, sha, torch.tensor(labels, dtype=torch.int64)


def synthetic_source(dataset: str | DatasetSpec, n: int, folder: str | Path | None = None, seed: int = 0,
                     image_size: int = 224, resize_size: int = 256, photo: tuple[int, int] = PHOTO) -> SplitSource:
    """A training split of `n` generated samples of `dataset` (a data.name, or a spec whose
    input_shape may be shrunk, as a quick benchmark does); a streamed dataset needs `folder` for
    its image files, `photo` (height, width) in size."""
    spec = get_spec(dataset) if isinstance(dataset, str) else dataset
    g = torch.Generator().manual_seed(seed)
    if spec.name == "imagenet":
        if folder is None:
            raise ValueError("a streamed dataset's generated images need a folder")
        files, sha, y = _jpegs(Path(folder), n, spec.num_classes, g, photo)
        return ImageFileSource(spec, y, "train", "generated", root=str(folder), files=files, sha256=sha,
                               crop=image_size, resize=resize_size)
    y = torch.arange(n) % spec.num_classes
    if spec.event:  # sparse event counts, as the stored float16 frames
        x = torch.poisson(torch.full((n, *spec.input_shape), 0.3), generator=g).clamp(max=8).half()
    else:
        x = torch.randint(0, 256, (n, *spec.input_shape), dtype=torch.uint8, generator=g)
    return TensorSource(replace(spec), x, y, "train", "generated")


def training_batches(dataset: str | DatasetSpec, batch_size: int, device: str | torch.device, augment: str, *,
                     loader: dict | None = None, batches: int = 4, seed: int = 0,
                     **shape) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Augmented training batches (inputs, labels) on `device`, endlessly, of `dataset` (see
    synthetic_source, which takes `shape`: image_size, resize_size, photo) with `augment`
    (train.augment) under `loader` (the `loader:` section; None: its defaults), from `batches` x
    `batch_size` generated samples; next() of it is one batch. Its temporary image folder
    (streamed datasets) goes when the iterator is closed or collected."""
    from seenn.loops.fit import ShuffledBatches

    device = torch.device(device)
    with tempfile.TemporaryDirectory(prefix="seenn-synthetic-") as folder:
        source = synthetic_source(dataset, batches * batch_size, folder, seed, **shape)
        data = ShuffledBatches(source, batch_size, augment, torch.Generator().manual_seed(seed), loader=loader,
                               device=device)
        while True:
            for xb, yb in data:
                yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)


def one_training_batch(dataset: str | DatasetSpec, batch_size: int, device: str | torch.device, augment: str,
                       loader: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One augmented training batch on `device` from generated data (see training_batches)."""
    batches = training_batches(dataset, batch_size, device, augment, loader=loader, batches=1)
    try:
        return next(batches)
    finally:
        batches.close()
