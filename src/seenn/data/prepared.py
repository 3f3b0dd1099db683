"""Prepared splits: the configured dataset, validated and written as one file per split plus a
manifest (formats: artifacts.save_split, artifacts.write_manifest; read back by artifacts.load_split)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..artifacts import save_split, split_path, write_manifest
from ..errors import SeennError
from . import SPLITS, get_spec, validate_split


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
        digest = save_split(split_path(out_dir, split), spec.name, split, x, y)
        manifest["splits"][split] = {
            "n": int(y.numel()),
            "counts_per_class": torch.bincount(y, minlength=spec.num_classes).tolist(),
            "sha256": digest,
        }
    write_manifest(Path(out_dir) / "manifest.json", manifest)
    return manifest
