"""CIFAR-10 / CIFAR-100 from the official python-pickle files, read by torchvision.

Files live where torchvision puts them: `<root>/cifar-10-batches-py/` and `<root>/cifar-100-python/`.
torchvision verifies every file's md5 before reading, so a truncated or foreign file fails here
rather than training on wrong data; its failure is turned into a SeennError that names the
directory and the download command. Tests build real-format fixtures and replace torchvision's
md5 check with a file-exists check (the fixture bytes cannot match the official md5s).

Splits: test = the official test set; val = `val_size` samples carved, stratified with the seed,
from the official training set; train = the rest. `train_size` / `test_size` are ignored."""

from __future__ import annotations

import pickle
import types
from pathlib import Path

import numpy as np
import torch

from seenn.common.errors import SeennError
from seenn.data.spec import DatasetSpec, stratified_split


def _download_hint(cls_name: str, root: Path, folder: Path) -> str:
    return (
        f"Put the extracted official python version there (the folder {folder.name}/ from "
        f"{cls_name.lower()}-python.tar.gz, all files). On a machine with internet: "
        f"python -c \"import torchvision; torchvision.datasets.{cls_name}('{root}', download=True)\" "
        f"and copy {folder} here."
    )


def _read_official(cls_name: str, root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One official split via torchvision -> (x uint8 [N,3,32,32], y int64 [N])."""
    import torchvision

    tv_cls = getattr(torchvision.datasets, cls_name)
    folder = root / tv_cls.base_folder
    hint = _download_hint(cls_name, root, folder)
    if not folder.is_dir():
        raise SeennError(f"dataset '{cls_name.lower()}' not found: expected directory {folder}. {hint}")
    try:
        ds = tv_cls(str(root), train=train, download=False)
    except (RuntimeError, OSError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as e:
        raise SeennError(
            f"dataset '{cls_name.lower()}': directory {folder} is incomplete or corrupted "
            f"(torchvision: {e}). {hint}"
        ) from e
    x = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))  # NHWC -> NCHW
    y = torch.as_tensor(ds.targets, dtype=torch.int64)
    return x, y


def _load(cls_name: str, data_cfg: dict, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    root = Path(data_cfg["root"])
    x_pool, y_pool = _read_official(cls_name, root, train=True)
    x_test, y_test = _read_official(cls_name, root, train=False)
    val_size = int(data_cfg["val_size"])
    n = y_pool.shape[0]
    if not 0 < val_size < n:
        raise SeennError(f"data.val_size must lie in [1, {n - 1}] for {cls_name.lower()}, got {val_size}")
    idx = stratified_split(y_pool, {"train": n - val_size, "val": val_size}, seed)
    out = {split: (x_pool[i].contiguous(), y_pool[i].contiguous()) for split, i in idx.items()}
    out["test"] = (x_test, y_test)
    return out


def _load_cifar10(data_cfg: dict, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return _load("CIFAR10", data_cfg, seed)


def _load_cifar100(data_cfg: dict, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return _load("CIFAR100", data_cfg, seed)


CIFAR10 = types.SimpleNamespace(
    SPEC=DatasetSpec(
        name="cifar10",
        num_classes=10,
        input_shape=(3, 32, 32),
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        event=False,
        load=_load_cifar10,
        where="<data.root>/cifar-10-batches-py/ (torchvision's python version: data_batch_1..5, test_batch, batches.meta)",
        authors_std=(0.2023, 0.1994, 0.2010),  # the constants of the authors' code (and many CIFAR repos)
    )
)

CIFAR100 = types.SimpleNamespace(
    SPEC=DatasetSpec(
        name="cifar100",
        num_classes=100,
        input_shape=(3, 32, 32),
        mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762),
        event=False,
        load=_load_cifar100,
        where="<data.root>/cifar-100-python/ (torchvision's python version: train, test, meta)",
    )
)
