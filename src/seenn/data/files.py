"""The prepared-split file format: one checked file per split (the images or event frames, or for
a streamed dataset the file list), and the manifest. Written by the prepare_data stage, read by
every later stage through `open_split`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from seenn.common.errors import SeennError
from seenn.common.io import load_checked, save_checked, write_json


def split_path(root: str | Path, split: str) -> Path:
    return Path(root) / f"{split}.pt"


def save_split(path, dataset: str, split: str, x: torch.Tensor, y: torch.Tensor, protocol: str = "project") -> str:
    """One prepared split; returns its payload sha256 (recorded in the manifest). The protocol is
    recorded only when it is not the default, so default split files keep their bytes."""
    extra = {} if protocol == "project" else {"protocol": protocol}
    return save_checked(path, {"dataset": dataset, "split": split, "x": x, "y": y, **extra})


FILE_SPLIT_KIND = "files"  # a split streamed from image files (ImageNet): the list, not the pixels


def save_file_split(path, dataset: str, split: str, *, root: str, files: list[str], sha256: list[str],
                    y: torch.Tensor, crop: int, resize: int, protocol: str = "project") -> str:
    """A manifest split file: image paths relative to `root`, the sha256 of each, labels, and the
    transform sizes; the later stages stream the images (data.source.ImageFileSource)."""
    return save_checked(path, {"kind": FILE_SPLIT_KIND, "dataset": dataset, "split": split, "root": root,
                               "files": list(files), "sha256": list(sha256), "y": y, "crop": crop, "resize": resize,
                               "protocol": protocol})


def open_split(path: str | Path):
    """The prepared split at `path` as a data.source.SplitSource (in memory, or streamed from the
    files a manifest split lists), checked again (shape, dtype, labels)."""
    from seenn.data.registry import get_spec
    from seenn.data.source import ImageFileSource, TensorSource
    from seenn.data.spec import validate_labels, validate_split

    obj = load_checked(path, what="prepared dataset split", producer="the prepare_data stage")
    streamed = isinstance(obj, dict) and obj.get("kind") == FILE_SPLIT_KIND
    for key in ("dataset", "split", "y") + (("root", "files", "sha256", "crop", "resize") if streamed else ("x",)):
        if not isinstance(obj, dict) or key not in obj:
            raise SeennError(f"prepared split {path} lacks '{key}': delete it and rerun the prepare_data stage")
    spec = get_spec(obj["dataset"])
    protocol = obj.get("protocol", "project")
    if protocol == "authors" and spec.authors_std is not None:
        spec = replace(spec, std=spec.authors_std)
    if spec.event and getattr(obj["x"], "ndim", 0) == 5:  # frames and frame size are set by the config
        x = obj["x"]
        spec = replace(spec, input_shape=(x.shape[1], spec.input_shape[1], x.shape[3], x.shape[4]))
    if streamed:
        validate_labels(spec, obj["split"], obj["y"], len(obj["files"]), source=str(path))
        return ImageFileSource(spec, obj["y"], obj["split"], path, root=obj["root"], files=obj["files"],
                               sha256=obj["sha256"], crop=obj["crop"], resize=obj["resize"], protocol=protocol)
    validate_split(spec, obj["split"], obj["x"], obj["y"], source=str(path))
    return TensorSource(spec, obj["x"], obj["y"], obj["split"], path, protocol)


def load_split(path: str | Path):
    """(spec, x, y) of one prepared split held in memory, checked again (shape, dtype, labels)."""
    src = open_split(path)
    if src.streamed:
        raise SeennError(f"prepared split {path} lists {src.spec.name} image files to stream, and this stage needs "
                         f"the split in memory: it does not support {src.spec.name} yet")
    return src.spec, src.x, src.y


def write_manifest(path, manifest: dict) -> None:
    write_json(path, manifest)
