"""Prepared splits: the configured dataset, validated and written as one file per split plus a
manifest (formats: data.files.save_split / save_file_split / write_manifest; read back by
data.files.open_split). A loader returns, per split, either (x, y) tensors or a `FileSplit` (image
files streamed by the later stages). `data.protocol: authors` merges train and val into the
training split and makes val a copy of test (the authors select on the test split)."""

from __future__ import annotations

from pathlib import Path

import torch

from seenn.common.errors import SeennError
from seenn.data.files import save_file_split, save_split, split_path, write_manifest
from seenn.data.registry import get_spec
from seenn.data.spec import SPLITS, FileSplit, configured_spec, validate_labels, validate_split


def authors_protocol(splits: dict) -> dict:
    """train = train + val (all training images), val = test: the authors' selection on test."""
    train, val, test = splits["train"], splits["val"], splits["test"]
    merged = train + val if isinstance(train, FileSplit) else (torch.cat([train[0], val[0]]), torch.cat([train[1], val[1]]))
    return {"train": merged, "val": test, "test": test}


def prepare(data_cfg: dict, seed: int, out_dir: str | Path) -> dict:
    """Load the configured dataset, validate each split, write split files and manifest."""
    spec = configured_spec(get_spec(data_cfg["name"]), data_cfg)
    splits = spec.load(data_cfg, seed)
    protocol = data_cfg.get("protocol", "project")
    for split in SPLITS:
        if split not in splits:
            raise SeennError(f"dataset '{spec.name}' loader returned no '{split}' split")
    if protocol == "authors":
        splits = authors_protocol(splits)
    manifest = {"dataset": spec.name, "num_classes": spec.num_classes, "input_shape": list(spec.input_shape),
                "seed": seed, "source": spec.where, "splits": {}}
    if protocol != "project":
        manifest["protocol"] = protocol
    for split in SPLITS:
        part = splits[split]
        if isinstance(part, FileSplit):
            y = part.y
            validate_labels(spec, split, y, len(part.files), source=spec.where)
            digest = save_file_split(split_path(out_dir, split), spec.name, split, root=part.root, files=part.files,
                                     sha256=part.sha256, y=y, crop=int(data_cfg["image_size"]),
                                     resize=int(data_cfg["resize_size"]), protocol=protocol)
        else:
            x, y = part
            validate_split(spec, split, x, y, source=spec.where)
            digest = save_split(split_path(out_dir, split), spec.name, split, x, y, protocol)
        manifest["splits"][split] = {
            "n": int(y.numel()),
            "counts_per_class": torch.bincount(y, minlength=spec.num_classes).tolist(),
            "sha256": digest,
        }
    write_manifest(Path(out_dir) / "manifest.json", manifest)
    return manifest
