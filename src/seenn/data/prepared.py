"""Prepared splits on disk: one sha256-checked file per split plus a manifest.

Written by the data stage, read (and re-validated) by every later stage."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import SeennError
from ..io import load_checked, save_checked, write_json
from . import SPLITS, DatasetSpec, get_spec, validate_split


def split_path(root: str | Path, split: str) -> Path:
    return Path(root) / f"{split}.pt"


def prepare(data_cfg: dict, seed: int, out_dir: str | Path) -> dict:
    """Load the configured dataset, validate each split, write split files and manifest."""
    spec = get_spec(data_cfg["name"])
    splits = spec.load(data_cfg, seed)
    manifest = {"dataset": spec.name, "num_classes": spec.num_classes, "input_shape": list(spec.input_shape),
                "seed": seed, "source": spec.where, "splits": {}}
    for split in SPLITS:
        if split not in splits:
            raise SeennError(f"dataset '{spec.name}' loader returned no '{split}' split")
        x, y = splits[split]
        validate_split(spec, split, x, y, source=spec.where)
        digest = save_checked(split_path(out_dir, split), {"dataset": spec.name, "split": split, "x": x, "y": y})
        manifest["splits"][split] = {
            "n": int(y.numel()),
            "counts_per_class": torch.bincount(y, minlength=spec.num_classes).tolist(),
            "sha256": digest,
        }
    write_json(Path(out_dir) / "manifest.json", manifest)
    return manifest


def load_split(path: str | Path) -> tuple[DatasetSpec, torch.Tensor, torch.Tensor]:
    """Read one prepared split and check it again (shape, dtype, labels)."""
    obj = load_checked(path, what="prepared dataset split", producer="the prepare_data stage")
    for key in ("dataset", "split", "x", "y"):
        if key not in obj:
            raise SeennError(f"prepared split {path} lacks '{key}': delete it and rerun the prepare_data stage")
    spec = get_spec(obj["dataset"])
    validate_split(spec, obj["split"], obj["x"], obj["y"], source=str(path))
    return spec, obj["x"], obj["y"]
