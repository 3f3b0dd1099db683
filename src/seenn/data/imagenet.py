"""ImageNet (ILSVRC-2012) in torchvision's ImageFolder layout, streamed: `<data.root>/train/<wnid>/*`
and `<data.root>/val/<wnid>/*` (the official validation images sorted into class folders).

The split files list the images (paths relative to data.root, the sha256 of every file, labels)
instead of holding pixels; the later stages decode them batch by batch (data.source.ImageFileSource:
Resize(resize_size) + CenterCrop(image_size) for evaluation, RandomResizedCrop(image_size) +
horizontal flip for training with `augment: crop_flip`), normalized with the ImageNet mean/std.

Splits: test = the official validation set; val = `val_size` images carved per class, stratified
with the seed, from the training set; train = the rest. `train_size` / `test_size` are ignored.
Classes are the sorted wnid folders of train/; val/ must hold the same ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from seenn.common.errors import SeennError
from seenn.data.spec import DatasetSpec, FileSplit, stratified_split

EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
HINT = ("Put the ILSVRC-2012 images there in ImageFolder layout: train/<wnid>/*.JPEG and val/<wnid>/*.JPEG "
        "(the validation images moved into their class folders, e.g. with the valprep.sh of the PyTorch examples).")


def _images(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS
                  and not p.name.startswith("."))


def _listing(root: Path, part: str, classes: list[str] | None) -> tuple[list[str], list[str], list[int]]:
    """(class names, relative file paths, labels) of root/part; fails naming what is missing."""
    folder = root / part
    if not folder.is_dir():
        raise SeennError(f"dataset 'imagenet' not found: expected directory {folder}. {HINT}")
    found = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is None:
        classes = found
    elif found != classes:
        odd = sorted(set(found) ^ set(classes))
        raise SeennError(f"dataset 'imagenet': {folder} and {root / 'train'} hold different class folders "
                         f"({len(odd)} differ, e.g. {odd[0]}). {HINT}")
    if not classes:
        raise SeennError(f"dataset 'imagenet': no class folders in {folder}. {HINT}")
    files, labels = [], []
    for k, c in enumerate(classes):
        names = _images(folder / c)
        if not names:
            raise SeennError(f"dataset 'imagenet': class folder {folder / c} holds no images. {HINT}")
        files += [f"{part}/{c}/{n}" for n in names]
        labels += [k] * len(names)
    return classes, files, labels


def sha256_files(root: Path, files: list[str], desc: str) -> list[str]:
    """The sha256 of every file (read in 1 MiB chunks)."""
    from seenn.common.progress import progress

    out = []
    for rel in progress(files, desc=desc, unit="file"):
        h = hashlib.sha256()
        with open(root / rel, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        out.append(h.hexdigest())
    return out


def _load(data_cfg: dict, seed: int) -> dict:

    root = Path(data_cfg["root"])
    classes, train_files, train_y = _listing(root, "train", None)
    _, test_files, test_y = _listing(root, "val", classes)
    if len(classes) > SPEC.num_classes:
        raise SeennError(f"dataset 'imagenet': {root / 'train'} holds {len(classes)} class folders, "
                         f"at most {SPEC.num_classes} expected")
    y = torch.tensor(train_y, dtype=torch.int64)
    val_size = int(data_cfg["val_size"])
    if not 0 < val_size < y.numel():
        raise SeennError(f"data.val_size must lie in [1, {y.numel() - 1}] for imagenet, got {val_size}")
    idx = stratified_split(y, {"train": y.numel() - val_size, "val": val_size}, seed)
    train_sha = sha256_files(root, train_files, "ImageNet train sha256")
    test_sha = sha256_files(root, test_files, "ImageNet val sha256")
    out = {}
    for split, i in idx.items():
        keep = i.tolist()
        out[split] = FileSplit(str(root), [train_files[k] for k in keep], [train_sha[k] for k in keep], y[i].contiguous())
    out["test"] = FileSplit(str(root), test_files, test_sha, torch.tensor(test_y, dtype=torch.int64))
    return out


SPEC = DatasetSpec(
    name="imagenet",
    num_classes=1000,
    input_shape=(3, 224, 224),  # the default crop; data.image_size sets it (recorded in the split files)
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    event=False,
    load=_load,
    where="<data.root>/train/<wnid>/*.JPEG and <data.root>/val/<wnid>/*.JPEG (torchvision ImageFolder layout)",
)
